"""The CIFAR-10 ResNets of He et al. (2016) as a feature transformer.

Depth 6n+2 (20, 32, 44, 56, 110): a 3x3 conv with 16 channels, three stages
of n basic blocks with 16, 32 and 64 channels (stages 2 and 3 halve the
resolution, with parameter-free "option A" shortcuts that subsample and
zero-pad channels), global average pooling and a 64 -> 10 linear layer. The
module and its state_dict keys follow akamaster/pytorch_resnet_cifar10, so
its checkpoints (``resnet20-12fca82f.th``, ...) load as they are.
"""

import numbers
import os

from torch import nn
from torch.nn import functional as F

from .._deprecation import DEPRECATED, warn_renamed
from .._base import seed_from, torch_seed
from ._extract import check_layers
from .base import IMAGENET_MEAN, IMAGENET_STD, NetworkFeatures, Preprocess, load_state_dict

__all__ = ["CifarResNet", "CifarResNetFeatures", "IMAGENET_MEAN", "IMAGENET_STD",
           "RESNET20_WEIGHTS", "pretrained_weights_path"]

# The checkpoint of akamaster/pytorch_resnet_cifar10 behind the "cifar_resnet20" backbone.
RESNET20_WEIGHTS = "resnet20-12fca82f.th"

# The normalisation the akamaster/pytorch_resnet_cifar10 checkpoints were trained with: its
# trainer.py uses ImageNet's mean and std. Measured with resnet20 on the shared JPEG CIFAR-10
# test set: 0.8103 accuracy with these, 0.8079 with CIFAR's own statistics
# (0.4914, 0.4822, 0.4465) / (0.2023, 0.1994, 0.2010). Hence IMAGENET_MEAN / IMAGENET_STD.
_RENAMED = {"CIFAR_MEAN": "IMAGENET_MEAN", "CIFAR_STD": "IMAGENET_STD"}  # they never were CIFAR's


def __getattr__(name):  # the old names, for one release
    if name in _RENAMED:
        warn_renamed(name, _RENAMED[name], note="it holds ImageNet's statistics")
        return globals()[_RENAMED[name]]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def pretrained_weights_path(file_name=RESNET20_WEIGHTS):
    """Path of a pretrained CIFAR ResNet checkpoint below ``$SKLEARN_CNN_SHARED/weights``.

    Raises
    ------
    sklearn_cnn.datasets.DataNotFoundError
        (a FileNotFoundError) When the file is not there, saying where to put
        it: a pretrained network never silently falls back to random weights.
    """
    from ..datasets import SHARED_ENV, DataNotFoundError, shared_path

    path = shared_path("weights", file_name)
    if path is None:
        root = os.environ.get(SHARED_ENV)
        where = (f"{root}/weights/{file_name}" if root else
                 f"<folder>/weights/{file_name} and set {SHARED_ENV}=<folder> (it is unset)")
        raise DataNotFoundError(
            f"the pretrained CIFAR ResNet weights {file_name} were not found: put the "
            f"checkpoint (from akamaster/pytorch_resnet_cifar10) at {where}, or pass "
            f"CifarResNetFeatures(weights=<path to the file>) (weights=None for a randomly "
            "initialised network).")
    return path


