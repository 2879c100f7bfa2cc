"""Looking inside trained networks: filters, activations and weights (per epoch too)."""

import numpy as np

from .._input import check_positive_int
from .._layers import check_layers, layer_view_of
from ._common import _to_display, figure

__all__ = ["filters", "activations", "weight_histograms", "weight_histogram_progression"]


def _grid_shape(n, max_cols=8):
    ncols = max(1, min(max_cols, int(np.ceil(np.sqrt(n)))))
    return -(-n // ncols), ncols


def filters(estimator, layer="conv1", max_filters=64, *, channel=0):
    """The kernels of a convolution layer as a grid of image tiles.

    Layers with 3 input channels (the first layer of an RGB network) are
    drawn as RGB tiles; every other layer as grayscale tiles of input
    channel ``channel`` (or of the mean over input channels). Each tile is
    min-max scaled to [0, 1] on its own, so tiles show patterns, not
    magnitudes (use :func:`weight_histograms` for those).

    Parameters
    ----------
    estimator : fitted CNNClassifier, feature transformer or Network
        A :class:`~sklearn_cnn.CNNClassifier` (any estimator with ``module_``
        and ``layer_names_``), a feature transformer exposing its network as
        ``model_.model`` (:class:`~sklearn_cnn.CifarResNetFeatures`,
        :class:`~sklearn_cnn.features.pretrained.VGGFeatures`, ...) or a
        :class:`~sklearn_cnn.architectures.Network`.
    layer : str, default="conv1"
        Name of a convolution layer of the estimator.
    max_filters : int, default=64
        Draw at most the first ``max_filters`` kernels.
    channel : int or "mean", default=0
        Input channel shown for non-RGB layers.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per kernel (one image each); suptitle
        ``"conv1 filters (16 of 16)"``.

    Examples
    --------
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> d = load_digits_images()
    >>> clf = CNNClassifier("mnist_5x5", max_epochs=1, verbose=0, random_state=0)
    >>> fig = filters(clf.fit(d.images[:100], d.target[:100]), "conv1")
    >>> fig.get_suptitle()
    'conv1 filters (4 of 4)'
    """
    import torch

    view = layer_view_of(estimator)
    max_filters = check_positive_int(max_filters, "max_filters")
    is_conv = lambda m: isinstance(m, torch.nn.Conv2d)  # noqa: E731
    valid = [n for n in view.names if view.submodule(n, is_conv) is not None]
    if not isinstance(layer, str):
        raise TypeError(f"layer must be a layer name (str), got {layer!r}")
    if layer not in valid:
        raise ValueError(f"layer {layer!r} is not a convolution layer of "
                         f"{type(estimator).__name__}; valid conv layer names: {valid}")
    weight = view.submodule(layer, is_conv).weight.detach().cpu().float().numpy()
    n_out, n_in = weight.shape[:2]
    rgb = n_in == 3
    if not rgb and not (channel == "mean" or (
            isinstance(channel, (int, np.integer)) and not isinstance(channel, bool)
            and 0 <= channel < n_in)):
        raise ValueError(f"channel must be 'mean' or an int in [0, {n_in}) (layer {layer!r} "
                         f"has {n_in} input channels), got {channel!r}")
    n = min(n_out, max_filters)
    nrows, ncols = _grid_shape(n)
    fig, axes = figure(nrows, ncols, size=(1.3, 1.4))
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.remove()
            continue
        w = weight[i]
        if rgb:
            tile = w.transpose(1, 2, 0)
        else:
            tile = w.mean(axis=0) if channel == "mean" else w[channel]
        lo, hi = tile.min(), tile.max()
        tile = (tile - lo) / (hi - lo) if hi > lo else np.full_like(tile, 0.5)
        ax.imshow(tile, cmap=None if rgb else "gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"#{i}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    what = "RGB" if rgb else ("mean over input channels" if channel == "mean"
                              else f"input channel {channel}")
    fig.suptitle(f"{layer} filters ({n} of {n_out})")
    fig.supxlabel(f"{weight.shape[2]}x{weight.shape[3]} kernels, {what}, each scaled to [0, 1]",
                  fontsize=9)
    return fig


def _single_image(view, image):
    """One image in any layout the estimator accepts -> float32 (1, C, H, W)."""
    if isinstance(image, (str, bytes)) or image is None:
        raise TypeError(f"image must be an array holding one image, got "
                        f"{type(image).__name__}")
    arr = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if arr.ndim == 4 or (arr.ndim == 3 and arr.shape[0] == 1 and arr.shape[-1] not in (1, 3, 4)):
        if arr.shape[0] != 1:
            raise ValueError(f"image must be one image; got a batch of shape {arr.shape}: "
                             f"pass image[i]")
        batch = arr  # already a batch of one: (1, H, W, C) or (1, H, W)
    elif arr.ndim in (1, 2, 3):
        batch = arr[None]  # (features,), (H, W) or (H, W, C)
    else:
        raise ValueError(f"image must have shape (H, W), (H, W, C), (features,) or "
                         f"(1, H, W, C); got {arr.shape}")
    try:
        return view.images(batch)
    except (TypeError, ValueError) as exc:  # name the parameter: "image", not "X"
        msg = str(exc)
        raise type(exc)("image " + msg[2:] if msg.startswith("X ") else msg) from None


def activations(estimator, image, layers=("conv1",), max_maps=16, *, cmap="viridis"):
    """Feature maps of one input image at the named layers.

    The first row shows the input image; then one row per layer with up to
    ``max_maps`` of its feature maps as heatmaps that share one colour scale
    per layer (with a colorbar). Flat layers (``fc1``, ``logits``, ...) are
    drawn as a single strip of their units; the logits strip is labelled with
    the class names.

    Parameters
    ----------
    estimator : fitted CNNClassifier, feature transformer or Network
        See :func:`filters`.
    image : array-like
        One image, in any layout the estimator accepts: (H, W), (H, W, C),
        (features,) or a batch of one, (1, H, W, C).
    layers : str or sequence of str, default=("conv1",)
        Layer names (``estimator.layer_names_``).
    max_maps : int, default=16
        At most this many feature maps (channels) per layer.
    cmap : str, default="viridis"

    Returns
    -------
    matplotlib.figure.Figure
        Image axes titled ``"input"``, ``"conv1 #0"``, ``"conv1 #1"``, ...
        (flat layers: the layer name) and one colorbar per layer.

    Examples
    --------
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> d = load_digits_images()
    >>> clf = CNNClassifier("mnist_5x5", max_epochs=1, verbose=0, random_state=0)
    >>> clf = clf.fit(d.images[:100], d.target[:100])
    >>> fig = activations(clf, d.images[0], layers=["conv1", "conv2"], max_maps=4)
    >>> [ax.get_title() for ax in fig.axes][:3]
    ['input', 'conv1 #0', 'conv1 #1']
    """
    import torch

    view = layer_view_of(estimator)
    layers = check_layers(layers, view.names, "layers")
    max_maps = check_positive_int(max_maps, "max_maps")
    x = _single_image(view, image)
    module = view.module
    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode():
            t = torch.from_numpy(x).to(view.device)
            if view.preprocess is not None:
                t = view.preprocess(t)
            outs = module.forward_intermediates(t, layers)
            maps = {name: outs[name][0].float().cpu().numpy() for name in layers}
    finally:
        module.train(was_training)

    ncols = max([min(m.shape[0], max_maps) for m in maps.values() if m.ndim == 3] + [1])
    fig, axes = figure(1 + len(layers), ncols, size=(1.6, 1.6))
    gs = axes[0, 0].get_subplotspec().get_gridspec()
    shown, cm = _to_display(x[0])
    axes[0, 0].imshow(shown, cmap=cm, interpolation="nearest")
    axes[0, 0].set_title("input")
    axes[0, 0].set_xticks([])
    axes[0, 0].set_yticks([])
    for ax in axes[0, 1:]:
        ax.remove()
    for row, name in enumerate(layers, start=1):
        a = maps[name]
        if a.ndim == 3:  # (C, H, W) feature maps
            k = min(a.shape[0], max_maps)
            vmin, vmax = float(a[:k].min()), float(a[:k].max())
            row_axes = []
            for c, ax in enumerate(axes[row]):
                if c >= k:
                    ax.remove()
                    continue
                im = ax.imshow(a[c], cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
                ax.set_title(f"{name} #{c}", fontsize=8)
                ax.set_xticks([])
                ax.set_yticks([])
                row_axes.append(ax)
            row_axes[0].set_ylabel(f"{name}\n{k} of {a.shape[0]} maps\n"
                                   f"{a.shape[1]}x{a.shape[2]}", fontsize=8)
        else:  # flat output: one strip of units over the whole row
            for ax in axes[row]:
                ax.remove()
            ax = fig.add_subplot(gs[row, :])
            v = a.reshape(1, -1)
            im = ax.imshow(v, cmap=cmap, aspect="auto", interpolation="nearest")
            ax.set_title(name, fontsize=9)
            ax.set_yticks([])
            classes = view.classes
            if name == "logits" and classes is not None and len(classes) == v.shape[1] \
                    and v.shape[1] <= 30:
                ax.set_xticks(range(v.shape[1]), [str(c) for c in classes], fontsize=8)
                ax.set_xlabel("class")
            else:
                ax.set_xlabel("unit")
            row_axes = [ax]
        cb = fig.colorbar(im, ax=row_axes, shrink=0.9, pad=0.01)
        cb.set_label("activation", fontsize=8)
    fig.suptitle(f"activations ({', '.join(layers)})")
    return fig


def _param_layers(view):
    """{name: module} of the layers (in order) that have parameters."""
    out = {}
    for name in view.names:
        m = view.submodule(name, lambda m: next(m.parameters(), None) is not None)
        if m is not None:
            out[name] = m
    return out


def weight_histograms(estimator, layers=None, bins=50, *, density=False):
    """Histograms of each layer's weights and biases, one axes per layer.

    Parameters
    ----------
    estimator : fitted CNNClassifier, feature transformer or Network
        See :func:`filters`.
    layers : str or list of str, default=None
        Layers with parameters; None: every convolution and dense layer
        (``conv*``, ``fc*``, ``logits``).
    bins : int, default=50
    density : bool, default=False
        Normalise each histogram to unit area, so that the few biases show
        up next to the many weights.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per layer, titled with the layer name; legend entries
        "weights" and (where the layer has them) "biases".

    Examples
    --------
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> d = load_digits_images()
    >>> clf = CNNClassifier("mnist_5x5", max_epochs=1, verbose=0, random_state=0)
    >>> fig = weight_histograms(clf.fit(d.images[:100], d.target[:100]))
    >>> [ax.get_title() for ax in fig.axes]
    ['conv1', 'conv2', 'conv3', 'fc1', 'logits']
    """
    import torch

    view = layer_view_of(estimator)
    bins = check_positive_int(bins, "bins")
    with_params = _param_layers(view)
    if layers is None:
        layers = [n for n, m in with_params.items()
                  if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        if not layers:
            raise ValueError(f"{type(estimator).__name__} has no conv or dense layers; pass "
                             f"layers from {list(with_params)}")
    else:
        layers = check_layers(layers, view.names, "layers")
        empty = [n for n in layers if n not in with_params]
        if empty:
            raise ValueError(f"layers: layer {empty[0]!r} has no parameters; layers with "
                             f"parameters: {list(with_params)}")
    nrows, ncols = _grid_shape(len(layers), max_cols=3)
    fig, axes = figure(nrows, ncols, size=(4, 3))
    for i, ax in enumerate(axes.flat):
        if i >= len(layers):
            ax.remove()
            continue
        name = layers[i]
        params = dict(with_params[name].named_parameters())
        for kind, label, color in (("weight", "weights", "C0"), ("bias", "biases", "C1")):
            values = [p.detach().cpu().float().numpy().ravel()
                      for pname, p in params.items() if pname.split(".")[-1] == kind]
            if values:
                values = np.concatenate(values)
                ax.hist(values, bins=bins, alpha=0.6, color=color, label=label,
                        density=bool(density))
        ax.set_title(name)
        ax.set_xlabel("value")
        ax.set_ylabel("density" if density else "count")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle("weight histograms")
    return fig


def _histogram_records(history, layer):
    """[(epoch, counts, edges)] of ``hist_<layer>`` from an estimator, net, History or frame."""
    import pandas as pd

    source = history
    if hasattr(source, "history_"):
        source = source.history_
    elif hasattr(source, "history") and not isinstance(source, (list, pd.DataFrame)):
        source = source.history  # a skorch net
    if isinstance(source, pd.DataFrame):
        rows = source.to_dict("records")
    elif isinstance(source, (list, tuple)) and all(isinstance(r, dict) for r in source):
        rows = list(source)  # skorch History (a list of per-epoch dicts)
    else:
        raise TypeError(f"history must be an estimator with history_, a skorch net or History, "
                        f"or a history DataFrame, got {type(history).__name__}")
    if not isinstance(layer, str):
        raise TypeError(f"layer must be a layer name (str), got {layer!r}")
    key = f"hist_{layer}"
    records = []
    for i, row in enumerate(rows):
        value = row.get(key)
        if isinstance(value, (list, tuple)) and len(value) == 2:
            counts, edges = (np.asarray(v, dtype=np.float64) for v in value)
            records.append((int(row.get("epoch", i + 1)), counts, edges))
    if not records:
        recorded = sorted({k[5:] for r in rows for k in r if str(k).startswith("hist_")})
        raise ValueError(f"layer {layer!r} has no recorded weight histograms (history key "
                         f"{key!r}); recorded layers: {recorded}. Train with "
                         f"callbacks=[RecordWeightHistograms([{layer!r}])]")
    return records


def weight_histogram_progression(history, layer, *, kind="image"):
    """How a layer's weight distribution changes during training.

    Draws the histograms :class:`~sklearn_cnn.callbacks.RecordWeightHistograms` recorded.

    Parameters
    ----------
    history : estimator, skorch net, skorch History or DataFrame
        Anything holding the records (``estimator.history_`` has them as
        column ``hist_<layer>``).
    layer : str
    kind : {"image", "lines"}, default="image"
        "image": epoch on x, weight value on y, colour = count (one column
        per recorded epoch, each with its own bin edges); "lines": one
        histogram curve per epoch, coloured by epoch.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.callbacks import RecordWeightHistograms
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> d = load_digits_images()
    >>> clf = CNNClassifier("mnist_5x5", max_epochs=2, verbose=0, random_state=0,
    ...                     callbacks=[RecordWeightHistograms(["conv1"])])
    >>> fig = weight_histogram_progression(clf.fit(d.images[:100], d.target[:100]), "conv1")
    >>> fig.axes[0].get_xlabel()
    'epoch'
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.ticker import MaxNLocator

    if kind not in ("image", "lines"):
        raise ValueError(f"kind must be 'image' or 'lines', got {kind!r}")
    records = _histogram_records(history, layer)
    fig, axes = figure(size=(6, 4))
    ax = axes[0, 0]
    epochs = [e for e, _, _ in records]
    if kind == "image":
        norm = Normalize(0, max(float(c.max()) for _, c, _ in records) or 1.0)
        for epoch, counts, edges in records:
            mesh = ax.pcolormesh([epoch - 0.5, epoch + 0.5], edges, counts[:, None],
                                 cmap="magma", norm=norm, shading="flat")
        ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("weight value")
        fig.colorbar(mesh, ax=ax, label="count")
    else:
        cmap = colormaps["viridis"]
        norm = Normalize(min(epochs), max(epochs) if max(epochs) > min(epochs) else min(epochs) + 1)
        for epoch, counts, edges in records:
            ax.plot((edges[:-1] + edges[1:]) / 2, counts, color=cmap(norm(epoch)),
                    label=f"epoch {epoch}")
        ax.set_xlabel("weight value")
        ax.set_ylabel("count")
        cb = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="epoch")
        cb.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"{layer} weights during training")
    return fig
