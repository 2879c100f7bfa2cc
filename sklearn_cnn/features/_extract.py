"""The one feature-extraction path: batched forward passes to named layers.

Every feature transformer (trained CNNs, pretrained torchvision models, CIFAR
ResNets) hands a module with a ``forward_features(x, layers) -> {name: tensor}``
method to :func:`extract_features`, which runs it in batches under
``torch.inference_mode()``, pools conv maps, flattens and concatenates.
"""

import collections
import hashlib
import numbers

import joblib
import numpy as np
import torch
from torch.nn import functional as F

__all__ = ["check_pooling", "pool_and_flatten", "extract_features", "cached_extract",
           "feature_names", "TransformCache", "check_layers", "weights_fingerprint"]


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

    ``module.forward_features`` must stop after the deepest requested layer,
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
                outs = module.forward_features(x, layers)
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


def weights_fingerprint(module):
    """A digest of ``module``'s architecture (its repr) and every parameter and buffer.

    The memo key of a network whose weights can change behind a transformer's
    back (a wrapped estimator refit or trained further): equal digests mean
    equal features, whichever object or unpickled copy holds the weights.
    """
    digest = hashlib.sha1(repr(module).encode())
    for name, tensor in module.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def cached_extract(fingerprint, module, images, layers, *, pooling, batch_size, device="cpu",
                   preprocess=None):
    """:func:`extract_features` through :data:`TRANSFORM_CACHE`: what every ``transform`` runs.

    ``fingerprint`` names the model's weights: a fresh one per ``fit`` for a
    network the transformer owns, :func:`weights_fingerprint` for one it wraps.
    """
    key = TRANSFORM_CACHE.key(fingerprint, list(layers), pooling, images)
    cached = TRANSFORM_CACHE.get(key)
    if cached is not None:
        return cached
    features, _ = extract_features(module, images, layers, pooling=pooling,
                                   batch_size=batch_size, device=device, preprocess=preprocess)
    TRANSFORM_CACHE.put(key, features)
    return features


def feature_names(layers, sizes):
    """``<layer>_<i>`` for every output feature (get_feature_names_out of the transformers)."""
    return np.array([f"{layer}_{i}" for layer, size in zip(layers, sizes)
                     for i in range(size)], dtype=object)


class TransformCache:
    """A small in-process LRU memo of transform outputs.

    Keyed on the fitted model's fingerprint, the extraction settings and a
    digest of the input, so a transformer restored from a Pipeline's
    ``memory`` (a fresh unpickled copy per GridSearchCV candidate) reuses the
    features its twin computed for the same fold instead of running the CNN
    again. Arrays above ``max_bytes`` are not kept.
    """

    def __init__(self, max_entries=8, max_bytes=2 * 1024 ** 3):
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._data = collections.OrderedDict()
        self.hits = self.misses = 0

    @staticmethod
    def key(*parts):
        return joblib.hash(parts)

    def get(self, key):
        if key in self._data:
            self._data.move_to_end(key)
            self.hits += 1
            return self._data[key].copy()  # callers may modify what they get
        self.misses += 1
        return None

    def put(self, key, value):
        if value.nbytes > self.max_bytes:
            return
        self._data[key] = value
        while len(self._data) > self.max_entries or \
                sum(v.nbytes for v in self._data.values()) > self.max_bytes:
            self._data.popitem(last=False)

    def clear(self):
        self._data.clear()
        self.hits = self.misses = 0


TRANSFORM_CACHE = TransformCache()
