"""Resumable training: the complete state of a skorch training run in one file.

With ``checkpoint_dir``, every trainable estimator writes ``checkpoint.pt``
into that folder after each epoch (atomically: temp file, fsync, rename) and
once more, marked finished, when ``fit`` ends. ``fit`` on a folder holding an
unfinished run of the same parameters and data continues after its last
completed epoch; a finished one is loaded without training. The
continuation is the run that would have happened: the file holds the
weights, the optimizer, LR-scheduler and early-stopping state, the history,
the step counters and every random state that shapes the rest of the run
(torch, numpy, Python ``random`` and the estimator's own generators).

The file holds only tensors and plain Python data (no pickled classes), so
it loads with ``torch.load(weights_only=True)`` and survives refactoring of
this package. One file per run, rewritten in place: disk use does not grow
with the number of epochs (the early-stopping best weights are inside it).
"""

import ast
import enum
import hashlib
import inspect
import math
import os
import random
import re
from pathlib import Path

import numpy as np
import torch
from skorch.callbacks import EarlyStopping
from skorch.history import History

from ._deprecation import is_unset
from ._fast_path import AUTO, check_fast_path
from ._io import atomic_write, remove_stale_temps

__all__ = ["TrainingCheckpoint", "CheckpointMixin", "params_fingerprint",
           "default_params_fingerprint", "data_fingerprint"]

FORMAT = 1
FILENAME = "checkpoint.pt"
# Parameters that change neither the result nor the run: left out of the fingerprint.
UNFINGERPRINTED = ("verbose", "checkpoint_dir")


# -- fingerprints ------------------------------------------------------------
PACKAGE = "sklearn_cnn"
# "sklearn_cnn.<module path>.", as checkpoints written before describe() dropped the
# package's module paths name its classes ("sklearn_cnn.plot.RecordWeightHistograms").
_PACKAGE_MODULE_PATH = re.compile(rf"(?<![\w.]){PACKAGE}(\.[a-z_0-9]+)+\.")


def _qualified_name(obj, module):
    """``module.qualname``, with ``sklearn_cnn.qualname`` for the package's own classes and
    functions: moving one between the package's modules must not change fingerprints,
    or every saved checkpoint using it would stop matching its run."""
    if isinstance(module, str) and (module == PACKAGE or module.startswith(PACKAGE + ".")):
        module = PACKAGE
    return f"{module}.{obj.__qualname__}"


# Parameters of the package's objects renamed since 0.1, as they appear inside a
# description (a TransferClassifier's backbone: VGGFeatures(layer=...) -> layers=...).
_RENAMED_NESTED = re.compile(r"'layer': ")


def without_package_module_paths(text):
    """A fingerprint text with module paths inside the package cut as :func:`describe`
    cuts them (``sklearn_cnn.plot.X`` -> ``sklearn_cnn.X``), and the nested parameters
    renamed since (``'layer'`` -> ``'layers'``), for texts saved before."""
    if not isinstance(text, str):
        return text
    return _RENAMED_NESTED.sub("'layers': ", _PACKAGE_MODULE_PATH.sub(PACKAGE + ".", text))


def describe(value, depth=0):
    """A canonical, address-free text for a parameter value (for fingerprints).

    Objects are described by their class and their parameters (``get_params``)
    or attributes, so that two equal configurations give the same text in two
    processes. Classes, functions and enums are named ``module.qualname``,
    except the package's own: ``sklearn_cnn.qualname``, whichever module
    defines them.
    """
    if depth > 4:
        return "..."
    if value is None or isinstance(value, (bool, int, str, bytes)):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, os.PathLike):  # (slots, no __dict__: described by its text)
        return f"path({os.fspath(value)!r})"
    if isinstance(value, enum.Enum):  # e.g. torchvision's weights enums
        return f"{_qualified_name(type(value), type(value).__module__)}.{value.name}"
    if isinstance(value, np.generic):
        return describe(value.item(), depth)
    if isinstance(value, (list, tuple)):
        inner = ", ".join(describe(v, depth + 1) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(sorted(describe(v, depth + 1) for v in value)) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{describe(k, depth + 1)}: {describe(v, depth + 1)}"
                               for k, v in sorted(value.items(), key=lambda kv: repr(kv[0]))) + "}"
    if isinstance(value, type) or callable(value) and hasattr(value, "__qualname__"):
        return _qualified_name(value, getattr(value, "__module__", ""))
    if isinstance(value, np.random.RandomState):
        return "RandomState(" + hashlib.blake2b(
            value.get_state()[1].tobytes(), digest_size=8).hexdigest() + ")"
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return f"array({data_fingerprint(value)})"
    name = _qualified_name(type(value), type(value).__module__)
    if hasattr(value, "get_params"):
        try:
            attrs = value.get_params(deep=False)
        except TypeError:
            attrs = value.get_params()
        # a deprecated parameter left unset (its "deprecated" default) is no setting:
        # descriptions stay those of the releases before it was renamed
        attrs = {k: v for k, v in attrs.items() if not is_unset(v)}
    else:
        attrs = {k: v for k, v in vars(value).items() if not k.startswith("_")} \
            if hasattr(value, "__dict__") else {}
    return f"{name}{describe(attrs, depth + 1)}"


