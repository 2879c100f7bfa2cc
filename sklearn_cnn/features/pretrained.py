"""Features from pretrained (or randomly initialised) networks: torchvision models.

All the transformers of this module (and :class:`~sklearn_cnn.CifarResNetFeatures`)
share one implementation, :class:`NetworkFeatures`: the network is built in
``fit``, wrapped in a :class:`FeatureNet` whose ``forward_features`` is a
``torchvision.models.feature_extraction.create_feature_extractor`` graph that
computes the requested layers and nothing after them, and ``transform`` runs
it through :func:`~sklearn_cnn.features._extract.extract_features`. The
front-ends only differ in how they build the network and name its layers.
"""

import numbers
import os
import re
import uuid
from collections import OrderedDict

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .._base import seed_from, torch_seed
from .._input import check_device, check_images, check_positive_int
from ._extract import (cached_extract, check_layers, check_pooling, extract_features,
                       feature_names)

__all__ = ["NetworkFeatures", "FeatureNet", "Preprocess", "TorchvisionFeatures", "VGGFeatures",
           "ResNetFeatures", "load_state_dict"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_CHECKPOINT_SUFFIXES = (".pth", ".pt", ".th", ".bin", ".ckpt", ".pkl", ".tar")


# --------------------------------------------------------------------------- shared machinery

class FeatureNet(nn.Module):
    """A network with ``forward_features(x, layers) -> {name: tensor}``.

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

    def forward_features(self, x, layers):
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

    def layer_module(self, layer):
        """The submodule behind a layer name (see :meth:`layer_path`)."""
        return self.model.get_submodule(self.layer_path(layer))

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
        model = self._build_model().to(device).eval()
        nodes = self._layer_nodes(model)
        names = list(nodes)
        layers = self._default_layers(names) if self.layer is None else \
            check_layers(self.layer, names)
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
        images = check_images(X, expected_shape=self.image_shape_, estimator=type(self).__name__,
                              lazy=True, integer_fit=getattr(self, "integer_input_", None))
        return cached_extract(self.fingerprint_, self.model_, images, self.layers_,
                              pooling=self.pooling, batch_size=self.batch_size,
                              device=self.device, preprocess=self.preprocess_)

    def get_feature_names_out(self, input_features=None):
        """``<layer>_<i>`` for every output feature."""
        check_is_fitted(self, "model_")
        return feature_names(self.layers_, self.feature_sizes_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # features are always float32
        tags.non_deterministic = self.weights is None and self.random_state is None
        return tags


# --------------------------------------------------------------------------- torchvision

def _weights_file(weights):
    """Where torch.hub keeps (looks for) the file of a torchvision weights enum."""
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))


class TorchvisionFeatures(NetworkFeatures):
    """Activations of layers of a torchvision classification model, as features.

    The model is built in ``fit`` with ``torchvision.models.get_model``. Its
    layers are named by their torchvision FX node names (``"layer1"``,
    ``"features.4"``, ``"flatten"``, ... see :meth:`available_layers`); the
    network only runs as deep as the deepest requested layer. Images are
    preprocessed like the weights expect (their own resize, center crop and
    mean/std normalisation) unless ``resize`` is given; grayscale images are
    repeated to 3 channels, integer (0-255) images are scaled to [0, 1].

    Parameters
    ----------
    model : str, default="resnet18"
        A torchvision classification model name (``torchvision.models.list_models``).
    layer : str or list of str, default=None
        Layer name(s); None means the one before the last (the input of the
        classifier for most models).
    weights : "DEFAULT", str, WeightsEnum, path or None, default="DEFAULT"
        "DEFAULT", a weights name (``"IMAGENET1K_V1"`` or
        ``"ResNet18_Weights.IMAGENET1K_V1"``) or enum: torchvision's weights,
        read from ``$TORCH_HOME/hub/checkpoints`` (downloaded if missing and
        online). A file path (or open file): a state_dict (or checkpoint)
        saved with ``torch.save``. None: random initialisation seeded by
        ``random_state``. With a path or None, images are normalised with
        ImageNet's mean and std and only resized when ``resize`` is given.
    pooling : {None, "avg", "max"} or int, default=None
        Shrink conv feature maps before flattening: global average / max
        pooling, or k x k adaptive average pooling.
    resize : int or (int, int), default=None
        Resize images to this size (square for an int) instead of the
        weights' own resize and crop. Needed for tiny images.
    batch_size : int, default=64
        Images per forward pass.
    device : str, default="cpu"
    random_state : int, RandomState or None, default=None
        Seeds the random initialisation when ``weights=None``.
    trust_weights_file : bool, default=False
        Weights files (a path, an open file, or torchvision's file in
        ``$TORCH_HOME/hub/checkpoints``) are read with
        ``torch.load(weights_only=True)``: only tensors and plain containers,
        never arbitrary pickled objects, whose unpickling runs code. True
        allows them; pass it only for a file from a source you trust.

    Attributes
    ----------
    model_ : FeatureNet
        The network (``model_.model`` is the torchvision module).
    preprocess_ : Preprocess
    layers_ : list of str
    feature_sizes_ : list of int
    n_features_out_ : int
    n_features_in_ : int
    image_shape_ : tuple (C, H, W)
    integer_input_ : bool
        Whether the ``fit`` images were integers (0-255 values, divided by
        255); float images outside [-0.5, 1.5] given to ``transform`` warn.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cnn.features.pretrained import TorchvisionFeatures
    >>> X = np.random.RandomState(0).randint(0, 256, (4, 32, 32, 3)).astype(np.uint8)
    >>> f = TorchvisionFeatures("resnet18", layer="layer2", weights=None, pooling="avg",
    ...                         random_state=0).fit(X)
    >>> f.transform(X).shape
    (4, 128)
    """

    def __init__(self, model="resnet18", layer=None, *, weights="DEFAULT", pooling=None,
                 resize=None, batch_size=64, device="cpu", random_state=None,
                 trust_weights_file=False):
        self.model = model
        self.layer = layer
        self.weights = weights
        self.pooling = pooling
        self.resize = resize
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state
        self.trust_weights_file = trust_weights_file

    # hooks of the front-ends ------------------------------------------------
    def _model_name(self):
        return self.model

    def _model_param(self):
        return "model"

    def _layer_nodes(self, model):
        """Every FX node (but the input) of the eval graph, and every module path.

        A module path (``"layer1"``, ``"features"``) stands for its last node
        and is listed right after it.
        """
        from torchvision.models.feature_extraction import get_graph_node_names

        names = get_graph_node_names(model)[1][1:]
        last = {}  # module path -> index of its last node
        for i, name in enumerate(names):
            parts = name.split(".")
            for k in range(1, len(parts)):
                last[".".join(parts[:k])] = i
        nodes = OrderedDict()
        for i, name in enumerate(names):
            nodes[name] = name
            for prefix in sorted((p for p, j in last.items() if j == i), key=len, reverse=True):
                nodes.setdefault(prefix, prefix)
        return nodes

    def available_layers(self):
        """Valid layer names of the fitted model, in network order."""
        check_is_fitted(self, "model_")
        return list(self.model_.nodes)

    # -----------------------------------------------------------------------
    def _resolve_weights(self):
        """None, ("path", source) or ("enum", WeightsEnum)."""
        from torchvision.models import get_model_weights

        weights = self.weights
        if weights is None:
            return None
        if hasattr(weights, "read") or _is_path(weights):
            return ("path", weights)
        if isinstance(weights, str):
            enum = get_model_weights(self._model_name())
            try:
                return ("enum", enum.verify(weights))
            except (KeyError, ValueError, TypeError):
                raise ValueError(
                    f"unknown weights {weights!r} for {self._model_name()}: pass 'DEFAULT', "
                    f"one of {[f'{enum.__name__}.{w.name}' for w in enum]}, a path to a "
                    "state_dict, or None") from None
        from torchvision.models import WeightsEnum

        if isinstance(weights, WeightsEnum):
            return ("enum", get_model_weights(self._model_name()).verify(weights))
        raise TypeError(f"weights must be 'DEFAULT', a weights name or enum, a path to a "
                        f"state_dict, or None; got {weights!r}")

    def _build_model(self):
        from torchvision.models import get_model, list_models

        name = self._model_name()
        if not isinstance(name, str) or name not in list_models():
            raise ValueError(f"{self._model_param()} must be a torchvision classification model "
                             f"name, got {name!r}; see torchvision.models.list_models()")
        check_resize(self.resize)
        weights = self._resolve_weights()
        if weights is None:
            with torch_seed(seed_from(self.random_state)):
                return get_model(name, weights=None)
        kind, value = weights
        if kind == "path":
            model = get_model(name, weights=None)
            state = load_state_dict(value, trust_weights_file=self.trust_weights_file)
            try:
                model.load_state_dict(state)
            except RuntimeError as exc:
                raise ValueError(f"weights file does not fit {name}: "
                                 f"{str(exc).splitlines()[0]}") from None
            return model
        path = _weights_file(value)
        if os.path.isfile(path) and not self.trust_weights_file:
            # torchvision's builders unpickle this file with weights_only=False: a file put
            # there must first pass the safe reader (which also names a corrupt file).
            load_state_dict(path)
        try:
            return get_model(name, weights=value)
        except Exception as exc:  # typically a failed download (offline)
            if os.path.isfile(path):
                raise
            raise FileNotFoundError(
                f"could not load the {value} weights of {name}: torchvision looked for "
                f"{path} ($TORCH_HOME/hub/checkpoints/{os.path.basename(value.url)}) and could "
                f"not download {value.url} ({type(exc).__name__}: {exc}). Put the file there "
                "(or set TORCH_HOME to a folder whose hub/checkpoints holds it), or pass "
                "weights=<path to the file>.") from exc

    def _preprocess(self, model):
        resize = check_resize(self.resize)
        weights = self._resolve_weights()
        if weights is not None and weights[0] == "enum":
            t = weights[1].transforms()
            mean = tuple(getattr(t, "mean", IMAGENET_MEAN))
            std = tuple(getattr(t, "std", IMAGENET_STD))
            if resize is None:
                rs, crop = getattr(t, "resize_size", None), getattr(t, "crop_size", None)
                return Preprocess(mean, std, resize=tuple(rs) if rs else None,
                                  crop=(tuple(crop) * 2)[:2] if crop else None)
            return Preprocess(mean, std, resize=resize)
        return Preprocess(IMAGENET_MEAN, IMAGENET_STD, resize=resize)


class _NamedTorchvisionFeatures(TorchvisionFeatures):
    """A torchvision family with conventional layer names (``arch`` picks the model)."""

    ARCHS = ()

    def _model_name(self):
        if self.arch not in self.ARCHS:
            raise ValueError(f"arch must be one of {list(self.ARCHS)}, got {self.arch!r}")
        return self.arch

    def _model_param(self):
        return "arch"

    def _layer_nodes(self, model):
        return self._names(model)

    def _default_layers(self, names):  # layer has a default in the front-ends
        return check_layers(self.layer, names)

    @classmethod
    def available_layers(cls, arch=None):
        """Layer names of ``arch`` (default: the class's default arch), in network order."""
        from torchvision.models import get_model

        arch = arch or cls.DEFAULT_ARCH
        if arch not in cls.ARCHS:
            raise ValueError(f"arch must be one of {list(cls.ARCHS)}, got {arch!r}")
        with torch.device("meta"):  # no memory, no initialisation
            model = get_model(arch, weights=None)
        return list(cls._names(model))


class VGGFeatures(_NamedTorchvisionFeatures):
    """Activations of a torchvision VGG, with the conventional layer names.

    ``conv<b>_<i>``, ``relu<b>_<i>`` (and ``bn<b>_<i>`` for the ``*_bn``
    models), ``pool1`` .. ``pool5``, ``fc6``, ``relu6``, ``fc7``, ``relu7``
    and ``fc8`` (the 1000 logits); ``fc6``/``fc7`` are before their ReLU.
    Everything else is as in :class:`TorchvisionFeatures`.

    Parameters
    ----------
    layer : str or list of str, default="pool5"
    arch : {"vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", ...}, default="vgg16"
    weights, pooling, resize, batch_size, device, random_state, trust_weights_file
        See :class:`TorchvisionFeatures`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cnn.features.pretrained import VGGFeatures
    >>> X = np.random.RandomState(0).rand(2, 32, 32, 3).astype(np.float32)
    >>> VGGFeatures("pool4", arch="vgg11", weights=None, random_state=0).fit_transform(X).shape
    (2, 2048)
    """

    ARCHS = ("vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn")
    DEFAULT_ARCH = "vgg16"

    def __init__(self, layer="pool5", arch="vgg16", *, weights="DEFAULT", pooling=None,
                 resize=None, batch_size=64, device="cpu", random_state=None,
                 trust_weights_file=False):
        self.layer = layer
        self.arch = arch
        self.weights = weights
        self.pooling = pooling
        self.resize = resize
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state
        self.trust_weights_file = trust_weights_file

    @staticmethod
    def _names(model):
        nodes, block, i = OrderedDict(), 1, 1
        for idx, m in enumerate(model.features):
            if isinstance(m, nn.Conv2d):
                nodes[f"conv{block}_{i}"] = f"features.{idx}"
            elif isinstance(m, nn.BatchNorm2d):
                nodes[f"bn{block}_{i}"] = f"features.{idx}"
            elif isinstance(m, nn.ReLU):
                nodes[f"relu{block}_{i}"] = f"features.{idx}"
                i += 1
            elif isinstance(m, nn.MaxPool2d):
                nodes[f"pool{block}"] = f"features.{idx}"
                block, i = block + 1, 1
        for name, idx in (("fc6", 0), ("relu6", 1), ("fc7", 3), ("relu7", 4), ("fc8", 6)):
            nodes[name] = f"classifier.{idx}"
        return nodes


class ResNetFeatures(_NamedTorchvisionFeatures):
    """Activations of a torchvision ResNet: conv1, maxpool, layer1 .. layer4, avgpool, fc.

    ``conv1`` is the stem after its batch norm and ReLU (before max pooling),
    ``avgpool`` the pooled 512 (2048 for resnet50+) features, ``fc`` the
    logits. Everything else is as in :class:`TorchvisionFeatures`.

    Parameters
    ----------
    layer : str or list of str, default="avgpool"
    arch : {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152"}, default="resnet18"
    weights, pooling, resize, batch_size, device, random_state, trust_weights_file
        See :class:`TorchvisionFeatures`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cnn.features.pretrained import ResNetFeatures
    >>> X = np.random.RandomState(0).rand(2, 32, 32, 3).astype(np.float32)
    >>> ResNetFeatures("layer3", weights=None, pooling="avg", random_state=0).fit_transform(X).shape
    (2, 256)
    """

    ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
    DEFAULT_ARCH = "resnet18"

    def __init__(self, layer="avgpool", arch="resnet18", *, weights="DEFAULT", pooling=None,
                 resize=None, batch_size=64, device="cpu", random_state=None,
                 trust_weights_file=False):
        self.layer = layer
        self.arch = arch
        self.weights = weights
        self.pooling = pooling
        self.resize = resize
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state
        self.trust_weights_file = trust_weights_file

    @staticmethod
    def _names(model):
        return OrderedDict([("conv1", "relu"), ("maxpool", "maxpool"), ("layer1", "layer1"),
                            ("layer2", "layer2"), ("layer3", "layer3"), ("layer4", "layer4"),
                            ("avgpool", "flatten"), ("fc", "fc")])
