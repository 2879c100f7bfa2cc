"""The one way to reach a network's layers: names, submodules, intermediate outputs.

Every network module of the package (:class:`~sklearn_cnn.architectures.Network`,
the siamese embedding net, the pretrained backbones' ``FeatureNet``, the
transfer net) speaks one protocol, timm's:

- ``layer_names``: the layer names in forward order;
- ``forward_intermediates(x, layers) -> {name: tensor}``: the outputs of the
  named layers, computing nothing after the deepest one;
- ``module_for(name)``: the submodule behind a layer name (its parameters),
  a ValueError listing the valid names for an unknown one.

Every fitted estimator with a network (:class:`~sklearn_cnn.CNNClassifier`,
:class:`~sklearn_cnn.SiameseEmbedder`, :class:`~sklearn_cnn.TransferClassifier`,
the feature transformers) hands out a :class:`LayerView` from one method,
``layer_view()``: the module, the conversion of user images to what the module
takes, and batched extraction (:func:`extract_features`). Feature transformers,
probes, plots and callbacks reach layers through it and nothing else.
"""

import inspect
import numbers

import numpy as np
import torch
from torch.nn import functional as F

from ._deprecation import DEPRECATED, is_unset, warn_renamed
from ._input import check_images

__all__ = ["LayerView", "LayerAccessMixin", "layer_view_of", "module_for", "check_pooling",
           "check_layers", "pool_and_flatten", "extract_features"]


class LayerAccessMixin:
    """The protocol's defaults for a torch module with named children as layers."""

    def module_for(self, name):
        """The submodule behind layer ``name``."""
        if name in self.layer_names:
            found = dict(self.named_children()).get(name)
            if found is not None:
                return found
        raise ValueError(f"unknown layer {name!r}; valid layer names: {list(self.layer_names)}")

    def forward_features(self, x, layers):
        """Deprecated name of :meth:`forward_intermediates` (removed in 0.3)."""
        warn_renamed("forward_features", "forward_intermediates")
        return self.forward_intermediates(x, layers)

    def layer_module(self, name):
        """Deprecated name of :meth:`module_for` (removed in 0.3)."""
        warn_renamed("layer_module", "module_for")
        return self.module_for(name)


def module_for(module, name):
    """The submodule of ``module`` behind layer ``name``.

    A module of the protocol answers itself; for any other torch module, a
    submodule path (``"layer1.0.conv1"``) or a unique last path component
    (``"conv1"``) names it. ValueError (listing valid names) otherwise.
    """
    if hasattr(module, "module_for"):
        return module.module_for(name)
    named = dict(module.named_modules())
    if name and name in named:
        return named[name]
    hits = [m for path, m in named.items() if path.split(".")[-1] == name]
    if len(hits) == 1:
        return hits[0]
    raise ValueError(f"unknown layer {name!r}; valid layer names: "
                     f"{[p for p in named if p and '.' not in p]}")


class LayerView:
    """What a fitted estimator shows of its network: the one layer-access seam.

    Parameters
    ----------
    module : torch.nn.Module
        A module of the protocol (``layer_names``, ``forward_intermediates``,
        ``module_for``).
    images : callable
        ``images(X, lazy=False)``: user images -> float32 (n, C, H, W) as the
        estimator itself converts them (shape, scaling, flattened input).
    preprocess : callable, default=None
        Runs on each batch of images before the module (resizing,
        normalisation of pretrained backbones).
    classes : array-like, default=None
        The estimator's classes (labels of a ``logits`` layer).
    device : str or torch.device, default="cpu"

    Examples
    --------
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> d = load_digits_images()
    >>> clf = CNNClassifier(max_epochs=1, verbose=0, random_state=0).fit(d.images[:100],
    ...                                                                  d.target[:100])
    >>> view = clf.layer_view()
    >>> view.names[:3]
    ['input', 'conv1', 'bn1']
    >>> view.extract(d.images[:5], ["conv1"], pooling="avg").shape  # conv1's 32 channels
    (5, 32)
    """

    def __init__(self, module, images, *, preprocess=None, classes=None, device="cpu"):
        self.module, self._images = module, images
        self.preprocess, self.classes, self.device = preprocess, classes, device

    @property
    def names(self):
        """Layer names in forward order."""
        return list(self.module.layer_names)

    def images(self, X, lazy=False):
        """User images -> float32 (n, C, H, W) (or lazy batches), checked as ``fit`` does."""
        return self._images(X, lazy=lazy)

    def module_for(self, name):
        """The submodule behind layer ``name`` (ValueError listing valid names)."""
        return self.module.module_for(name)

    def submodule(self, name, accept=None):
        """The submodule of layer ``name`` if it exists and ``accept`` (a predicate)
        holds for it, else None: for figures that skip layers without weights."""
        try:
            m = self.module.module_for(name)
        except ValueError:
            return None
        return m if m is not None and (accept is None or accept(m)) else None

    def extract(self, X, layers, *, pooling=None, batch_size=256, by_layer=False):
        """Flattened float32 outputs of ``layers`` for images ``X``, in one pass per batch.

        Returns them concatenated, (n, features), or with ``by_layer`` as a dict
        ``{layer: (n, features of that layer)}``.
        """
        layers = list(layers)
        features, sizes = extract_features(self.module, self.images(X, lazy=True), layers,
                                           pooling=pooling, batch_size=batch_size,
                                           device=self.device, preprocess=self.preprocess)
        if not by_layer:
            return features
        ends = np.cumsum(sizes)
        return {layer: features[:, end - size:end]
                for layer, size, end in zip(layers, sizes, ends)}


