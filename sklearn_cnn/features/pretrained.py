"""Features from torchvision's (pretrained or randomly initialised) models.

:class:`TorchvisionFeatures` and its front-ends :class:`VGGFeatures` and
:class:`ResNetFeatures`; the machinery they share with
:class:`~sklearn_cnn.CifarResNetFeatures` is in :mod:`sklearn_cnn.features.base`.
"""

import os
from collections import OrderedDict

import torch
from torch import nn

from .._base import seed_from, torch_seed
from .._deprecation import DEPRECATED
from .._params import stored_init
from ._extract import check_layers
from .base import (IMAGENET_MEAN, IMAGENET_STD, NetworkFeatures, Preprocess, _is_path,
                   check_resize, load_state_dict)
from .base import FeatureNet  # noqa: F401  (re-exported: its home before 0.2)

__all__ = ["TorchvisionFeatures", "VGGFeatures", "ResNetFeatures"]


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
    layers : str or list of str, default=None
        Layer name(s) (see :meth:`available_layers`); None means the one before
        the last (the input of the classifier for most models).
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
    layer : deprecated
        The name of ``layers`` before 0.2: still accepted (with a FutureWarning)
        until 0.3.

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
    >>> f = TorchvisionFeatures("resnet18", layers="layer2", weights=None, pooling="avg",
    ...                         random_state=0).fit(X)
    >>> f.transform(X).shape
    (4, 128)
    """

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

    def _checked_model_name(self):
        from torchvision.models import list_models

        name = self._model_name()
        if not isinstance(name, str) or name not in list_models():
            raise ValueError(f"{self._model_param()} must be a torchvision classification model "
                             f"name, got {name!r}; see torchvision.models.list_models()")
        return name

    def _skeleton(self):
        from torchvision.models import get_model

        name = self._checked_model_name()
        with torch.device("meta"):  # no memory, no initialisation
            return get_model(name, weights=None)

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
        from torchvision.models import get_model

        name = self._checked_model_name()
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


# The front-ends' parameters after the network's: one list, in every front-end's signature.
_FRONT_END_PARAMS = (("weights", "DEFAULT"), ("pooling", None), ("resize", None),
                     ("batch_size", 64), ("device", "cpu"), ("random_state", None),
                     ("trust_weights_file", False), ("layer", DEPRECATED))
stored_init(TorchvisionFeatures, [("model", "resnet18"), ("layers", None)], _FRONT_END_PARAMS)


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

    def _default_layers(self, names):  # layers=None: the TypeError naming it
        return check_layers(None, names, "layers")


class VGGFeatures(_NamedTorchvisionFeatures):
    """Activations of a torchvision VGG, with the conventional layer names.

    ``conv<b>_<i>``, ``relu<b>_<i>`` (and ``bn<b>_<i>`` for the ``*_bn``
    models), ``pool1`` .. ``pool5``, ``fc6``, ``relu6``, ``fc7``, ``relu7``
    and ``fc8`` (the 1000 logits); ``fc6``/``fc7`` are before their ReLU.
    Everything else is as in :class:`TorchvisionFeatures`.

    Parameters
    ----------
    layers : str or list of str, default="pool5"
    arch : {"vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", ...}, default="vgg16"
    weights, pooling, resize, batch_size, device, random_state, trust_weights_file, layer
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
    layers : str or list of str, default="avgpool"
    arch : {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152"}, default="resnet18"
    weights, pooling, resize, batch_size, device, random_state, trust_weights_file, layer
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

    @staticmethod
    def _names(model):
        return OrderedDict([("conv1", "relu"), ("maxpool", "maxpool"), ("layer1", "layer1"),
                            ("layer2", "layer2"), ("layer3", "layer3"), ("layer4", "layer4"),
                            ("avgpool", "flatten"), ("fc", "fc")])


stored_init(VGGFeatures, [("layers", "pool5"), ("arch", "vgg16")], _FRONT_END_PARAMS)
stored_init(ResNetFeatures, [("layers", "avgpool"), ("arch", "resnet18")], _FRONT_END_PARAMS)
