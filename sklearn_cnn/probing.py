"""probe_layers: how well does each layer of a CNN separate the classes?"""

import time
from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm

from ._deprecation import DEPRECATED, is_unset, warn_renamed
from ._layers import check_layers
from .features.layer import default_probe_layers
from .linear_probe import LinearProbe
from .neighbors import WeightedKNNClassifier

__all__ = ["probe_layers", "default_probes", "resolve_probes", "layer_features"]


def default_probes(random_state=0, names=("linear_svc", "knn")):
    """Fresh probes by name: ``{name: classifier}``.

    ``"linear_svc"``: the reference reports' probe, one-vs-rest linear SVC
    (squared hinge, C=1, ``LinearSVC``'s objective) on standardised features,
    solved to convergence by :class:`~sklearn_cnn.linear_probe.LinearProbe`
    on every core (minutes where liblinear takes hours on 45,000 CIFAR-10
    images x 4,096 ``flatten`` features); it standardises inside
    (``standardize=True``: the problem of a ``StandardScaler`` in front, without
    the scaler's copy of the features). ``"liblinear_svc"``: the same
    objective with scikit-learn's ``LinearSVC`` (liblinear, one core) behind a
    ``StandardScaler``. ``"logistic"``: multinomial logistic regression (C=1,
    ``LogisticRegression``'s objective) on standardised features, LinearProbe
    again. ``"knn"``:
    5-nearest neighbours, euclidean, uniform votes (``KNeighborsClassifier(5)``'s
    predictions) by :class:`~sklearn_cnn.neighbors.WeightedKNNClassifier` on
    torch's matrix product (every torch thread).

    Examples
    --------
    >>> sorted(default_probes(names=["logistic", "knn"]))
    ['knn', 'logistic']
    """
    factories = {
        "linear_svc": lambda: LinearProbe("squared_hinge", C=1.0, standardize=True),
        "liblinear_svc": lambda: make_pipeline(
            StandardScaler(), LinearSVC(C=1.0, max_iter=5000, random_state=random_state)),
        "logistic": lambda: LinearProbe("log_loss", C=1.0, standardize=True),
        "knn": lambda: WeightedKNNClassifier(5, metric="euclidean", weights="uniform"),
    }
    names = [names] if isinstance(names, str) else list(names)
    unknown = [n for n in names if n not in factories]
    if unknown or not names:
        raise ValueError(f"unknown probe(s) {unknown}; choose from {sorted(factories)}"
                         if unknown else f"names must name at least one of {sorted(factories)}")
    return {name: factories[name]() for name in names}


def resolve_probes(probes, random_state=0):
    """``{name: classifier}`` from ``probes`` in any of its forms, the same everywhere
    (``probe_layers``, ``run_probe``, the experiments, ``--probes``): None (the defaults),
    one standard name or a list of them (:func:`default_probes`), or a dict
    ``{name: classifier}`` of your own (used as it is).

    Examples
    --------
    >>> sorted(resolve_probes("knn")) == sorted(resolve_probes(["knn"]))
    True
    """
    if probes is None:
        return default_probes(random_state)
    if isinstance(probes, dict):
        if not probes:
            raise ValueError("probes is an empty dict; give at least one {name: classifier}")
        bad = [name for name, p in probes.items() if not hasattr(p, "fit")]
        if bad:
            raise TypeError(f"probes must map names to classifiers (with fit); {bad} do not")
        return probes
    if isinstance(probes, str) or (isinstance(probes, (list, tuple))
                                   and all(isinstance(n, str) for n in probes)):
        return default_probes(random_state, probes)
    raise TypeError(f"probes must be None, a probe name, a list of names or a dict "
                    f"{{name: classifier}}, got {probes!r}")


def layer_features(estimator, X, layers, *, pooling=None, batch_size=256):
    """{layer: float32 features} for a fitted CNNClassifier, in one forward pass per batch."""
    return estimator.layer_view().extract(X, layers, pooling=pooling, batch_size=batch_size,
                                          by_layer=True)


