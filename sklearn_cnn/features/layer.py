"""LayerFeatures: the activations of named layers of a CNN as a scikit-learn transformer."""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from .._deprecation import DEPRECATED
from .._input import check_positive_int
from .._layers import requested_layers
from ._extract import (cached_extract, check_layers, check_pooling, feature_names,
                       weights_fingerprint)

__all__ = ["LayerFeatures", "default_probe_layers"]


def default_probe_layers(layer_names):
    """Layers worth probing: from ``flatten`` (or ``gap``) on, without logits/dropout/bn.

    Falls back to every hidden layer when the network has neither.
    """
    names = [n for n in layer_names if n not in ("input", "logits")]
    start = next((i for i, n in enumerate(names) if n in ("flatten", "gap")), 0)
    return [n for n in names[start:] if not n.startswith(("dropout", "bn"))]


class LayerFeatures(TransformerMixin, BaseEstimator):
    """Activations of one or more named layers of a CNN, as features.

    ``fit`` trains (a clone of) the wrapped classifier, unless it is already
    fitted and ``refit=False`` (or it is wrapped in
    :class:`sklearn.frozen.FrozenEstimator`, which survives cloning in
    cross-validation). ``transform`` runs the network in batches under
    ``torch.inference_mode()``, only as deep as the deepest requested layer,
    and returns the flattened float32 activations (several layers are
    concatenated in the given order).

    Transform results are memoised in-process per network weights and input, so a
    ``GridSearchCV`` over the probe's hyper-parameters on
    ``Pipeline([...], memory=...)`` runs the CNN once per fold and data set,
    not once per candidate.

    Parameters
    ----------
    estimator : CNNClassifier, default=None
        The network to train and read. None means ``CNNClassifier(verbose=0)``.
    layers : str or list of str, default=None
        Layer name(s) from ``estimator.layer_names_``; None means the last
        hidden layer (the one before ``logits``).
    pooling : {None, "avg", "max"} or int, default=None
        Shrink conv feature maps before flattening: global average / max
        pooling, or k x k adaptive average pooling.
    refit : bool, default=True
        Whether ``fit`` trains the estimator. With False, an already fitted
        estimator is used as it is.
    batch_size : int, default=256
        Images per forward pass.
    layer : deprecated
        The name of ``layers`` before 0.2: still accepted (with a FutureWarning)
        until 0.3.

    Attributes
    ----------
    estimator_ : CNNClassifier
        The fitted network.
    layers_ : list of str
    n_features_out_ : int
    feature_sizes_ : list of int
        Number of features contributed by each layer.

    Examples
    --------
    >>> from sklearn.pipeline import Pipeline
    >>> from sklearn.svm import LinearSVC
    >>> from sklearn_cnn import CNNClassifier, LayerFeatures
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> d = load_digits_images()
    >>> pipe = Pipeline([
    ...     ("features", LayerFeatures(CNNClassifier("cifar_3x3", max_epochs=2, verbose=0,
    ...                                               random_state=0), "fc1")),
    ...     ("svm", LinearSVC())])
    >>> pipe.fit(d.images[:300], d.target[:300]).score(d.images[300:400], d.target[300:400]) > 0.5
    True
    """

    def __init__(self, estimator=None, layers=None, *, pooling=None, refit=True, batch_size=256,
                 layer=DEPRECATED):
        self.estimator = estimator
        self.layers = layers
        self.layer = layer
        self.pooling = pooling
        self.refit = refit
        self.batch_size = batch_size

    def _base_estimator(self):
        if self.estimator is None:
            from ..classifier import CNNClassifier

            return CNNClassifier(verbose=0)
        return self.estimator

    def fit(self, X, y=None):
        """Fit the wrapped CNN on (X, y) (unless ``refit=False`` and it is fitted)."""
        check_pooling(self.pooling)
        check_positive_int(self.batch_size, "batch_size")
        requested = requested_layers(self)  # before the wrapped CNN trains
        base = self._base_estimator()
        if not hasattr(base, "layer_names_") and not hasattr(base, "fit"):
            raise TypeError(f"estimator must be a CNNClassifier-like estimator, got {base!r}")
        fitted = False
        if not self.refit:
            try:
                check_is_fitted(base)
                fitted = True
            except NotFittedError:
                pass
        if fitted:
            self.estimator_ = base
        else:
            if y is None:
                raise ValueError("LayerFeatures requires y to be passed, but the target y is None: "
                                 "it trains the wrapped CNN (pass a fitted estimator with "
                                 "refit=False to skip training)")
            self.estimator_ = clone(base).fit(X, y)
        net = _unwrap(self.estimator_).module_
        valid = list(net.layer_names)
        self.layers_ = [valid[-2]] if requested is None else check_layers(requested, valid,
                                                                          "layers")
        self.n_features_in_ = _unwrap(self.estimator_).n_features_in_
        # feature sizes from the traced output shapes, without a forward pass
        self.feature_sizes_ = self._feature_sizes(net)
        self.n_features_out_ = int(sum(self.feature_sizes_))
        return self

    def _feature_sizes(self, net):
        return [_pooled_size(net.output_shapes[n], self.pooling) for n in self.layers_]

    def transform(self, X):
        """Flattened float32 activations of ``layers_``, shape (n, n_features_out_).

        The activations of the wrapped network's current weights: with
        ``refit=False`` the estimator may have been refit since ``fit``.
        """
        check_is_fitted(self, "estimator_")
        cnn = _unwrap(self.estimator_)
        net = cnn.module_
        if not set(self.layers_) <= set(net.layer_names) or \
                self._feature_sizes(net) != self.feature_sizes_:
            raise ValueError(f"the wrapped {type(cnn).__name__} was refit with another network "
                             f"since LayerFeatures.fit (layers {self.layers_} no longer give "
                             f"{self.feature_sizes_} features); call fit again")
        view = cnn.layer_view()
        # Keyed on the weights, not on this fit: the wrapped estimator can be refit or
        # trained further under a refit=False transformer.
        return cached_extract(weights_fingerprint(net), view.module, view.images(X, lazy=True),
                              self.layers_, pooling=self.pooling, batch_size=self.batch_size,
                              device=view.device)

    def get_feature_names_out(self, input_features=None):
        """``<layer>_<i>`` for every output feature."""
        check_is_fitted(self, "estimator_")
        return feature_names(self.layers_, self.feature_sizes_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.transformer_tags.preserves_dtype = ["float32"]  # features are always float32
        tags.non_deterministic = getattr(self._base_estimator(), "random_state", 0) is None
        return tags


def _unwrap(estimator):
    """The fitted CNNClassifier-like estimator (unwrapping FrozenEstimator)."""
    inner = estimator if hasattr(estimator, "module_") else getattr(estimator, "estimator", None)
    if inner is None or not hasattr(inner, "module_"):
        raise TypeError("estimator must be a fitted CNNClassifier-like estimator with module_, "
                        f"got {type(estimator).__name__}")
    return inner


def _pooled_size(shape, pooling):
    if len(shape) != 3 or pooling is None:
        return int(np.prod(shape))
    if pooling in ("avg", "max"):
        return int(shape[0])
    return int(shape[0] * pooling * pooling)  # adaptive pooling: k x k whatever the input
