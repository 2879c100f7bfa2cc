"""The one way a renamed name warns: :func:`warn_renamed`.

Every name renamed in 0.2 (parameters, layer-spec keys, module constants,
methods, experiment arguments) keeps working until 0.3 with the same
FutureWarning, "<old> is deprecated since 0.2 and will be removed in 0.3; use
<new>". The warning points at the user's line: the frames of this package and of
the libraries it runs inside (scikit-learn's Pipeline and searches, joblib, skorch,
torch) are skipped,
so no call site has to count its own stack level.
"""

import os
import sys
import warnings

__all__ = ["DEPRECATED", "SINCE", "REMOVED", "is_unset", "warn_renamed"]

#: The default of a renamed parameter: the user did not give the old name.
DEPRECATED = "deprecated"
SINCE, REMOVED = "0.2", "0.3"


def is_unset(value):
    """Whether a renamed parameter's ``value`` is its default (the old name not used)."""
    return isinstance(value, str) and value == DEPRECATED


def _library_dirs():
    dirs = [os.path.dirname(os.path.abspath(__file__))]
    for name in ("sklearn", "skorch", "torch", "joblib"):  # joblib: cross_val_score's fits
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__file__", None):
            dirs.append(os.path.dirname(os.path.abspath(module.__file__)))
    return tuple(d + os.sep for d in dirs)


def _user_stacklevel():
    """The ``stacklevel`` of the first frame outside this package and its libraries."""
    skip = _library_dirs()
    frame, level = sys._getframe(2), 2  # level 1: warn_renamed's caller
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(skip):
        frame, level = frame.f_back, level + 1
    return level


def warn_renamed(old, new, note=None):
    """Warn (FutureWarning) that ``old`` is deprecated for ``new``.

    Parameters
    ----------
    old, new : str
        How the user wrote the old name and should write the new one, e.g.
        ``"LayerFeatures(layer=...)"`` and ``"layers=... (one name or a list)"``.
    note : str, optional
        Why, when the rename is not obvious; appended in parentheses.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_renamed("f(x=...)", "f(y=...)")
    >>> str(caught[0].message)
    'f(x=...) is deprecated since 0.2 and will be removed in 0.3; use f(y=...)'
    """
    message = f"{old} is deprecated since {SINCE} and will be removed in {REMOVED}; use {new}"
    if note:
        message += f" ({note})"
    warnings.warn(message, FutureWarning, stacklevel=_user_stacklevel())