def params_fingerprint(estimator):
    """``{parameter: canonical text}`` of an estimator's parameters that shape its fit."""
    return {k: describe(v) for k, v in sorted(estimator.get_params(deep=False).items())
            if k not in UNFINGERPRINTED}


def default_params_fingerprint(estimator):
    """:func:`params_fingerprint` of the estimator's defaults (a parameter added to the
    package after a checkpoint was written matches it while it keeps its default)."""
    signature = inspect.signature(type(estimator).__init__)
    return {k: describe(p.default) for k, p in signature.parameters.items()
            if p.default is not inspect.Parameter.empty and k not in UNFINGERPRINTED}


def data_fingerprint(*arrays):
    """A short hash of the dtype, shape and bytes of arrays (numpy or torch)."""
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        a = getattr(a, "source", a)  # ImageBatches: the validated input it converts
        if isinstance(a, torch.Tensor):
            a = a.detach().cpu().numpy()
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


# -- plain data ----------------------------------------------------------------
def plain(value):
    """``value`` as tensors and plain Python data, or raise TypeError.

    numpy scalars become Python numbers (same value), numpy arrays lists.
    """
    if isinstance(value, np.generic):  # first: np.float64 is also a float
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        items = [plain(v) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    raise TypeError(f"not plain data: {type(value).__name__}")


def _numpy_rng_state(rng):
    kind, keys, pos, has_gauss, cached = rng.get_state()
    return {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached": float(cached)}


def _set_numpy_rng_state(rng, state):
    rng.set_state((state["kind"], state["keys"].numpy().astype(np.uint32), state["pos"],
                   state["has_gauss"], state["cached"]))


# Attributes of callbacks that only carry one epoch's data, reset at the next epoch's start.
_TRANSIENT = {"y_trues_", "y_preds_"}


def callback_state(callback):
    """The fitted attributes (``name_``) of a skorch callback, as plain data.

    Objects with a ``state_dict`` (an LR scheduler) are stored as their state
    dict; other non-plain attributes (classes, progress bars) are rebuilt by
    the callback itself and skipped.
    """
    state = {}
    for key, value in vars(callback).items():
        if not key.endswith("_") or key.startswith("_") or key in _TRANSIENT:
            continue
        if isinstance(value, type):  # e.g. the scheduler class LRScheduler builds from
            continue
        if hasattr(value, "state_dict") and hasattr(value, "load_state_dict"):
            state[key] = ("state_dict", plain(value.state_dict()))
            continue
        try:
            state[key] = ("value", plain(value))
        except TypeError:
            continue
    return state


def load_callback_state(callback, state):
    for key, (kind, value) in state.items():
        if kind == "state_dict":
            getattr(callback, key).load_state_dict(value)
        else:
            setattr(callback, key, value)


# -- the file ----------------------------------------------------------------
def _last_line(exc):
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else "no detail"


class TrainingCheckpoint:
    """The checkpoint file of one run: where it is, what run it belongs to.

    Parameters
    ----------
    directory : str or path-like
    params : dict
        :func:`params_fingerprint` of the estimator.
    data : str
        :func:`data_fingerprint` of its training data.
    defaults : dict, optional
        :func:`default_params_fingerprint` of the estimator.

    Attributes
    ----------
    state : dict or None
        The saved state read by :meth:`open` (None: nothing saved yet). The net
        takes it with :meth:`pop_state`.
    seed : int or None
        The run's seed (saved with the state, so that ``random_state=None``
        resumes the same run).
    """

    def __init__(self, directory, params, data, defaults=None, renamed=None):
        self.directory = Path(directory)
        self.params, self.data, self.defaults = params, data, defaults or {}
        self.renamed = dict(renamed or {})
        self.state, self.seed = None, None

    @property
    def path(self):
        return self.directory / FILENAME

    @classmethod
    def open(cls, directory, params, data, defaults=None, renamed=None):
        """Check ``directory`` (creating it), read a saved run and check it is this run's.

        Raises ValueError for a directory that is a file or unwritable, for an
        unreadable checkpoint, and for one of another run (naming what differs).
        ``defaults`` are the estimator's default fingerprints (a parameter newer
        than the checkpoint matches while at its default); ``renamed`` maps old
        parameter names to new ones (a checkpoint written under the old name is
        still this run's).
        """
        if not isinstance(directory, (str, os.PathLike)):
            raise TypeError(f"checkpoint_dir must be None or a folder path (str or "
                            f"os.PathLike), got {directory!r}")
        ckpt = cls(directory, params, data, defaults, renamed)
        d = ckpt.directory
        if d.exists() and not d.is_dir():
            raise ValueError(f"checkpoint_dir={str(d)!r} is a file, not a folder")
        try:
            d.mkdir(parents=True, exist_ok=True)
            probe = d / f".write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ValueError(f"checkpoint_dir={str(d)!r} is not a writable folder: "
                             f"{exc.strerror or exc}") from None
        remove_stale_temps(ckpt.path)  # a write killed half-way
        if ckpt.path.exists():
            ckpt.state = ckpt._read()
            ckpt._check_same_run(ckpt.state)
            ckpt.seed = int(ckpt.state["seed"])
        return ckpt

    def _read(self):
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated, corrupt, or not ours
            raise ValueError(
                f"checkpoint {str(self.path)!r} is unreadable ({type(exc).__name__}: "
                f"{_last_line(exc)}). It was not "
                "left by a completed save; move it away or delete it to train from the "
                "start.") from None
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ValueError(f"checkpoint {str(self.path)!r} is not a sklearn_cnn training "
                             f"checkpoint of format {FORMAT}; move it away or delete it")
        return state

    def _check_same_run(self, state):
        # Both sides cut alike: a checkpoint written before describe() dropped the
        # package's module paths (or before a class moved) is still this run's.
        saved = {self.renamed.get(k, k) if self.renamed.get(k, k) not in state["params"] else k:
                 without_package_module_paths(v) for k, v in state["params"].items()}
        now = {k: without_package_module_paths(v) for k, v in self.params.items()}
        defaults = {k: without_package_module_paths(v) for k, v in self.defaults.items()}
        for k, v in now.items():  # parameters newer than the checkpoint
            if k not in saved and defaults.get(k) == v:
                saved[k] = v
        if now.get("fast_path") == repr(AUTO):
            # "auto" continues any run in the layout it trained with (recorded_fast_path)
            saved.pop("fast_path", None)
            now = {k: v for k, v in now.items() if k != "fast_path"}
        diffs = [f"{k}={saved.get(k, '<absent>')} there, {now.get(k, '<absent>')} now"
                 for k in sorted(set(saved) | set(now))
                 if saved.get(k) != now.get(k)]
        if state["data"] != self.data:
            diffs.append("the training data (X, y) differ")
        if diffs:
            raise ValueError(
                f"checkpoint_dir={str(self.directory)!r} holds a run with other settings: "
                + "; ".join(diffs) + f". To start over, delete {str(self.path)!r}; to keep "
                "it, use another checkpoint_dir.")

    def recorded_fast_path(self):
        """The fast path the saved run trained with (list of names), or None when nothing
        is saved: the choice ``fast_path="auto"`` recorded, or else (a run started with an
        explicit fast path, or before the choice was recorded) its ``fast_path``
        parameter."""
        if self.state is None:
            return None
        if "fast_path" in self.state:
            return list(self.state["fast_path"])
        try:  # the parameter's fingerprint text: None, 'name', ['a', 'b'] or {'a', 'b'}
            value = ast.literal_eval(self.state["params"].get("fast_path", "None"))
            return sorted(check_fast_path(value, allow_auto=False))
        except (ValueError, SyntaxError, TypeError):
            return None  # not readable: "auto" measures afresh

    def pop_state(self):
        state, self.state = self.state, None
        return state

    def write(self, state):
        state = dict(state, format=FORMAT, params=self.params, data=self.data, seed=self.seed)
        atomic_write(self.path, lambda tmp: torch.save(state, tmp))


# -- the net side ----------------------------------------------------------------
class CheckpointMixin:
    """Four extra skorch hooks: saving after each epoch (``notify``), resuming
    (``fit``, ``fit_loop``) and telling an interrupt from early stopping.

    skorch ends training on KeyboardInterrupt, which both Ctrl-C and its
    EarlyStopping raise, and returns normally; ``interrupted_`` tells the two
    apart. Subclasses name extra random generators that shape the run in
    :meth:`checkpoint_generators`.
    """

    def __init__(self, *args, checkpoint=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.checkpoint = checkpoint

    def checkpoint_generators(self):
        """``{name: numpy RandomState}`` the run draws from besides torch's, numpy's
        and Python's global generators (saved and restored with the run)."""
        return {}

    def fit(self, X, y=None, **fit_params):
        self.interrupted_ = False
        self.resumed_at_epoch_ = self.epochs_completed_ = 0
        state = self.checkpoint.pop_state() if self.checkpoint is not None else None
        if state is not None and state["finished"]:
            self.initialize()
            self._load_training_state(state, random_states=False)
            self.resumed_at_epoch_ = self.epochs_completed_ = len(self.history)
            if self.verbose:
                print(f"loaded the finished run of {len(self.history)} epoch(s) from "
                      f"{self.checkpoint.path}")
            return self
        self._resume_state = state
        super().fit(X, y, **fit_params)
        if self.checkpoint is not None and not self.interrupted_:
            self._write_checkpoint(finished=True)
        return self

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        state, self._resume_state = getattr(self, "_resume_state", None), None
        if state is not None:
            # After on_train_begin, which resets the callbacks' state.
            self._load_training_state(state)
            done = len(self.history)
            epochs = 0 if state["stopped"] else max(self.max_epochs - done, 0)
            self.resumed_at_epoch_ = done
            if self.verbose:
                print(f"resumed at epoch {done} of {self.max_epochs} from "
                      f"{self.checkpoint.path}")
        self.epochs_completed_ = len(self.history)
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt:
            if not self._stopped_early():
                self.interrupted_ = True
                # The history keeps the completed epochs only, as the checkpoint does.
                self.history_ = History(self.history[:self.epochs_completed_])
            raise

    def notify(self, method_name, **cb_kwargs):
        if method_name != "on_epoch_end":
            return super().notify(method_name, **cb_kwargs)
        try:
            super().notify(method_name, **cb_kwargs)
        except KeyboardInterrupt:
            if self._stopped_early():  # the run is over; save that, in case of a kill
                self.epochs_completed_ = len(self.history)
                if self.checkpoint is not None:
                    self._write_checkpoint(stopped=True)
            raise
        self.epochs_completed_ = len(self.history)
        if self.checkpoint is not None:
            self._write_checkpoint()
        return None

    def _stopped_early(self):
        return any(isinstance(cb, EarlyStopping) and getattr(cb, "misses_", 0) >= cb.patience
                   for _, cb in getattr(self, "callbacks_", []))

    def _training_state(self):
        return {
            "module": self.module_.state_dict(),
            "requires_grad": {n: p.requires_grad for n, p in self.module_.named_parameters()},
            "optimizer": self.optimizer_.state_dict(),
            "criterion": self.criterion_.state_dict(),
            "history": plain(list(self.history)),
            "callbacks": {name: callback_state(cb) for name, cb in self.callbacks_},
            "train_steps": int(getattr(self, "_train_steps", 0)),
            # fast_path="auto"'s choice: a resumed run keeps the layout it trained with
            "fast_path": sorted(getattr(self, "fast_path", ())),
            "random": {
                "torch": torch.get_rng_state(),
                "numpy": _numpy_rng_state(np.random.mtrand._rand),
                "python": random.getstate(),
                "generators": {k: _numpy_rng_state(g)
                               for k, g in self.checkpoint_generators().items()},
            },
        }

    def _write_checkpoint(self, finished=False, stopped=False):
        self.checkpoint.write(dict(self._training_state(), finished=finished,
                                   stopped=stopped or finished))

    def _load_training_state(self, state, random_states=True):
        self.module_.load_state_dict(state["module"])
        for name, p in self.module_.named_parameters():
            p.requires_grad_(state["requires_grad"].get(name, p.requires_grad))
        self.optimizer_.load_state_dict(state["optimizer"])
        self.criterion_.load_state_dict(state["criterion"])
        self.history_ = History(state["history"])
        callbacks = dict(self.callbacks_)
        for name, cb_state in state["callbacks"].items():
            if name in callbacks:
                load_callback_state(callbacks[name], cb_state)
        self._train_steps = state["train_steps"]
        if random_states:
            rs = state["random"]
            torch.set_rng_state(rs["torch"])
            _set_numpy_rng_state(np.random.mtrand._rand, rs["numpy"])
            random.setstate(rs["python"])
            generators = self.checkpoint_generators()
            for k, g_state in rs["generators"].items():
                _set_numpy_rng_state(generators[k], g_state)
