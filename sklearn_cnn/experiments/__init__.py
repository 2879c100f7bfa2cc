"""Registry of the reference reports' experiments: one named function each.

Each experiment is a function ``fn(out, quick=False, **params) -> DataFrame``
that writes its tables (CSV + markdown) and figures into the folder ``out``.
``quick=True`` runs a seconds-long version on the embedded digits (the tests
use it). Run them with ``sklearn-cnn reproduce NAME`` or :func:`run_experiment`.

Every network an experiment trains goes through :func:`fit_or_load`, with a
checkpoint in the output folder: running the same experiment again on the
same folder resumes an interrupted run where it stopped and reuses the
finished fits. ``out/COMPLETE`` is written last, when every result is there.
"""

import inspect
import json
import numbers
import shutil
import time
import types
import typing
from pathlib import Path

import joblib
import pandas as pd

from .._io import atomic_write

__all__ = ["register_experiment", "list_experiments", "run_experiment", "write_table",
           "markdown", "fit_or_load", "mark_complete", "COMPLETE", "check_experiment_params",
           "ExperimentInputError"]


class ExperimentInputError(ValueError):
    """A bad experiment name or parameter, found before the experiment does any work.

    A ValueError like every parameter error of the package; its own class lets
    the command line tell it (a one-line message) from an error met while
    training (a bug, shown with its traceback).
    """

_EXPERIMENTS = {}


def register_experiment(name, *, description, reference):
    """Decorator registering ``fn(out, quick=False, **params)`` under ``name``."""

    def decorator(fn):
        if name in _EXPERIMENTS:
            raise ValueError(f"experiment {name!r} is already registered")
        _EXPERIMENTS[name] = {"fn": fn, "description": description, "reference": reference}
        return fn

    return decorator


def list_experiments():
    """DataFrame of the registered experiments: name, description, reference."""
    _load()
    return pd.DataFrame([{"name": n, "description": e["description"],
                          "reference": e["reference"]}
                         for n, e in sorted(_EXPERIMENTS.items())])


def run_experiment(name, out, quick=False, **params):
    """Run experiment ``name``, writing into ``out``; returns its main table.

    ``params`` are checked first with :func:`check_experiment_params`.
    """
    params = check_experiment_params(name, params, quick=quick)
    fn = _EXPERIMENTS[name]["fn"]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    marker = out / COMPLETE
    before = marker.read_text() if marker.exists() else None
    marker.unlink(missing_ok=True)  # written again only when everything is
    try:
        table = fn(out, quick=quick, **params)
    except ExperimentInputError:
        # An input error is found before any work (e.g. a finished folder asked for
        # nothing to train): the folder is as it was, its marker included.
        if before is not None:
            atomic_write(marker, lambda tmp: Path(tmp).write_text(before))
        raise
    mark_complete(out, {"experiment": name, "quick": quick, **params})
    return table


def mark_complete(out, settings):
    """Write ``out/COMPLETE`` (the settings as JSON): every result of the run is written."""
    text = json.dumps({k: repr(v) if not isinstance(v, (str, int, float, bool, type(None)))
                       else v for k, v in settings.items()}, indent=1)
    atomic_write(Path(out) / COMPLETE, lambda tmp: Path(tmp).write_text(text + "\n"))


def check_experiment_params(name, params, quick=False):
    """Check ``params`` of experiment ``name`` against its signature, before any work.

    Each parameter must have the type of its default (or of its annotation when
    the default is None): bool, int, float (an int is accepted), str, or a
    tuple/list of those. Numbers must be >= 0: every numeric parameter of an
    experiment is a count, a size, a rate or a seed. A plain string for a list of strings is split on
    commas, and a single value for a list becomes a one-element list, as on
    the command line (``--set runs=l2_fc``, ``--set probes=logistic,knn``).

    Parameters
    ----------
    name : str
        A registered experiment (see :func:`list_experiments`).
    params : dict
        Parameter name -> value.
    quick : bool, default=False
        Whether the run is a ``--quick`` one: a seconds-long run on the embedded
        digits, so a ``dataset`` other than "digits" is an error, not ignored.

    Returns
    -------
    params : dict
        The values, converted (e.g. a str to a list).

    Raises
    ------
    ExperimentInputError
        Unknown experiment or parameter, or a value of the wrong type.
    """
    _load()
    if name not in _EXPERIMENTS:
        raise ExperimentInputError(f"unknown experiment {name!r}; available: "
                                   f"{sorted(_EXPERIMENTS)}")
    signature = inspect.signature(_EXPERIMENTS[name]["fn"])
    accepted = {k: p for k, p in signature.parameters.items() if k not in ("out", "quick")}
    unknown = set(params) - set(accepted)
    if unknown:
        raise ExperimentInputError(f"experiment {name!r} has no parameter(s) {sorted(unknown)}; "
                                   f"it takes {sorted(accepted)}")
    checked = {}
    for key, value in params.items():
        p = accepted[key]
        spec = p.annotation if p.annotation is not inspect.Parameter.empty else _spec_of(
            p.default)
        try:
            checked[key] = _conform(value, spec)
        except (TypeError, ValueError):
            raise ExperimentInputError(
                f"parameter {key!r} of experiment {name!r} must be {_describe(spec)}, got "
                f"{value!r}") from None
    for key in ("dataset", "mnist_dataset"):  # None leaves a part out, also in --quick
        if quick and checked.get(key, "digits") not in ("digits", None):
            raise ExperimentInputError(f"--quick is a seconds-long run on the embedded digits; "
                                       f"it does not combine with {key}={checked[key]!r} "
                                       f"(drop one of them)")
    return checked


