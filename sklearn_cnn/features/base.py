"""What every feature transformer shares: the network wrapper, weight loading, the base class.

:class:`NetworkFeatures` is the one implementation behind
:class:`~sklearn_cnn.features.TorchvisionFeatures` (and its VGG / ResNet front-ends) and
:class:`~sklearn_cnn.CifarResNetFeatures`: the network is built in ``fit``, wrapped in a
:class:`FeatureNet` whose ``forward_intermediates`` is a
``torchvision.models.feature_extraction.create_feature_extractor`` graph that computes
the requested layers and nothing after them, and ``transform`` runs it through
:func:`sklearn_cnn._layers.extract_features`. The front-ends only differ in how they
build the network and name its layers.
"""

import numbers
import os
import re
import types
import uuid
from collections import OrderedDict

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .._deprecation import warn_renamed
from .._input import check_device, check_images, check_positive_int
from .._layers import LayerAccessMixin, LayerView, requested_layers
from ._extract import (cached_extract, check_layers, check_pooling, extract_features,
                       feature_names)

__all__ = ["NetworkFeatures", "FeatureNet", "Preprocess", "load_state_dict", "check_resize",
           "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_CHECKPOINT_SUFFIXES = (".pth", ".pt", ".th", ".bin", ".ckpt", ".pkl", ".tar")


# --------------------------------------------------------------------------- shared machinery

class FeatureNet(LayerAccessMixin, nn.Module):
    """A network with ``forward_intermediates(x, layers) -> {name: tensor}``.

    ``nodes`` maps readable layer names (in network order) to torchvision FX
    node names of ``model`` (a module path such as ``"layer1"`` stands for
    its last node). The extractor for a set of layers is built once, with
    ``create_feature_extractor``, which drops every node the requested
    layers do not depend on: nothing after the deepest layer is computed.
    Extractors share ``model``'s parameters and are not pickled.
    """

    def __init__(self, model, nodes):
        super().__init__()
        self.model = model
        self.nodes = OrderedDict(nodes)
        self._extractors = {}

    def forward_intermediates(self, x, layers):
        from torchvision.models.feature_extraction import create_feature_extractor

        key = tuple(layers)
        extractor = self._extractors.get(key)
        if extractor is None:
            extractor = create_feature_extractor(
                self.model, return_nodes={self.nodes[name]: name for name in layers})
            graphs = {id(g): g for g in (extractor.train_graph, extractor.eval_graph)}
            for graph in graphs.values():
                _copy_returned_values(graph)
            extractor.recompile()
            self._extractors[key] = extractor
        if extractor.training != self.training:
            # The extractor switches between its train and eval graphs in train(), which
            # also recurses into the shared submodules: keep their own modes (frozen
            # BatchNorm layers of a TransferClassifier stay in eval mode).
            modes = [(m, m.training) for m in self.model.modules()]
            extractor.train(self.training)
            for m, mode in modes:
                m.training = mode
        return extractor(x)

    def forward(self, x):
        return self.model(x)

    def layer_path(self, layer):
        """Module path (within ``model``) of a layer name (``conv1``, ``layer3``, ``conv4_1``)."""
        modules = dict(self.model.named_modules())
        for path in (layer, self.nodes.get(layer)):  # "conv1" the module, not its relu node
            if path and path in modules:
                return path
        raise ValueError(f"unknown layer {layer!r}; valid layer names: "
                         f"{[n for n, p in self.nodes.items() if p in modules]}")

    @property
    def layer_names(self):
        return list(self.nodes)

    def module_for(self, name):
        """The submodule behind a layer name (see :meth:`layer_path`)."""
        return self.model.get_submodule(self.layer_path(name))

    def __getstate__(self):
        state = dict(super().__getstate__())
        state["_extractors"] = {}  # rebuilt on demand; they share model's parameters
        return state


def _copy_returned_values(graph):
    """Return a copy of each requested node's value, taken right after it is computed.

    Nodes later in the graph may overwrite a returned tensor in place
    (torchvision's ``ReLU(inplace=True)``, ResNet's ``out += identity``), so
    without the copy a layer comes back as a deeper layer made it whenever
    that deeper layer is requested in the same call.
    """
    output = next(node for node in graph.nodes if node.op == "output")
    for node in list(output.all_input_nodes):
        with graph.inserting_after(node):
            copy = graph.call_method("clone", (node,))
        output.replace_input_with(node, copy)
    graph.lint()


class Preprocess:
    """Batch preprocessing: grayscale -> 3 channels, resize / center-crop, normalise.

    A plain class (not a closure) so fitted transformers pickle.
    """

    def __init__(self, mean, std, resize=None, crop=None):
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.resize, self.crop = resize, crop

    def __call__(self, x):
        from torchvision.transforms.v2 import functional as TF

        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] == 4:
            x = x[:, :3]  # drop alpha
        if self.resize is not None:
            x = TF.resize(x, list(self.resize), antialias=True)
        if self.crop is not None:
            x = TF.center_crop(x, list(self.crop))
        return (x - self.mean.to(x.device)) / self.std.to(x.device)

    def output_size(self, h, w):
        """(H, W) of the network input for (h, w) images."""
        if self.resize is not None:
            if len(self.resize) == 2:
                h, w = self.resize
            else:  # shorter side to resize[0], aspect ratio kept (torchvision semantics)
                s = self.resize[0]
                h, w = (s, int(s * w / h)) if h <= w else (int(s * h / w), s)
        if self.crop is not None:
            h, w = self.crop
        return int(h), int(w)


