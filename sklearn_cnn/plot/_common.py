"""What every figure of :mod:`sklearn_cnn.plot` is made with: the figure, its file, the images."""

import numpy as np

__all__ = ["figure", "save_figure"]


def figure(nrows=1, ncols=1, size=(5, 4)):
    """A Figure with an ``nrows`` x ``ncols`` grid of axes, made without pyplot.

    The base of every figure here, and of the experiments' own: no GUI backend
    and no global state, so it works headless and in worker processes.

    Parameters
    ----------
    nrows, ncols : int, default=1
    size : (float, float), default=(5, 4)
        Width and height of one panel in inches.

    Returns
    -------
    fig : matplotlib.figure.Figure
        With constrained layout.
    axes : ndarray of matplotlib.axes.Axes, shape (nrows, ncols)
        Always two-dimensional.

    Examples
    --------
    >>> fig, axes = figure(1, 2)
    >>> axes.shape
    (1, 2)
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def save_figure(fig, path, dpi=100):
    """Write ``fig`` atomically (temp file, then rename), so no half-written PNG is left."""
    from .._io import atomic_write

    return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi))


def _to_display(image):
    """(C, H, W) float image -> (H, W) grayscale or (H, W, 3) RGB in [0, 1], and a cmap."""
    image = np.asarray(image, dtype=np.float64)
    if image.shape[0] >= 3:
        rgb = image[:3].transpose(1, 2, 0)
        lo, hi = rgb.min(), rgb.max()
        if lo < 0 or hi > 1:  # not already in [0, 1]: min-max scale for display
            rgb = (rgb - lo) / (hi - lo) if hi > lo else np.zeros_like(rgb)
        return rgb, None
    return image[0], "gray"
