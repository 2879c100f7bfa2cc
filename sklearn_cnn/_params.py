"""Parameters declared once: default, constraints and docstring entry of each.

The three trainers (:class:`~sklearn_cnn.CNNClassifier`,
:class:`~sklearn_cnn.SiameseEmbedder`, :class:`~sklearn_cnn.TransferClassifier`)
share ~25 training parameters. They are written here, once, as :class:`Param`
entries of :data:`TRAINING_PARAMS`; each estimator declares only its own
(``_own_params``) and :func:`declare` builds from both what scikit-learn needs:

- an explicit ``__init__`` signature (``get_params`` and ``clone`` read it),
  whose body only stores the arguments;
- ``_parameter_constraints``, checked in ``fit`` by scikit-learn's own
  ``BaseEstimator._validate_params`` (the scikit-learn way: declared once,
  validated in ``fit``, an ``InvalidParameterError`` -- a ``ValueError`` and a
  ``TypeError`` -- naming the parameter and what it accepts);
- the "Parameters" section of the class docstring, where the marker
  ``{training_parameters}`` stands.

Checks between parameters (``early_stopping`` needs a ``validation_fraction``,
...) stay in code: a constraint table describes one value at a time.
"""

import inspect
import os
import textwrap
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import torch

# scikit-learn's constraint objects live in a private module; this is the one place that
# imports it, so a move in a later scikit-learn release is a one-line fix.
from sklearn.utils._param_validation import Interval, StrOptions

__all__ = ["Param", "TRAINING_PARAMS", "declare", "stored_init", "count", "real", "StrOptions"]


class _Range(Interval):
    """scikit-learn's Interval, without bools (``True`` is an int to Python, never a count,
    a rate or a size here)."""

    def is_satisfied_by(self, val):
        return not isinstance(val, (bool, np.bool_)) and super().is_satisfied_by(val)


def count(minimum=1):
    """Constraint: an int >= ``minimum`` (not a bool)."""
    return _Range(Integral, minimum, None, closed="left")


def real(low=0.0, high=None, closed="left"):
    """Constraint: a real number in the interval (not a bool)."""
    return _Range(Real, low, high, closed=closed)


@dataclass(frozen=True)
class Param:
    """One estimator parameter.

    Parameters
    ----------
    name : str
    default : object
    constraints : list or "no_validation"
        scikit-learn parameter constraints (``None``, types, ``"boolean"``,
        :func:`count`, :func:`real`, ``StrOptions``, ...).
    doc : str
        Its numpydoc entry, ``"name : type, default={default}"`` then the
        description indented by 4 spaces; ``{default}`` is filled with the
        estimator's default.
    positional : bool, default=False
        Whether it may be passed by position (the estimator's first arguments).
    """

    name: str
    default: object
    constraints: object
    doc: str
    positional: bool = False


def _p(name, default, constraints, doc, positional=False):
    return Param(name, default, constraints, textwrap.dedent(doc).strip("\n"), positional)


OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}
# How ``weight_decay`` (lambda) is read: the factor of lambda * w added to the gradient of
# a coupled L2 penalty, or None for decoupled decay (AdamW: w -= lr * lambda * w).
L2_CONVENTIONS = {
    "pytorch": 1.0,     # torch.optim's weight_decay: gradient + lambda * w
    "keras": 2.0,       # kernel_regularizer=l2(lambda): loss + lambda * sum(w**2)
    "tf_l2_loss": 1.0,  # lambda * tf.nn.l2_loss(w): loss + lambda * sum(w**2) / 2
    "decoupled": None,  # AdamW (Loshchilov & Hutter, 2019): w -= lr * lambda * w
}
LR_SCHEDULES = (None, "exponential", "multistep", "annealing")
INITS = (None, "gaussian", "xavier", "kaiming")