class _PadShortcut(nn.Module):
    """Option-A shortcut: subsample by 2 and zero-pad ``planes // 4`` channels each side."""

    def __init__(self, planes):
        super().__init__()
        self.pad = planes // 4

    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class _BasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _PadShortcut(planes) if stride != 1 or in_planes != planes \
            else nn.Identity()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-``depth`` for 32x32 images (He et al. 2016, section 4.2)."""

    def __init__(self, depth=20, num_classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        in_planes, stages = 16, []
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = []
            for s in [stride] + [1] * (n - 1):
                blocks.append(_BasicBlock(in_planes, planes, s))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.linear = nn.Linear(64, num_classes)
        for m in self.modules():  # the reference's _weights_init
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(self.flatten(self.avgpool(x)))


class CifarResNetFeatures(NetworkFeatures):
    """Activations of a CIFAR-10 ResNet (He et al. 2016), as features.

    Layers: ``conv1`` (after its batch norm and ReLU), ``layer1``,
    ``layer2``, ``layer3``, ``avgpool`` (64 features) and ``logits`` (the 10
    class scores; their argmax is the network's prediction). Images are
    normalised with :data:`IMAGENET_MEAN` / :data:`IMAGENET_STD`; grayscale images
    are repeated to 3 channels. The network is fully convolutional, so any
    image size works (it was trained on 32x32).

    Parameters
    ----------
    depth : int, default=20
        6n+2: 20, 32, 44, 56, 110, ...
    layers : str or list of str, default="avgpool"
    weights : path, file object, dict or None, default=None
        A checkpoint of akamaster/pytorch_resnet_cifar10 (e.g.
        ``shared_path("weights", "resnet20-12fca82f.th")``) or a state_dict;
        None: random initialisation seeded by ``random_state``.
    pooling : {None, "avg", "max"} or int, default=None
        Shrink conv feature maps before flattening.
    batch_size : int, default=256
    device : str, default="cpu"
    random_state : int, RandomState or None, default=None
        Seeds the random initialisation when ``weights=None``.
    trust_weights_file : bool, default=False
        Read ``weights`` files with ``torch.load(weights_only=False)``, which
        can run code stored in the file; only for files you trust. By default
        only tensors and plain containers are read (see
        :func:`~sklearn_cnn.features.base.load_state_dict`).
    layer : deprecated
        The name of ``layers`` before 0.2: still accepted (with a FutureWarning)
        until 0.3.

    Attributes
    ----------
    model_ : FeatureNet
        ``model_.model`` is the :class:`CifarResNet`.
    layers_, feature_sizes_, n_features_out_, n_features_in_, image_shape_, integer_input_
        As in :class:`~sklearn_cnn.features.pretrained.TorchvisionFeatures`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cnn.features.cifar_resnet import CifarResNetFeatures
    >>> X = np.random.RandomState(0).randint(0, 256, (4, 32, 32, 3)).astype(np.uint8)
    >>> CifarResNetFeatures(depth=20, layers="layer2", pooling="avg",
    ...                     random_state=0).fit_transform(X).shape
    (4, 32)
    """

    LAYERS = {"conv1": "relu", "layer1": "layer1", "layer2": "layer2", "layer3": "layer3",
              "avgpool": "flatten", "logits": "linear"}

    def __init__(self, depth=20, layers="avgpool", *, weights=None, pooling=None, batch_size=256,
                 device="cpu", random_state=None, trust_weights_file=False, layer=DEPRECATED):
        self.depth = depth
        self.layers = layers
        self.weights = weights
        self.pooling = pooling
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state
        self.trust_weights_file = trust_weights_file
        self.layer = layer

    def _model_param(self):
        return "depth"

    def _skeleton(self):
        return None  # the names do not depend on the depth

    def _build_model(self):
        d = self.depth
        if isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 8 or (d - 2) % 6:
            raise ValueError(f"depth must be 6n+2 with n >= 1 (20, 32, 44, 56, 110), got {d!r}")
        with torch_seed(seed_from(self.random_state)):
            model = CifarResNet(int(d))
        if self.weights is not None:
            if not (isinstance(self.weights, dict) or hasattr(self.weights, "read")
                    or isinstance(self.weights, (str, bytes)) or hasattr(self.weights,
                                                                         "__fspath__")):
                raise TypeError(f"weights must be None, a path, a file object or a state_dict, "
                                f"got {type(self.weights).__name__}")
            try:
                model.load_state_dict(load_state_dict(
                    self.weights, trust_weights_file=self.trust_weights_file))
            except RuntimeError as exc:
                raise ValueError(f"weights do not fit a depth-{d} CIFAR ResNet: "
                                 f"{str(exc).splitlines()[0]}") from None
        return model

    def _layer_nodes(self, model):
        return dict(self.LAYERS)

    def _default_layers(self, names):
        return check_layers(None, names, "layers")  # layers=None: the TypeError naming it

    def _preprocess(self, model):
        return Preprocess(IMAGENET_MEAN, IMAGENET_STD)

    def _too_small_hint(self):
        return "upsample the images"

