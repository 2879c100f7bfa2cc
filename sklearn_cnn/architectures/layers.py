"""Layer specs (plain dicts) and the torch modules they become.

A network is a list of layer specs, each a dict with a ``"type"`` key, e.g.
``{"type": "conv", "filters": 16, "kernel_size": 3}``. The helper functions below
(:func:`conv`, :func:`maxpool`, :func:`dense`, ...) build those dicts and
document every key. :func:`build_network` turns a list of specs into a
:class:`Network`, whose layers carry one stable name each (``conv1``,
``pool1``, ``flatten``, ``fc1``, ..., ``logits``): the naming scheme every
other part of sklearn_cnn uses.
"""

import copy
import math
import numbers

import torch
from torch import nn
from torch.nn import functional as F

from .._deprecation import warn_renamed
from .._layers import LayerAccessMixin

__all__ = [
    "conv", "maxpool", "avgpool", "global_avgpool", "batchnorm", "dropout",
    "flatten", "dense", "dense_block", "inception", "Network", "build_network",
    "normalize_spec", "apply_overrides", "LAYER_TYPES", "ACTIVATIONS",
]

ACTIVATIONS = {
    None: None,
    "linear": None,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
}


# --------------------------------------------------------------------------
# spec helpers: each returns the dict it documents
# --------------------------------------------------------------------------
def conv(filters, kernel_size=3, stride=1, padding="same", activation="relu", bias=True,
         name=None, **renamed):
    """2-D convolution followed by an activation.

    ``padding`` is an int, ``"same"`` (output size ceil(input / stride), as in
    Keras/TensorFlow, also for stride > 1) or ``"valid"`` (no padding). The keys are the
    names of the estimators' overriding parameters (``kernel_size``, ``stride``, ...).
    """
    return _spec("conv", name, renamed, filters=filters, kernel_size=kernel_size,
                 stride=stride, padding=padding, activation=activation, bias=bias)


def maxpool(kernel_size=2, stride=None, padding=0, name=None, **renamed):
    """Max pooling; ``stride`` defaults to ``kernel_size``; ``padding`` int or "same"."""
    return _spec("maxpool", name, renamed, kernel_size=kernel_size, stride=stride,
                 padding=padding)


def avgpool(kernel_size=2, stride=None, padding=0, name=None, **renamed):
    """Average pooling; ``stride`` defaults to ``kernel_size``; ``padding`` int or "same"."""
    return _spec("avgpool", name, renamed, kernel_size=kernel_size, stride=stride,
                 padding=padding)


def global_avgpool(name=None):
    """Global average pooling: (n, C, H, W) -> (n, C). Makes a network size-agnostic."""
    return _spec("gap", name)


def batchnorm(activation=None, name=None):
    """Batch normalisation (2-D or 1-D by its input), optionally followed by an activation."""
    return _spec("batchnorm", name, activation=activation)


def dropout(dropout=0.5, name=None, **renamed):
    """Dropout with drop probability ``dropout`` (the estimators' ``dropout`` parameter
    overrides it)."""
    return _spec("dropout", name, renamed, dropout=dropout)


def flatten(name=None):
    """Flatten (n, C, H, W) to (n, C*H*W)."""
    return _spec("flatten", name)


def dense(units, activation="relu", name=None):
    """Fully connected layer (flattens 4-D input) followed by an activation."""
    return _spec("dense", name, units=units, activation=activation)


def dense_block(layers=2, growth=12, bottleneck=48, activation="relu", name=None):
    """DenseNet block: ``layers`` x [BN-act-1x1(bottleneck)-BN-act-3x3(growth)], each
    output concatenated to its input (Huang et al. 2017). Convolutions have no bias."""
    return _spec("dense_block", name, layers=layers, growth=growth,
                 bottleneck=bottleneck, activation=activation)


def inception(b1, b3_reduce, b3, b5_reduce, b5, pool_proj, name=None):
    """GoogLeNet inception module (conv-BN-ReLU branches: 1x1; 1x1->3x3; 1x1->3x3->3x3
    for the "5x5" branch; 3x3 max-pool->1x1), outputs concatenated."""
    return _spec("inception", name, b1=b1, b3_reduce=b3_reduce, b3=b3,
                 b5_reduce=b5_reduce, b5=b5, pool_proj=pool_proj)


def _spec(type_, name, renamed=None, **params):
    for old, value in (renamed or {}).items():
        new = RENAMED_KEYS.get(type_, {}).get(old)
        if new is None:
            raise TypeError(f"{type_}() got an unexpected keyword argument {old!r}")
        _warn_renamed(type_, old, new)
        params[new] = value
    spec = {"type": type_, **params}
    if name is not None:
        spec["name"] = name
    return spec