TRAINING_PARAMS = (
    _p("image_shape", None, [tuple, list, None], """
        image_shape : tuple (H, W) or (C, H, W), default={default}
            Shape used to unflatten 2-D ``X``, whose rows are then read in
            channels-first (C, H, W) order. None infers a one-channel shape (64 ->
            8x8, 784 -> 28x28, otherwise a 1 x n_features image); flattened images
            of several channels (3072 values: 3x32x32 channels-first or 32x32x3
            channels-last?) need ``image_shape`` or 4-D ``X``, a ValueError says so.
        """),
    _p("init", None, [StrOptions(set(INITS[1:])), None], """
        init : {{None, "gaussian", "xavier", "kaiming"}}, default={default}
            Weight initialisation of conv / linear layers (None: PyTorch's default).
        """),
    _p("init_std", 0.01, [real(0.0, None, "neither")], """
        init_std : float, default={default}
            Standard deviation for ``init="gaussian"``.
        """),
    _p("optimizer", "adam", [StrOptions(set(OPTIMIZERS)), type], """
        optimizer : {{"adam", "adamw", "sgd", "rmsprop"}} or Optimizer class, default={default}
            The torch optimizer (a ``torch.optim.Optimizer`` subclass may be given).
        """),
    _p("lr", 1e-3, [real()], """
        lr : float, default={default}
            Learning rate.
        """),
    _p("momentum", 0.9, [real()], """
        momentum : float, default={default}
            Momentum of SGD / RMSprop.
        """),
    _p("nesterov", False, ["boolean"], """
        nesterov : bool, default={default}
            Nesterov momentum for SGD.
        """),
    _p("batch_size", 32, [count()], """
        batch_size : int, default={default}
            Images per training step.
        """),
    _p("max_epochs", 10, [count(0)], """
        max_epochs : int, default={default}
            Passes over the training data (fewer with ``early_stopping``).
        """),
    _p("validation_fraction", 0.1, [real(0.0, 1.0, "neither"), None], """
        validation_fraction : float or None, default={default}
            Held-out (stratified) fraction of the training data for ``valid_loss``
            / ``valid_acc`` and early stopping. None trains on everything.
        """),
    _p("early_stopping", False, ["boolean"], """
        early_stopping : bool, default={default}
            Stop when ``valid_loss`` has not improved for ``patience`` epochs and
            restore the best weights.
        """),
    _p("patience", 5, [count()], """
        patience : int, default={default}
            Epochs without improvement of ``valid_loss`` before early stopping.
        """),
    _p("lr_schedule", None, [StrOptions(set(LR_SCHEDULES[1:])), None], """
        lr_schedule : {{None, "exponential", "multistep", "annealing"}}, default={default}
            Per-epoch learning-rate schedule: ``lr * lr_gamma**epoch``; ``lr`` times
            ``lr_gamma`` at each of ``lr_milestones``; ``lr / (1 + epoch / lr_anneal_T)``.
        """),
    _p("lr_gamma", 0.95, [real(0.0, None, "neither")], """
        lr_gamma : float, default={default}
            Factor of the "exponential" and "multistep" schedules.
        """),
    _p("lr_milestones", None, [tuple, list, None], """
        lr_milestones : sequence of int, default={default}
            Epochs after which "multistep" multiplies the learning rate by ``lr_gamma``.
        """),
    _p("lr_anneal_T", None, [real(0.0, None, "neither"), None], """
        lr_anneal_T : float, default={default}
            Time constant T of the "annealing" schedule.
        """),
    _p("weight_decay", 0.0, [real()], """
        weight_decay : float, default={default}
            L2 penalty lambda on the weights of conv / linear layers (not biases or
            BatchNorm), read as ``l2_convention`` says.
        """),
    _p("weight_decay_layers", None, [str, list, tuple, None], """
        weight_decay_layers : list of str, default={default}
            Layer names (or glob patterns such as ``"fc*"``) the L2 penalty is
            limited to; None applies it to all layers.
        """),
    _p("l2_convention", "pytorch", [StrOptions(set(L2_CONVENTIONS))], """
        l2_convention : {{"pytorch", "keras", "tf_l2_loss", "decoupled"}}, default={default}
            Which framework's L2 ``weight_decay`` is: ``"pytorch"`` (torch.optim's
            ``weight_decay``: gradient + lambda w), ``"keras"``
            (``kernel_regularizer=l2(lambda)``: loss + lambda sum(w^2), gradient
            + 2 lambda w), ``"tf_l2_loss"`` (``lambda * tf.nn.l2_loss(w)``: loss +
            lambda sum(w^2) / 2, gradient + lambda w) or ``"decoupled"`` (AdamW: w
            -= lr lambda w after each step, outside Adam's scaling; needs
            optimizer "adam" or "adamw"). ``train_loss`` never includes the penalty.
        """),
    _p("random_flip", False, ["boolean"], """
        random_flip : bool, default={default}
            Train-time augmentation: flip each training image horizontally with p=0.5.
        """),
    _p("random_shift", 0, [count(0)], """
        random_shift : int, default={default}
            Train-time augmentation: shift each training image by up to this many
            pixels in each direction (zero fill).
        """),
    _p("device", "cpu", [str, torch.device], """
        device : str, default={default}
            Torch device to train on (checked in ``fit``: a ValueError when this
            machine has no such device).
        """),
    _p("fast_path", None, [str, list, tuple, set, frozenset, None], """
        fast_path : None, "auto", str or list of str, default={default}
            Opt-in speed-ups of the forward / backward pass, any of
            ``"channels_last"`` (NHWC memory layout), ``"compile"``
            (``torch.compile``) and ``"bf16"`` (bfloat16 autocast). They change
            speed and, slightly, the numbers (bf16 rounds). ``"auto"`` times a
            few training steps of the network on a batch of the data in both
            layouts before training and keeps channels_last when it is >= 5 %
            faster (printed when ``verbose``, and on a CPU with native bf16 how much
            faster a bf16 step was, never chosen: it rounds; ``fast_path_`` records it; a run
            continued from ``checkpoint_dir``, also one saved under an explicit
            fast path, keeps the layout it trained with). CPU only: on other
            devices "auto" keeps the default layout. The layouts round differently, so two
            processes may choose differently: to repeat a run bit for bit, pass
            its ``fast_path_``. ``docs/benchmarks.md`` has what each gives on our
            machines.
        """),
    _p("callbacks", None, [list, tuple, None], """
        callbacks : list of skorch callbacks, default={default}
            Extra skorch callbacks (or ``(name, callback)`` tuples).
        """),
    _p("random_state", None, ["random_state"], """
        random_state : int, RandomState or None, default={default}
            Seeds weight initialisation, shuffling, dropout, augmentation and the
            validation split: the same int gives identical results on CPU.
        """),
    _p("checkpoint_dir", None, [str, os.PathLike, None], """
        checkpoint_dir : str, path-like or None, default={default}
            Folder for a resumable run: after every epoch the complete training
            state (weights, optimizer, LR schedule, early stopping, history, step
            counters and random states) is written atomically to
            ``checkpoint_dir/checkpoint.pt``. ``fit`` on a folder holding an
            unfinished run of the same parameters and data continues after its last
            completed epoch, bit-identical to an uninterrupted run on CPU; a
            finished run is loaded without training; another run's checkpoint
            raises ValueError (delete the file to start over). None writes nothing.
        """),
    _p("verbose", 1, ["verbose"], """
        verbose : int, default={default}
            0 silent, 1 one line per epoch, 2 also a progress bar per epoch.
        """),
)

