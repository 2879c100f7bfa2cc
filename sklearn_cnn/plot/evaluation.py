"""How a classifier does: example predictions and the confusion matrix."""

import numpy as np

from .._input import check_images, check_positive_int
from ._common import _to_display, figure

__all__ = ["examples", "confusion_matrix"]


def _label_name(label, target_names, param="target_names"):
    """Display name of class ``label``: ``target_names[label]`` for int labels (or a dict)."""
    if target_names is None:
        return str(label)
    if isinstance(target_names, dict):
        return str(target_names.get(label, label))
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
        if not 0 <= label < len(target_names):
            raise ValueError(f"{param} has {len(target_names)} names, but the labels include "
                             f"{label}")
        return str(target_names[label])
    return str(label)


def _check_target_names(target_names):
    if target_names is None or isinstance(target_names, dict):
        return target_names
    if isinstance(target_names, (str, bytes)) or not hasattr(target_names, "__len__"):
        raise TypeError(f"target_names must be None, a sequence of class names or a dict "
                        f"label -> name, got {type(target_names).__name__}")
    return list(target_names)


def examples(estimator, X, y, correct=True, n=5, *, target_names=None, random_state=0):
    """A row of correctly (or incorrectly) classified images.

    Parameters
    ----------
    estimator : fitted classifier
        Anything with ``predict(X)``; a CNNClassifier's ``image_shape`` is
        used to show flat ``X`` as images.
    X : array-like of images, (n, H, W), (n, H, W, C) or (n, features)
    y : array-like of shape (n,)
        True labels.
    correct : bool, default=True
        Show correctly classified images (True) or mistakes (False).
    n : int, default=5
        Number of images; fewer are shown (and the suptitle says so) when
        fewer exist.
    target_names : sequence or dict, default=None
        Class names for integer labels.
    random_state : int, RandomState or None, default=0
        Which of the candidates are shown.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per image titled ``"true: cat / pred: dog"``.

    Examples
    --------
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> d = load_digits_images()
    >>> clf = CNNClassifier("mnist_5x5", max_epochs=1, verbose=0, random_state=0)
    >>> clf = clf.fit(d.images[:100], d.target[:100])
    >>> fig = examples(clf, d.images[100:200], d.target[100:200], correct=False, n=3)
    >>> len(fig.axes)
    3
    """
    from sklearn.utils import check_random_state
    from sklearn.utils.validation import check_consistent_length, column_or_1d

    if not hasattr(estimator, "predict"):
        raise TypeError(f"estimator must be a fitted classifier with predict(), got "
                        f"{type(estimator).__name__}")
    if not isinstance(correct, (bool, np.bool_)):
        raise TypeError(f"correct must be True or False, got {correct!r}")
    n = check_positive_int(n, "n")
    target_names = _check_target_names(target_names)
    images = (estimator.layer_view().images(X) if hasattr(estimator, "layer_view")
              else check_images(X))
    y = column_or_1d(y)
    check_consistent_length(images, y)
    pred = np.asarray(estimator.predict(X))
    hits = np.flatnonzero((pred == y) == bool(correct))
    rng = check_random_state(random_state)
    chosen = np.sort(rng.choice(hits, min(n, len(hits)), replace=False)) if len(hits) else hits
    what = "correctly classified" if correct else "misclassified"
    fig, axes = figure(1, max(len(chosen), 1), size=(2, 2.3))
    if not len(chosen):
        ax = axes[0, 0]
        ax.text(0.5, 0.5, f"no {what} images", ha="center", va="center")
        ax.set_axis_off()
    for ax, i in zip(axes.flat, chosen):
        shown, cm = _to_display(images[i])
        ax.imshow(shown, cmap=cm, interpolation="nearest")
        ax.set_title(f"true: {_label_name(y[i], target_names)} / "
                     f"pred: {_label_name(pred[i], target_names)}", fontsize=9,
                     color="black" if correct else "firebrick")
        ax.set_xticks([])
        ax.set_yticks([])
    if len(chosen) < n:
        fig.suptitle(f"only {len(chosen)} {what} image{'s' if len(chosen) != 1 else ''} "
                     f"({n} requested, {len(y)} images)")
    else:
        fig.suptitle(f"{n} {what} images ({len(hits)} of {len(y)})")
    return fig