def check_resize(resize):
    """``resize``: None, an int (square) or (h, w) of positive ints -> None or (h, w)."""
    if resize is None:
        return None
    if isinstance(resize, numbers.Integral) and not isinstance(resize, bool):
        sizes = (resize, resize)
    elif isinstance(resize, (tuple, list)) and len(resize) == 2 and all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in resize):
        sizes = tuple(resize)
    else:
        raise TypeError(f"resize must be None, an int or a (height, width) tuple of ints, "
                        f"got {resize!r}")
    if min(sizes) < 1:
        raise ValueError(f"resize must hold positive sizes, got {resize!r}")
    return tuple(int(s) for s in sizes)


def _is_path(weights):
    if isinstance(weights, os.PathLike):
        return True
    return isinstance(weights, str) and (
        os.sep in weights or "/" in weights or weights.lower().endswith(_CHECKPOINT_SUFFIXES)
        or os.path.exists(weights))


def _source_name(source):
    """How an error message names a weights file (a path or an open file)."""
    if isinstance(source, (str, os.PathLike)):
        return repr(os.fspath(source))
    name = getattr(source, "name", None)
    return repr(name) if isinstance(name, (str, bytes)) else f"the file object {source!r}"


def load_state_dict(source, param_name="weights", *, trust_weights_file=False):
    """A state_dict from a path, an open binary file or a dict (checkpoint or state_dict).

    Checkpoints holding ``{"state_dict": ...}`` (or ``"model"``) are unwrapped
    and ``module.`` prefixes (from ``nn.DataParallel``) removed.

    Parameters
    ----------
    source : str, path-like, binary file object or dict
        A file written by ``torch.save``, or an already loaded state_dict.
    param_name : str, default="weights"
        Name of the parameter ``source`` came from, used in error messages.
    trust_weights_file : bool, default=False
        Files are read with ``torch.load(weights_only=True)``, which only
        rebuilds tensors and plain containers: unpickling arbitrary objects
        runs code the file chooses. ``True`` reads with ``weights_only=False``;
        only pass it for files from a source you trust (legacy checkpoints
        that pickle other objects next to the weights).

    Returns
    -------
    state_dict : dict

    Raises
    ------
    FileNotFoundError
        When the path does not exist.
    ValueError
        When the file is not a readable ``torch.save`` file (corrupt,
        truncated, empty), or holds objects other than tensors and
        ``trust_weights_file`` is False.
    """
    if isinstance(source, dict):
        state = source
    else:
        if isinstance(source, (str, os.PathLike)) and not os.path.isfile(source):
            raise FileNotFoundError(f"{param_name}: no such weights file: {os.fspath(source)!r}")
        try:
            state = torch.load(source, map_location="cpu", weights_only=not trust_weights_file)
        except Exception as exc:
            raise _unreadable_weights(source, param_name, exc, trust_weights_file) from exc
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise TypeError(f"{param_name} must hold a state_dict, got {type(state).__name__}")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _unreadable_weights(source, param_name, exc, trusted):
    """The ValueError for a weights file ``torch.load`` failed on with ``exc``."""
    name, message = _source_name(source), str(exc)
    unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", message)
    if unsafe and not trusted:
        return ValueError(
            f"{param_name}: the weights file {name} holds Python objects other than tensors "
            f"({unsafe.group(1)}); unpickling them could run arbitrary code, so weights are "
            "loaded with torch.load(weights_only=True). If you trust the file, pass "
            "trust_weights_file=True (or allow-list the type with "
            "torch.serialization.add_safe_globals).")
    if isinstance(exc, EOFError) or not message:
        reason = "the file is empty or ends too early"
    else:  # torch's own message on a weights-only failure is advice, not the cause
        reason = message.split("WeightsUnpickler error:")[-1].split("Check the documentation")[0]
        reason = " ".join(reason.split()).rstrip(".") or type(exc).__name__
    return ValueError(f"{param_name}: cannot read the weights file {name}: {reason}. It is not "
                      "a file written by torch.save, or it is corrupt or truncated.")