# Spec keys before 0.2 -> their names now (the estimators' overriding parameters); the old
# ones work with a FutureWarning until 0.3.
RENAMED_KEYS = {"conv": {"kernel": "kernel_size"}, "maxpool": {"size": "kernel_size"},
                "avgpool": {"size": "kernel_size"}, "dropout": {"p": "dropout"}}


def _warn_renamed(type_, old, new):
    warn_renamed(f"the {type_} layer key {old!r}", repr(new))


LAYER_TYPES = {
    # type: (name prefix, numbered?, defaults, required keys)
    "conv": ("conv", True, dict(kernel_size=3, stride=1, padding="same", activation="relu",
                                bias=True), ("filters",)),
    "maxpool": ("pool", True, dict(kernel_size=2, stride=None, padding=0), ()),
    "avgpool": ("pool", True, dict(kernel_size=2, stride=None, padding=0), ()),
    "gap": ("gap", False, {}, ()),
    "batchnorm": ("bn", True, dict(activation=None), ()),
    "dropout": ("dropout", True, dict(dropout=0.5), ()),
    "flatten": ("flatten", False, {}, ()),
    "dense": ("fc", True, dict(activation="relu"), ("units",)),
    "dense_block": ("block", True, dict(layers=2, growth=12, bottleneck=48,
                                        activation="relu"), ()),
    "inception": ("inception", True, {}, ("b1", "b3_reduce", "b3", "b5_reduce", "b5",
                                          "pool_proj")),
}
_ALIASES = {"bn": "batchnorm", "fc": "dense", "linear": "dense", "pool": "maxpool",
            "global_avgpool": "gap", "conv2d": "conv"}
RESERVED_NAMES = ("input", "logits")


def normalize_spec(architecture, param_name="architecture"):
    """Validate a list of layer specs; return a deep copy with defaults and names.

    Raises ValueError / TypeError naming the offending layer and key.
    """
    if isinstance(architecture, (str, bytes, dict)) or not hasattr(architecture, "__iter__"):
        raise TypeError(
            f"{param_name} must be a preset name or a list of layer specs (dicts with a "
            f"'type' key), got {type(architecture).__name__}"
        )
    specs = [copy.deepcopy(s) for s in architecture]
    if not specs:
        raise ValueError(f"{param_name} is an empty list of layers")
    counters, names, out = {}, set(), []
    for i, spec in enumerate(specs):
        if isinstance(spec, str):
            spec = {"type": spec}
        if not isinstance(spec, dict) or "type" not in spec:
            raise TypeError(
                f"{param_name}[{i}] must be a dict with a 'type' key (one of "
                f"{sorted(LAYER_TYPES)}), got {spec!r}"
            )
        type_ = _ALIASES.get(spec["type"], spec["type"])
        if type_ not in LAYER_TYPES:
            raise ValueError(
                f"{param_name}[{i}] has unknown layer type {spec['type']!r}; valid types: "
                f"{sorted(LAYER_TYPES)}"
            )
        prefix, numbered, defaults, required = LAYER_TYPES[type_]
        for old, new in RENAMED_KEYS.get(type_, {}).items():
            if old in spec:
                if new in spec:
                    raise ValueError(f"{param_name}[{i}] ({type_}) gives both {old!r} and "
                                     f"{new!r}; {old!r} is the old name of {new!r}: give "
                                     f"{new!r} only")
                _warn_renamed(type_, old, new)
                spec[new] = spec.pop(old)
        allowed = set(defaults) | set(required) | {"type", "name"}
        unknown = set(spec) - allowed
        if unknown:
            raise ValueError(
                f"{param_name}[{i}] ({type_}) has unknown key(s) {sorted(unknown)}; "
                f"valid keys: {sorted(allowed - {'type'})}"
            )
        missing = [k for k in required if k not in spec]
        if missing:
            raise ValueError(f"{param_name}[{i}] ({type_}) is missing key(s) {missing}")
        full = {**defaults, **spec, "type": type_}
        _check_values(full, f"{param_name}[{i}] ({type_})")
        if "name" not in full:
            if numbered:
                counters[prefix] = counters.get(prefix, 0) + 1
                full["name"] = f"{prefix}{counters[prefix]}"
            else:
                full["name"] = prefix
        name = full["name"]
        if not isinstance(name, str) or not name.isidentifier() or name in RESERVED_NAMES:
            raise ValueError(
                f"{param_name}[{i}] has invalid name {name!r}: names must be Python "
                f"identifiers other than {RESERVED_NAMES}"
            )
        if name in names:
            raise ValueError(
                f"{param_name}[{i}] repeats layer name {name!r}; give it a unique 'name'"
            )
        names.add(name)
        out.append(full)
    return out