def layer_view_of(obj, param="estimator"):
    """The :class:`LayerView` of a fitted estimator, or of a bare protocol module.

    NotFittedError (a ValueError) for an unfitted estimator; TypeError, naming
    ``param``, for anything without layers.
    """
    if isinstance(obj, torch.nn.Module) and hasattr(obj, "forward_intermediates") and \
            hasattr(obj, "layer_names"):
        shape = getattr(obj, "output_shapes", {}).get("input")
        return LayerView(obj, lambda X, lazy=False: check_images(
            X, expected_shape=shape, name="image", lazy=lazy))
    if hasattr(obj, "layer_view"):
        return obj.layer_view()  # NotFittedError before fit
    raise TypeError(f"{param} must be a fitted estimator with a network (CNNClassifier, "
                    f"SiameseEmbedder, TransferClassifier, a feature transformer) or a "
                    f"sklearn_cnn Network, got {type(obj).__name__}")


def _malloc_trim():
    """glibc's malloc_trim, or a no-op elsewhere.

    glibc raises its mmap threshold after large frees, so the per-batch buffers
    of a long extraction pile up in the heap and RSS grows with n although
    nothing is kept; trimming after each batch keeps the peak at the output
    plus a constant.
    """
    try:
        import ctypes

        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    return lambda: trim(0)


_TRIM = _malloc_trim()

POOLINGS = (None, "avg", "max")


def check_pooling(pooling):
    """Validate ``pooling``: None, "avg", "max" or a positive int k (k x k adaptive avg)."""
    if pooling in POOLINGS:
        return pooling
    if isinstance(pooling, numbers.Integral) and not isinstance(pooling, bool) and pooling >= 1:
        return int(pooling)
    raise ValueError(f"pooling must be None, 'avg', 'max' or a positive int k (k x k adaptive "
                     f"average pooling), got {pooling!r}")


def check_layers(layer, valid, param_name="layer"):
    """``layer`` (str or list of str) -> list of names, checked against ``valid``."""
    layers = [layer] if isinstance(layer, str) else layer
    if not isinstance(layers, (list, tuple)) or not layers or \
            not all(isinstance(name, str) for name in layers):
        raise TypeError(f"{param_name} must be a layer name or a non-empty list of layer "
                        f"names, got {layer!r}")
    unknown = [name for name in layers if name not in valid]
    if unknown:
        raise ValueError(f"unknown {param_name} {unknown[0]!r}; valid layer names: "
                         f"{list(valid)}")
    if len(set(layers)) != len(layers):
        raise ValueError(f"{param_name} lists a layer twice: {list(layers)}")
    return list(layers)


# The feature transformers' parameter was ``layer`` before 0.2; ``layers`` now (one name
# or several, as everywhere else). The old one is still accepted, with a FutureWarning.
def requested_layers(estimator):
    """The transformer's ``layers``, or its deprecated ``layer`` when that is set."""
    old = getattr(estimator, "layer", DEPRECATED)
    if is_unset(old):
        return estimator.layers
    default = inspect.signature(type(estimator).__init__).parameters["layers"].default
    try:
        at_default = bool(estimator.layers == default)
    except ValueError:  # an array of names: not the default (a str or None)
        at_default = False
    if not at_default:
        raise ValueError(f"{type(estimator).__name__} got both layers={estimator.layers!r} and "
                         f"layer={old!r}; layer is the old name of layers: give layers only")
    warn_renamed(f"{type(estimator).__name__}(layer=...)", "layers=... (one name or a list)")
    return old


def pool_and_flatten(t, pooling):
    """Shrink (n, C, H, W) maps with ``pooling``, then flatten to (n, features)."""
    if t.dim() == 4:
        if pooling == "avg":
            t = t.mean(dim=(2, 3))
        elif pooling == "max":
            t = t.amax(dim=(2, 3))
        elif pooling is not None:
            t = F.adaptive_avg_pool2d(t, pooling)
    return t.reshape(t.shape[0], -1)


def extract_features(module, images, layers, *, pooling=None, batch_size=256, device="cpu",
                     preprocess=None):
    """Concatenated, flattened outputs of ``layers`` for float32 images (n, C, H, W).

    ``images`` is an array or an :class:`~sklearn_cnn._input.ImageBatches`.

    ``module.forward_intermediates`` must stop after the deepest requested layer,
    so nothing beyond it is computed. ``preprocess`` (tensor -> tensor) runs on
    each batch first (resizing, normalisation). Returns float32 (n, features)
    and the list of per-layer feature counts.
    """
    was_training = module.training
    module.eval()
    out, sizes, n = None, None, len(images)
    try:
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                x = torch.from_numpy(images[start:start + batch_size]).to(device)
                if preprocess is not None:
                    x = preprocess(x)
                if x.dim() == 4:  # oneDNN's CPU convolutions are faster on NHWC memory
                    x = x.contiguous(memory_format=torch.channels_last)
                outs = module.forward_intermediates(x, layers)
                parts = [pool_and_flatten(outs[name], pooling) for name in layers]
                sizes = [p.shape[1] for p in parts]
                batch = torch.cat(parts, dim=1).float().cpu().numpy()
                if out is None:  # filled in place: peak memory = the output + one batch
                    out = np.empty((n, batch.shape[1]), dtype=np.float32)
                out[start:start + len(batch)] = batch
                del x, outs, parts, batch
                _TRIM()
    finally:
        module.train(was_training)
    return out, sizes