class _InstanceQuery:
    """A method of instances that, called on the class (the 0.1 classmethod
    ``VGGFeatures.available_layers("vgg11")``), warns and answers for the class's default
    estimator with that model: one signature, ``estimator.available_layers()``."""

    def __init__(self, method):
        self.method = method
        self.__doc__ = method.__doc__

    def __get__(self, obj, cls):
        if obj is not None:
            return types.MethodType(self.method, obj)

        def on_the_class(*args, **kwargs):  # 0.1: available_layers(arch=None) and the like
            estimator = cls()
            model = args[0] if args else kwargs.pop(estimator._model_param(), None)
            if kwargs or len(args) > 1:
                raise TypeError(f"{cls.__name__}.available_layers() takes at most the "
                                f"{estimator._model_param()!r} argument")
            warn_renamed(f"{cls.__name__}.available_layers() on the class",
                         f"{cls.__name__}({estimator._model_param()}=...).available_layers()")
            if model is not None:
                estimator.set_params(**{estimator._model_param(): model})
            return estimator.available_layers()
        return on_the_class


class NetworkFeatures(TransformerMixin, BaseEstimator):
    """Base class of the network-feature transformers (not for direct use).

    Subclasses implement ``_build_model()`` (the torch module, weights
    loaded), ``_layer_nodes(model)`` (readable layer name -> FX node name, in
    network order), ``_default_layers(names)`` and ``_preprocess(model)``.
    ``fit`` builds the network (``model_``), checks the layers and finds the
    feature sizes with one forward pass on one image; ``transform`` runs
    :func:`~sklearn_cnn.features._extract.extract_features`.
    """

    def _build_model(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _layer_nodes(self, model):  # pragma: no cover - abstract
        raise NotImplementedError

    def _default_layers(self, names):
        return [names[-2]]

    def _skeleton(self):  # pragma: no cover - abstract
        """The network without weights, for its layer names (on the meta device: free)."""
        raise NotImplementedError

    def _model_param(self):
        """The parameter that picks the network (``model``, ``arch``, ``depth``)."""
        raise NotImplementedError  # pragma: no cover - abstract

    @_InstanceQuery
    def available_layers(self):
        """The names ``layers`` accepts, in network order, for this estimator's network
        (fitted or not: unfitted, no weights are loaded).

        After ``fit`` they are ``layer_view().names`` (the one layer-access path).

        Examples
        --------
        >>> from sklearn_cnn import VGGFeatures
        >>> VGGFeatures(arch="vgg11").available_layers()[:3]
        ['conv1_1', 'relu1_1', 'pool1']
        """
        if hasattr(self, "model_"):
            return list(self.model_.nodes)
        return list(self._layer_nodes(self._skeleton()))

    def _preprocess(self, model):  # pragma: no cover - abstract
        raise NotImplementedError

    def _too_small_hint(self):
        return "pass a larger resize (e.g. resize=64) to upsample the images"

    def fit(self, X, y=None):
        """Build the network and check the layers; ``y`` is ignored.

        Parameters
        ----------
        X : array-like of images, (n, H, W), (n, H, W, C) or (n, features)
        y : ignored

        Returns
        -------
        self
        """
        images, integer = check_images(X, estimator=type(self).__name__, return_integer=True)
        check_pooling(self.pooling)
        check_positive_int(self.batch_size, "batch_size")
        device = check_device(self.device)
        if images.shape[1] not in (1, 3, 4):
            raise ValueError(f"X must have 1 (grayscale), 3 (RGB) or 4 (RGBA) channels, "
                             f"got {images.shape[1]}")
        requested = requested_layers(self)  # before the network (and its weights) loads
        model = self._build_model().to(device).eval()
        nodes = self._layer_nodes(model)
        names = list(nodes)
        layers = self._default_layers(names) if requested is None else \
            check_layers(requested, names, "layers")
        # A new module starts in train mode, and extraction restores the mode it found.
        self.model_ = FeatureNet(model, nodes).eval()
        self.preprocess_ = self._preprocess(model)
        self.layers_ = layers
        self.image_shape_ = tuple(int(s) for s in images.shape[1:])
        self.n_features_in_ = int(np.prod(self.image_shape_))
        self.integer_input_ = integer
        self.feature_sizes_ = self._probe(images[:1])
        self.n_features_out_ = int(sum(self.feature_sizes_))
        self.fingerprint_ = uuid.uuid4().hex  # identifies this fitted model in the memo
        return self

    def _probe(self, image):
        """Per-layer feature counts from one forward pass; too-small images -> ValueError."""
        h, w = self.image_shape_[1:]
        net_h, net_w = self.preprocess_.output_size(h, w)
        problem = None
        try:
            _, sizes = extract_features(self.model_, image, self.layers_, pooling=self.pooling,
                                        batch_size=1, device=self.device,
                                        preprocess=self.preprocess_)
        except RuntimeError as exc:
            problem, sizes = str(exc).splitlines()[0], None
        if sizes is not None and min(sizes) == 0:
            problem = "a layer has empty feature maps"
        if problem is not None:
            raise ValueError(
                f"images of {h}x{w} (network input {net_h}x{net_w}) are too small for layer(s) "
                f"{self.layers_}: {problem}. Use a shallower layer or {self._too_small_hint()}.")
        return [int(s) for s in sizes]

    def transform(self, X):
        """Flattened float32 activations of ``layers_``, shape (n, n_features_out_).

        Parameters
        ----------
        X : array-like of images, same image shape as in ``fit``

        Returns
        -------
        features : ndarray of shape (n_samples, n_features_out_), float32
        """
        check_is_fitted(self, "model_")
        return cached_extract(self.fingerprint_, self.model_, self._images(X, lazy=True),
                              self.layers_, pooling=self.pooling, batch_size=self.batch_size,
                              device=self.device, preprocess=self.preprocess_)

    def _images(self, X, lazy=False):
        return check_images(X, expected_shape=self.image_shape_, estimator=type(self).__name__,
                            lazy=lazy, integer_fit=getattr(self, "integer_input_", None))

    def layer_view(self):
        """The network's layers: a :class:`~sklearn_cnn._layers.LayerView` (after fit)."""
        check_is_fitted(self, "model_")
        return LayerView(self.model_, self._images, preprocess=self.preprocess_,
                         device=self.device)

    def get_feature_names_out(self, input_features=None):
        """``<layer>_<i>`` for every output feature."""
        check_is_fitted(self, "model_")
        return feature_names(self.layers_, self.feature_sizes_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # features are always float32
        tags.non_deterministic = self.weights is None and self.random_state is None
        return tags