def _check_values(spec, where):
    def positive_int(key, allow_none=False):
        v = spec[key]
        if v is None and allow_none:
            return
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{where}: {key} must be a positive int, got {v!r}")

    t = spec["type"]
    if t == "conv":
        for k in ("filters", "kernel_size", "stride"):
            positive_int(k)
        pad = spec["padding"]
        if not (pad in ("same", "valid") or (isinstance(pad, numbers.Integral)
                                              and not isinstance(pad, bool) and pad >= 0)):
            raise ValueError(f"{where}: padding must be 'same', 'valid' or an int >= 0, "
                             f"got {pad!r}")
    elif t in ("maxpool", "avgpool"):
        positive_int("kernel_size")
        positive_int("stride", allow_none=True)
        pad = spec["padding"]
        if not (pad in ("same", "valid") or (isinstance(pad, numbers.Integral)
                                              and not isinstance(pad, bool) and pad >= 0)):
            raise ValueError(f"{where}: padding must be 'same', 'valid' or an int >= 0, "
                             f"got {pad!r}")
    elif t == "dropout":
        p = spec["dropout"]
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p < 1:
            raise ValueError(f"{where}: dropout must be a float in [0, 1), got {p!r}")
    elif t == "dense":
        positive_int("units")
    elif t == "dense_block":
        positive_int("layers")
        positive_int("growth")
        positive_int("bottleneck", allow_none=True)
    elif t == "inception":
        for k in ("b1", "b3_reduce", "b3", "b5_reduce", "b5", "pool_proj"):
            positive_int(k)
    if "activation" in spec and spec["activation"] not in ACTIVATIONS:
        raise ValueError(
            f"{where}: activation must be one of {[a for a in ACTIVATIONS if a]} or None, "
            f"got {spec['activation']!r}"
        )


def apply_overrides(specs, *, kernel_size=None, stride=None, padding=None, filters=None,
                    dropout=None, activation=None):
    """Override conv / dropout / activation settings throughout normalised specs.

    Each override is None (keep the architecture's value), a single value (all
    conv layers, or all dropout layers), or a sequence with one value per conv
    (dropout) layer in order. This is what lets GridSearchCV sweep kernel size,
    stride, filters and dropout of a preset through ``set_params``.
    """
    convs = [s for s in specs if s["type"] == "conv"]
    drops = [s for s in specs if s["type"] == "dropout"]
    for key, value, targets, what in (
        ("kernel_size", kernel_size, convs, "kernel_size"),
        ("stride", stride, convs, "stride"),
        ("padding", padding, convs, "padding"),
        ("filters", filters, convs, "filters"),
        ("dropout", dropout, drops, "dropout"),
    ):
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            if len(value) != len(targets):
                raise ValueError(
                    f"{what} has {len(value)} values but the architecture has "
                    f"{len(targets)} {'dropout' if key == 'dropout' else 'conv'} layers"
                )
            values = list(value)
        else:
            values = [value] * len(targets)
        for spec, v in zip(targets, values):
            spec[key] = v
    if activation is not None:
        for spec in specs:
            if spec["type"] in ("conv", "dense", "dense_block") and spec["activation"]:
                spec["activation"] = activation
    for spec in specs:
        _check_values(spec, f"layer {spec['name']} ({spec['type']})")
    return specs


# --------------------------------------------------------------------------
# modules
# --------------------------------------------------------------------------
def _activation(name):
    cls = ACTIVATIONS[name]
    return cls() if cls is not None else nn.Identity()


def _same_pads(size, kernel, stride):
    # TensorFlow "same": output ceil(size / stride), extra padding on the bottom/right.
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class Conv(nn.Conv2d):
    """Conv2d + activation; ``padding="same"`` also works with stride > 1."""

    def __init__(self, in_channels, filters, kernel, stride, padding, activation, bias):
        # Symmetric "same" (odd kernel, stride 1) is torch's own padding; only the
        # asymmetric TF cases need a pad op per forward.
        symmetric = padding == "same" and stride == 1 and kernel % 2 == 1
        self._tf_same = padding == "same" and not symmetric
        torch_pad = kernel // 2 if symmetric else 0 if padding in ("same", "valid") else padding
        super().__init__(in_channels, filters, kernel, stride=stride, padding=torch_pad,
                         bias=bias)
        self.act = _activation(activation)

    def forward(self, x):
        if self._tf_same:
            kh, kw = self.kernel_size
            sh, sw = self.stride
            top, bottom = _same_pads(x.shape[-2], kh, sh)
            left, right = _same_pads(x.shape[-1], kw, sw)
            if top or bottom or left or right:
                x = F.pad(x, (left, right, top, bottom))
        return self.act(super().forward(x))