_TRAINING = {p.name: p for p in TRAINING_PARAMS}


def _init_with(signature):
    """An ``__init__`` of ``signature`` that stores each argument as an attribute."""

    def __init__(self, *args, **kwargs):
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError as e:  # as Python's own: "CNNClassifier() got an unexpected ..."
            raise TypeError(f"{type(self).__name__}(): {e}") from None
        bound.apply_defaults()
        for name, value in list(bound.arguments.items())[1:]:
            setattr(self, name, value)

    __init__.__signature__ = signature
    return __init__


def stored_init(cls, positional, keyword):
    """Give ``cls`` an ``__init__`` that only stores its arguments, of the signature
    ``(self, *positional, *, *keyword)``, each a ``(name, default)`` pair: for estimators
    that share a parameter list but not its defaults (scikit-learn reads the parameters
    and defaults from the class's own ``__init__`` signature). Returns ``cls``."""
    kind = inspect.Parameter
    signature = inspect.Signature(
        [kind("self", kind.POSITIONAL_OR_KEYWORD)] +
        [kind(name, kind.POSITIONAL_OR_KEYWORD, default=d) for name, d in positional] +
        [kind(name, kind.KEYWORD_ONLY, default=d) for name, d in keyword])
    cls.__init__ = _init_with(signature)
    cls.__init__.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__.__module__ = cls.__module__
    return cls


def declare(cls, own, *, defaults=None, exclude=()):
    """Give ``cls`` its ``__init__``, ``_parameter_constraints`` and docstring entries.

    Parameters
    ----------
    cls : type
        The estimator class. Its docstring's line ``{training_parameters}``
        (indented like the entries) is replaced with the shared entries.
    own : sequence of Param
        The estimator's own parameters, first in the signature.
    defaults : dict, default=None
        The estimator's defaults of shared parameters that differ from the table's.
    exclude : sequence of str, default=()
        Shared parameters the estimator does not take.

    Returns
    -------
    cls
    """
    defaults = dict(defaults or {})
    unknown = (set(defaults) | set(exclude)) - set(_TRAINING)
    if unknown:
        raise ValueError(f"{cls.__name__}: not training parameters: {sorted(unknown)}")
    shared = [Param(p.name, defaults.get(p.name, p.default), p.constraints, p.doc)
              for p in TRAINING_PARAMS if p.name not in exclude]
    params = list(own) + shared
    # a signature lists its positional parameters first, so splitting keeps the order
    stored_init(cls, [(p.name, p.default) for p in params if p.positional],
                [(p.name, p.default) for p in params if not p.positional])
    cls._parameter_constraints = {p.name: p.constraints for p in params}
    if cls.__doc__ and "{training_parameters}" in cls.__doc__:
        marker = next(line for line in cls.__doc__.splitlines() if "{training_parameters}" in line)
        indent = marker[:len(marker) - len(marker.lstrip())]
        text = "\n".join(textwrap.indent(p.doc.format(default=_show(p.default)), indent)
                         for p in shared)
        cls.__doc__ = cls.__doc__.replace(marker, text)
    return cls


def _show(default):
    """A default as numpydoc writes it (strings in double quotes)."""
    return f'"{default}"' if isinstance(default, str) else repr(default)