def confusion_matrix(estimator_or_y_true, X_or_y_pred, y=None, *, normalize=None,
                     target_names=None, cmap="Blues"):
    """Confusion-matrix heatmap with the counts (or rates) written in the cells.

    Call it as ``confusion_matrix(estimator, X, y)`` (predicts ``X``; the
    classes are ``estimator.classes_``) or ``confusion_matrix(y_true, y_pred)``.

    Parameters
    ----------
    estimator_or_y_true : fitted classifier or array-like of shape (n,)
    X_or_y_pred : array-like
        Images to predict, or predicted labels.
    y : array-like of shape (n,), default=None
        True labels; required with an estimator, must be None otherwise.
    normalize : {None, "true", "pred", "all"}, default=None
        As in :func:`sklearn.metrics.confusion_matrix`.
    target_names : sequence or dict, default=None
        Class names for integer labels (tick labels).
    cmap : str, default="Blues"

    Returns
    -------
    matplotlib.figure.Figure
        x axis "predicted", y axis "true", tick labels the class names.

    Examples
    --------
    >>> fig = confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], target_names=["a", "b", "c"])
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['a', 'b', 'c']
    """
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix
    from sklearn.utils.validation import check_consistent_length, column_or_1d

    if normalize not in (None, "true", "pred", "all"):
        raise ValueError(f"normalize must be None, 'true', 'pred' or 'all', got {normalize!r}")
    target_names = _check_target_names(target_names)
    if hasattr(estimator_or_y_true, "predict"):
        if y is None:
            raise ValueError("y (the true labels) is required when the first argument is an "
                             "estimator: confusion_matrix(estimator, X, y)")
        y_true = column_or_1d(y)
        y_pred = np.asarray(estimator_or_y_true.predict(X_or_y_pred))
        labels = getattr(estimator_or_y_true, "classes_", None)
    else:
        if y is not None:
            raise ValueError("y must be None when passing labels: confusion_matrix(y_true, "
                             "y_pred), or pass a fitted estimator first: "
                             "confusion_matrix(estimator, X, y)")
        if isinstance(estimator_or_y_true, (str, bytes)):
            raise TypeError("estimator_or_y_true must be a fitted estimator or an array of "
                            "labels, got a string")
        y_true = column_or_1d(estimator_or_y_true)
        y_pred = column_or_1d(X_or_y_pred)
        labels = None
    check_consistent_length(y_true, y_pred)
    if labels is None:
        labels = np.unique(np.concatenate([y_true, y_pred]))
    cm = sk_confusion_matrix(y_true, y_pred, labels=labels, normalize=normalize)
    names = [_label_name(c, target_names) for c in labels]
    k = len(labels)
    side = max(4.0, 0.45 * k + 2)
    fig, axes = figure(size=(side + 1, side))
    ax = axes[0, 0]
    im = ax.imshow(cm, cmap=cmap, interpolation="nearest")
    fig.colorbar(im, ax=ax, label="rate" if normalize else "count", shrink=0.8)
    if k <= 30:
        threshold = (cm.max() + cm.min()) / 2
        for i in range(k):
            for j in range(k):
                text = f"{cm[i, j]:.2f}" if normalize else f"{int(cm[i, j])}"
                ax.text(j, i, text, ha="center", va="center", fontsize=8 if k > 10 else 10,
                        color="white" if cm[i, j] > threshold else "black")
    rotate = max(len(s) for s in names) > 3
    ax.set_xticks(range(k), names, rotation=45 if rotate else 0,
                  ha="right" if rotate else "center")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    title = "confusion matrix"
    if normalize:
        title += {"true": " (rows sum to 1)", "pred": " (columns sum to 1)",
                  "all": " (all cells sum to 1)"}[normalize]
    ax.set_title(title)
    return fig