class Pool(nn.Module):
    """Max or average pooling with int or TF-"same" padding."""

    def __init__(self, kind, kernel_size, stride, padding):
        super().__init__()
        self.kind, self.kernel_size = kind, kernel_size
        self.stride = stride or kernel_size
        self.padding = padding

    def forward(self, x):
        if self.padding == "same":
            top, bottom = _same_pads(x.shape[-2], self.kernel_size, self.stride)
            left, right = _same_pads(x.shape[-1], self.kernel_size, self.stride)
            value = float("-inf") if self.kind == "max" else 0.0
            if top or bottom or left or right:
                x = F.pad(x, (left, right, top, bottom), value=value)
            pad = 0
        else:
            pad = 0 if self.padding == "valid" else self.padding
        if self.kind == "max":
            return F.max_pool2d(x, self.kernel_size, self.stride, pad)
        return F.avg_pool2d(x, self.kernel_size, self.stride, pad)

    def extra_repr(self):
        return (f"{self.kind}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding!r}")


class GlobalAvgPool(nn.Module):
    def forward(self, x):
        return x.mean(dim=(-2, -1))


class BatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch normalisation of (n, C, H, W) or (n, C) input + activation.

    Subclassing ``_BatchNorm`` keeps the parameters on the layer itself
    (``bn1.weight``, ``bn1.running_mean``), like every other layer.
    """

    def __init__(self, channels, activation):
        super().__init__(channels)
        self.act = _activation(activation)

    def _check_input_dim(self, input):
        if input.dim() not in (2, 4):
            raise ValueError(f"expected 2-D or 4-D input, got {input.dim()}-D")

    def forward(self, x):
        return self.act(super().forward(x))


class Dense(nn.Linear):
    """Linear + activation; flattens 4-D input first."""

    def __init__(self, in_features, units, activation):
        super().__init__(in_features, units)
        self.act = _activation(activation)

    def forward(self, x):
        if x.dim() > 2:
            x = torch.flatten(x, 1)
        return self.act(super().forward(x))


class _DenseLayer(nn.Module):
    def __init__(self, in_channels, growth, bottleneck, activation):
        super().__init__()
        layers = []
        channels = in_channels
        if bottleneck:
            layers += [nn.BatchNorm2d(channels), _activation(activation),
                       nn.Conv2d(channels, bottleneck, 1, bias=False)]
            channels = bottleneck
        layers += [nn.BatchNorm2d(channels), _activation(activation),
                   nn.Conv2d(channels, growth, 3, padding=1, bias=False)]
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return torch.cat([self.body(x), x], dim=1)


class DenseBlock(nn.Sequential):
    def __init__(self, in_channels, layers, growth, bottleneck, activation):
        super().__init__(*[
            _DenseLayer(in_channels + i * growth, growth, bottleneck, activation)
            for i in range(layers)
        ])


def _conv_bn_relu(cin, cout, kernel):
    return [nn.Conv2d(cin, cout, kernel, padding=kernel // 2), nn.BatchNorm2d(cout),
            nn.ReLU(True)]


class Inception(nn.Module):
    def __init__(self, cin, b1, b3_reduce, b3, b5_reduce, b5, pool_proj):
        super().__init__()
        self.b1 = nn.Sequential(*_conv_bn_relu(cin, b1, 1))
        self.b3 = nn.Sequential(*_conv_bn_relu(cin, b3_reduce, 1), *_conv_bn_relu(b3_reduce, b3, 3))
        self.b5 = nn.Sequential(*_conv_bn_relu(cin, b5_reduce, 1), *_conv_bn_relu(b5_reduce, b5, 3),
                                *_conv_bn_relu(b5, b5, 3))
        self.pool = nn.Sequential(nn.MaxPool2d(3, 1, 1), *_conv_bn_relu(cin, pool_proj, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.pool(x)], dim=1)


class Normalize(nn.Module):
    """Per-channel standardisation with fixed (non-trainable) mean and std."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