def _spec_of(default):
    """The type a parameter's default stands for: int, tuple[str, ...], ...; None: any."""
    if default is None:
        return typing.Any
    if isinstance(default, (tuple, list)):
        kinds = {type(v) for v in default}
        return tuple[kinds.pop(), ...] if len(kinds) == 1 else tuple
    return type(default)


def _conform(value, spec):
    """``value`` as ``spec`` (see :func:`check_experiment_params`), or raise ValueError."""
    origin, args = typing.get_origin(spec), typing.get_args(spec)
    if spec is typing.Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _conform(value, option)
            except (TypeError, ValueError):
                pass
        raise ValueError(value)
    if spec is bool:
        if isinstance(value, bool):
            return value
    elif spec is int:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0:
            return int(value)
    elif spec is float:
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and value >= 0:
            return float(value)
    elif spec is str:
        if isinstance(value, str):
            return value
    elif spec in (tuple, list) or origin in (tuple, list):
        item = args[0] if args else typing.Any
        if isinstance(value, str) and item is str:
            value = [v.strip() for v in value.split(",") if v.strip()]
        elif not isinstance(value, (tuple, list)):
            value = [value]
        if value:
            return type(value)(_conform(v, item) for v in value)
    else:
        return value  # a type this check does not know: the experiment checks it
    raise ValueError(value)


def _describe(spec):
    origin, args = typing.get_origin(spec), typing.get_args(spec)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("None" if a is type(None) else _describe(a) for a in args)
    if spec in (tuple, list) or origin in (tuple, list):
        plural = {bool: "booleans", int: "ints >= 0", float: "numbers >= 0", str: "strings"}
        item = args[0] if args else None
        return f"a non-empty list of {plural[item]}" if item in plural else "a non-empty list"
    names = {bool: "True or False", int: "an int >= 0", float: "a number >= 0", str: "a str"}
    return names.get(spec, getattr(spec, "__name__", str(spec)))


def fit_or_load(estimator, X, y, path, *, reuse=True, **fit_params):
    """Fit ``estimator`` resumably and save it to ``path``; returns (estimator, fit seconds).

    The one way an experiment trains a network. The estimator trains with
    ``checkpoint_dir=<path without suffix>.ckpt`` (unless it has one or takes
    none), so that running the experiment again on the same folder continues
    an interrupted fit after its last completed epoch and loads a finished one
    without training (same parameters and data only: another run's
    checkpoint raises a ValueError naming what differs). ``reuse=False``
    deletes a saved run first and trains from the start.

    Nothing is unpickled: a finished run comes back from its checkpoint
    (tensors and plain data). ``path`` (joblib) is written for the user, atomically.
    A fit stopped by Ctrl-C raises KeyboardInterrupt here, so that no
    experiment records an unfinished run. ``fit seconds`` add up the epochs'
    durations over every session of the run (plus this call's set-up).
    """
    path = Path(path)
    params = estimator.get_params(deep=False)
    if "checkpoint_dir" in params and params["checkpoint_dir"] is None:
        estimator.set_params(checkpoint_dir=path.with_suffix(".ckpt"))
    ckpt_dir = estimator.get_params(deep=False).get("checkpoint_dir")
    if not reuse and ckpt_dir is not None:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    start = time.perf_counter()
    estimator.fit(X, y, **fit_params)
    fit_seconds = time.perf_counter() - start
    if getattr(estimator, "interrupted_", False):
        raise KeyboardInterrupt(f"training for {path.name} was interrupted")
    net = getattr(estimator, "net_", None)
    if net is not None and getattr(net, "resumed_at_epoch_", 0):
        # Epochs trained in earlier sessions (or all of them, for a finished run).
        fit_seconds += float(sum(row.get("dur", 0.0)
                                 for row in net.history[:net.resumed_at_epoch_]))
    atomic_write(path, lambda tmp: joblib.dump(estimator, tmp))
    return estimator, fit_seconds


COMPLETE = "COMPLETE"


def write_table(df, out, stem, floatfmt=".4f"):
    """Write ``df`` as ``<stem>.csv`` and ``<stem>.md`` atomically (temp file + rename)."""
    out = Path(out)
    for suffix, text in ((".csv", df.to_csv(index=False)), (".md", markdown(df, floatfmt))):
        atomic_write(out / f"{stem}{suffix}", lambda tmp, text=text: Path(tmp).write_text(text))
    return out / f"{stem}.csv"


def markdown(df, floatfmt=".4f"):
    """A markdown table: floats with ``floatfmt``, integers as integers."""
    shown = df.copy()
    for col in shown.columns:
        if pd.api.types.is_float_dtype(shown[col]):
            shown[col] = shown[col].map(lambda v: format(v, floatfmt))
        elif pd.api.types.is_integer_dtype(shown[col]):
            shown[col] = shown[col].map(str)
    align = ["right" if pd.api.types.is_numeric_dtype(df[c]) else "left" for c in df.columns]
    return shown.to_markdown(index=False, disable_numparse=True, colalign=align) + "\n"


def _load():
    # Importing the modules registers their experiments.
    from . import architectures, pretrained, probing, siamese, transfer  # noqa: F401
