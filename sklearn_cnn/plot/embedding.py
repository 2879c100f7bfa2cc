"""2-D maps of features (t-SNE or PCA), one colour per class."""

import numpy as np

from ._common import figure

__all__ = ["embedding", "embeddings"]


def _project(features, method, random_state, max_points):
    features = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    rng = np.random.RandomState(random_state)
    idx = np.arange(len(features))
    if max_points is not None and len(features) > max_points:
        idx = np.sort(rng.choice(len(features), max_points, replace=False))
    X = features[idx]
    if method == "tsne":
        from sklearn.decomposition import PCA
        from sklearn.manifold import TSNE

        if X.shape[1] > 50:  # the usual PCA-50 first: faster t-SNE, same picture
            X = PCA(50, random_state=random_state).fit_transform(X)
        perplexity = min(30.0, max(2.0, (len(X) - 1) / 3))
        coords = TSNE(2, perplexity=perplexity, init="pca", n_jobs=-1,  # neighbours: all cores
                      random_state=random_state).fit_transform(X)
    elif method == "pca":
        from sklearn.decomposition import PCA

        coords = PCA(2, random_state=random_state).fit_transform(X)
    else:
        raise ValueError(f"method must be 'tsne' or 'pca', got {method!r}")
    return coords, idx


def _scatter(ax, coords, y, target_names, title):
    classes = np.unique(y)
    cmap = _class_colors(len(classes))
    for i, cls in enumerate(classes):
        m = y == cls
        label = str(target_names[cls]) if target_names is not None and \
            np.issubdtype(np.asarray(classes).dtype, np.integer) else str(cls)
        ax.scatter(coords[m, 0], coords[m, 1], s=6, color=cmap[i], label=label)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])


def _class_colors(n):
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def embedding(features, y, method="tsne", *, target_names=None, title=None, max_points=2000,
              random_state=0):
    """2-D map (t-SNE or PCA) of ``features``, one colour per class, with a legend.

    Parameters
    ----------
    features : array-like of shape (n, ...)
    y : array-like of shape (n,)
    method : {"tsne", "pca"}
    target_names : sequence, default=None
        Names for integer labels in the legend.
    max_points : int, default=2000
        Subsample (seeded) to keep t-SNE quick.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> fig = embedding(np.random.rand(60, 5), np.arange(60) % 3, method="pca")
    >>> len(fig.axes)
    1
    """
    y = np.asarray(y)
    coords, idx = _project(features, method, random_state, max_points)
    fig, axes = figure()
    ax = axes[0, 0]
    _scatter(ax, coords, y[idx], target_names, title or f"{method.upper()} embedding")
    ax.legend(loc="center left", bbox_to_anchor=(1, 0.5), fontsize=8, markerscale=2,
              title="class")
    return fig


def embeddings(features_by_layer, y, method="tsne", *, target_names=None, max_points=2000,
               random_state=0, ncols=3):
    """A grid of :func:`embedding` maps, one per layer (``{layer: features}``)."""
    y = np.asarray(y)
    n = len(features_by_layer)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = figure(nrows, ncols, size=(4, 4))
    for ax, (layer, feats) in zip(axes.flat, features_by_layer.items()):
        coords, idx = _project(feats, method, random_state, max_points)
        _scatter(ax, coords, y[idx], target_names, f"{layer} ({method})")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize=8, markerscale=2)
    return fig