def _make_layer(spec, in_shape):
    t = spec["type"]
    ndim = len(in_shape) + 1
    c = in_shape[0]
    if t in ("conv", "maxpool", "avgpool", "gap", "dense_block", "inception") and ndim != 4:
        raise ValueError(
            f"layer {spec['name']} ({t}) needs image input (C, H, W) but follows a layer "
            f"with flat output of shape {in_shape}; move it before 'flatten'/'dense'/'gap'"
        )
    if t == "conv":
        return Conv(c, spec["filters"], spec["kernel_size"], spec["stride"], spec["padding"],
                    spec["activation"], spec["bias"])
    if t in ("maxpool", "avgpool"):
        return Pool(t[:3], spec["kernel_size"], spec["stride"], spec["padding"])
    if t == "gap":
        return GlobalAvgPool()
    if t == "batchnorm":
        return BatchNorm(c, spec["activation"])
    if t == "dropout":
        return nn.Dropout(spec["dropout"])
    if t == "flatten":
        return nn.Flatten()
    if t == "dense":
        return Dense(int(math.prod(in_shape)), spec["units"], spec["activation"])
    if t == "dense_block":
        return DenseBlock(c, spec["layers"], spec["growth"], spec["bottleneck"],
                          spec["activation"])
    if t == "inception":
        return Inception(c, *(spec[k] for k in ("b1", "b3_reduce", "b3", "b5_reduce", "b5",
                                                 "pool_proj")))
    raise AssertionError(t)  # normalize_spec rejects unknown types


class Network(LayerAccessMixin, nn.Module):
    """A sequence of named layers: ``input`` (normalisation), the spec's layers, ``logits``.

    Parameters of layer ``fc1`` are ``fc1.weight`` / ``fc1.bias``; the layer
    names are listed in :attr:`layer_names` in forward order.
    """

    def __init__(self, layers, output_shapes, specs):
        super().__init__()
        for name, layer in layers:
            self.add_module(name, layer)
        self.layer_names = [name for name, _ in layers]
        self.output_shapes = dict(output_shapes)
        self.specs = specs

    def forward(self, x):
        for layer in self.children():
            x = layer(x)
        return x

    def forward_intermediates(self, x, layers):
        """Outputs of the named ``layers`` (dict), running only as deep as needed (the
        layer protocol of :mod:`sklearn_cnn._layers`)."""
        wanted = set(layers)
        out = {}
        for name, layer in self.named_children():
            x = layer(x)
            if name in wanted:
                out[name] = x
                if len(out) == len(wanted):
                    break
        return out


def build_network(architecture, input_shape, n_outputs, *, mean=None, std=None,
                  output_activation=None, output_name="logits", param_name="architecture"):
    """Build a :class:`Network` from layer specs for inputs of shape ``(C, H, W)``.

    The spec list is validated (see :func:`normalize_spec`); an output layer
    ``output_name`` with ``n_outputs`` units is appended; ``mean``/``std``
    (per channel) become the fixed ``input`` normalisation layer. Shapes are
    traced with a dummy forward pass, so a layer whose input has become too
    small raises a ValueError naming it.

    Examples
    --------
    >>> from sklearn_cnn.architectures import conv, maxpool, dense, flatten
    >>> net = build_network([conv(8), maxpool(), flatten(), dense(16)], (1, 8, 8), 10)
    >>> net.layer_names
    ['input', 'conv1', 'pool1', 'flatten', 'fc1', 'logits']
    """
    specs = normalize_spec(architecture, param_name)
    c = input_shape[0]
    mean = [0.0] * c if mean is None else mean
    std = [1.0] * c if std is None else std
    layers = [("input", Normalize(mean, std))]
    shapes = [("input", tuple(input_shape))]
    x = torch.zeros((2,) + tuple(input_shape))  # 2: BatchNorm1d needs > 1 value in train mode
    for spec in specs + [{"type": "dense", "units": n_outputs, "activation": output_activation,
                          "name": output_name}]:
        layer = _make_layer(spec, tuple(x.shape[1:]))
        layer.eval()
        try:
            with torch.no_grad():
                x = layer(x)
        except RuntimeError as exc:
            raise ValueError(
                f"layer {spec['name']} ({spec['type']}) cannot process its input of shape "
                f"{tuple(x.shape[1:])} (C, H, W) for images of shape {tuple(input_shape)}: the "
                f"feature map has become too small. Use larger images, 'same' padding, "
                f"fewer pooling layers or smaller kernels/strides. ({exc})"
            ) from None
        if x.numel() == 0:
            raise ValueError(
                f"layer {spec['name']} ({spec['type']}) produces an empty output of shape "
                f"{tuple(x.shape[1:])} for images of shape {tuple(input_shape)}"
            )
        layer.train()
        layers.append((spec["name"], layer))
        shapes.append((spec["name"], tuple(x.shape[1:])))
    return Network(layers, shapes, specs)
