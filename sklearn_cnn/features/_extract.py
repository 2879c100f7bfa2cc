"""The feature transformers' memo of extracted features, and their feature names.

Extraction itself (batched ``forward_intermediates`` to named layers, pooling,
flattening) is :func:`sklearn_cnn._layers.extract_features`, the one path;
:func:`cached_extract` runs it through an in-process memo.
"""

import collections
import hashlib

import joblib
import numpy as np
import torch

from .._layers import (check_layers, check_pooling, extract_features,  # noqa: F401
                       pool_and_flatten)

__all__ = ["check_pooling", "pool_and_flatten", "extract_features", "cached_extract",
           "feature_names", "TransformCache", "check_layers", "weights_fingerprint"]


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
