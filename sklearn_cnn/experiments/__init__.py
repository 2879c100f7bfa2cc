"""Registry of the reference reports' experiments: one named function each.

Each experiment is a function ``fn(out, quick=False, **params) -> DataFrame``
that writes its tables (CSV + markdown) and figures into the folder ``out``.
``quick=True`` runs a seconds-long version on the embedded digits (the tests
use it). Run them with ``sklearn-cnn reproduce NAME`` or :func:`run_experiment`.
"""

import inspect
import time
from pathlib import Path

import joblib
import pandas as pd

from .._io import atomic_write

__all__ = ["register_experiment", "list_experiments", "run_experiment", "write_table",
           "markdown", "fit_or_load"]

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
    """Run experiment ``name``, writing into ``out``; returns its main table."""
    _load()
    if name not in _EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; available: {sorted(_EXPERIMENTS)}")
    fn = _EXPERIMENTS[name]["fn"]
    accepted = set(inspect.signature(fn).parameters) - {"out", "quick"}
    unknown = set(params) - accepted
    if unknown:
        raise ValueError(f"experiment {name!r} has no parameter(s) {sorted(unknown)}; "
                         f"it takes {sorted(accepted)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return fn(out, quick=quick, **params)


def fit_or_load(estimator, X, y, path, key, reuse):
    """Fit ``estimator`` and save it to ``path`` (atomically); or, when ``reuse`` and
    ``path`` holds one fitted with the same ``key`` (e.g. dataset and sizes) and
    parameters (verbose aside), load that instead. Returns (estimator, fit seconds)."""
    def params(est):
        return repr(sorted((k, v) for k, v in est.get_params().items() if k != "verbose"))

    if reuse and path.exists():
        saved = joblib.load(path)
        if saved["key"] == key and params(saved["estimator"]) == params(estimator):
            return saved["estimator"], saved["fit_seconds"]
        print(f"{path} was trained with other data or parameters; training again")
    start = time.perf_counter()
    estimator.fit(X, y)
    fit_seconds = time.perf_counter() - start
    atomic_write(path, lambda tmp: joblib.dump(
        {"estimator": estimator, "fit_seconds": fit_seconds, "key": key}, tmp))
    return estimator, fit_seconds


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