def probe_layers(estimator, X_train, y_train, X_test, y_test, layers=None, probes=None,
                 cv=None, *, pooling=None, train_acc_samples=10000, return_estimator=False,
                 verbose=1, train_score_samples=DEPRECATED):
    """Train probes on the activations of each layer and score them.

    Parameters
    ----------
    estimator : CNNClassifier
        Used as it is when fitted; otherwise a clone is fitted on the training
        data (see ``return_estimator``).
    X_train, y_train, X_test, y_test : array-like
        Images and labels (any layout the estimator accepts).
    layers : list of str, default=None
        Layers to probe; None probes every layer from ``flatten`` (or ``gap``)
        on, except dropout, batch-norm and ``logits``.
    probes : str, list of str or dict of {name: classifier}, default=None
        The probes to train on each layer's features: standard names (see
        :func:`default_probes`) or your own scikit-learn classifiers; None: the
        one-vs-rest linear SVC and 5-NN (see :func:`resolve_probes`).
    cv : int or CV splitter, default=None
        When given, ``train_acc`` is the cross-validated accuracy on the
        training features; otherwise the accuracy on the training data itself.
    pooling : {None, "avg", "max"} or int, default=None
        Pool conv feature maps before probing (see :class:`LayerFeatures`).
    train_acc_samples : int or None, default=10000
        Without ``cv``, ``train_acc`` is measured on at most this many (seeded,
        random) training samples: a KNN scoring all 50,000 CIFAR training
        images against each other costs more than everything else. None: all.
    return_estimator : bool, default=False
        Also return the fitted CNN (useful when a clone was trained here).
    verbose : int, default=1
        Show a progress bar over (layer, probe) pairs.
    train_score_samples : int or None
        The name of ``train_acc_samples`` before 0.2 (a FutureWarning; removed
        in 0.3).

    Returns
    -------
    table : pandas.DataFrame
        One row per (layer, probe): layer, probe, n_features, train_acc,
        test_acc, fit_seconds; ``table.attrs["extract_seconds"]`` is the time
        the features of both sets took.
    estimator : CNNClassifier
        Only with ``return_estimator=True``.

    Examples
    --------
    >>> from sklearn_cnn import CNNClassifier, probe_layers
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> d = load_digits_images()
    >>> cnn = CNNClassifier("cifar_3x3", max_epochs=2, verbose=0, random_state=0)
    >>> table = probe_layers(cnn, d.images[:300], d.target[:300], d.images[300:400],
    ...                      d.target[300:400], verbose=0)
    >>> table[["layer", "probe"]].values.tolist()[:2]
    [['flatten', 'linear_svc'], ['flatten', 'knn']]
    """
    if not is_unset(train_score_samples):
        if train_acc_samples != 10000:
            raise ValueError(f"probe_layers got both train_acc_samples={train_acc_samples!r} "
                             f"and train_score_samples={train_score_samples!r}; "
                             "train_score_samples is the old name: give train_acc_samples only")
        warn_renamed("probe_layers' train_score_samples", "train_acc_samples")
        train_acc_samples = train_score_samples
    if train_acc_samples is not None and (
            isinstance(train_acc_samples, bool) or not isinstance(train_acc_samples, Integral)
            or train_acc_samples < 1):
        raise ValueError(f"train_acc_samples must be a positive int or None, got "
                         f"{train_acc_samples!r}")
    try:
        check_is_fitted(estimator, "net_")
    except NotFittedError:
        estimator = clone(estimator).fit(X_train, y_train)
    if layers is None:
        layers = default_probe_layers(estimator.layer_names_)
    layers = check_layers(layers, estimator.layer_names_, "layers")
    probes = resolve_probes(probes)
    start = time.perf_counter()
    train = layer_features(estimator, X_train, layers, pooling=pooling)
    test = layer_features(estimator, X_test, layers, pooling=pooling)
    extract_seconds = time.perf_counter() - start
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    score_idx = np.arange(len(y_train))
    if train_acc_samples is not None and len(y_train) > train_acc_samples:
        score_idx = np.sort(np.random.RandomState(0).choice(len(y_train), train_acc_samples,
                                                            replace=False))
    rows = []
    pairs = [(layer, name) for layer in layers for name in probes]
    for layer, name in tqdm(pairs, desc="probing", disable=not verbose):
        probe = clone(probes[name])
        start = time.perf_counter()
        probe.fit(train[layer], y_train)
        seconds = time.perf_counter() - start
        train_acc = (cross_val_score(clone(probes[name]), train[layer], y_train, cv=cv).mean()
                       if cv is not None else probe.score(train[layer][score_idx],
                                                          y_train[score_idx]))
        rows.append({"layer": layer, "probe": name, "n_features": train[layer].shape[1],
                     "train_acc": float(train_acc),
                     "test_acc": float(probe.score(test[layer], y_test)),
                     "fit_seconds": seconds})
    table = pd.DataFrame(rows)
    table.attrs["extract_seconds"] = extract_seconds  # both feature sets, every layer
    return (table, estimator) if return_estimator else table
