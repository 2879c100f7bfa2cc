"""Named architectures: the networks of the reference reports, plus a size-agnostic default.

Each preset is a function returning a fresh list of layer specs (the output
``logits`` layer is added by :func:`~sklearn_cnn.architectures.build_network`).
Register new ones with :func:`register_architecture`, timm-style.
"""

from .layers import (avgpool, batchnorm, conv, dense, dense_block, dropout, flatten,
                     global_avgpool, inception, maxpool)

_REGISTRY = {}


def register_architecture(name, *, params=None, source=None):
    """Decorator registering a function that returns a list of layer specs.

    ``params`` is the trainable parameter count for 10 classes (and the input
    the preset was designed for), checked by the test suite; ``source`` says
    where the network comes from.
    """

    def decorator(fn):
        if name in _REGISTRY:
            raise ValueError(f"architecture {name!r} is already registered")
        _REGISTRY[name] = {"fn": fn, "params": params, "source": source,
                           "doc": (fn.__doc__ or "").strip().splitlines()[0]}
        return fn

    return decorator


def list_architectures():
    """Names of the registered architectures, sorted."""
    return sorted(_REGISTRY)


def architecture_info(name):
    """Dict with the preset's one-line description, stated parameter count and source."""
    entry = _get(name)
    return {k: entry[k] for k in ("doc", "params", "source")}


def get_architecture(name):
    """A fresh list of layer specs for the preset ``name``."""
    return _get(name)["fn"]()


def _get(name):
    if not isinstance(name, str):
        raise TypeError(f"architecture must be a preset name or a list of layer specs, "
                        f"got {type(name).__name__}")
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown architecture preset {name!r}; available presets: {list_architectures()}"
        ) from None


# ---------------------------------------------------------------------------
@register_architecture("default", source="sklearn_cnn")
def default():
    """Small size-agnostic CNN: two conv-BN-pool stages, global average pool, fc 64.

    Pools use 'same' padding so 1x1 inputs (tabular data) pass through too.
    """
    return [
        conv(32, 3), batchnorm(), maxpool(2, padding="same"),
        conv(64, 3), batchnorm(), maxpool(2, padding="same"),
        global_avgpool(), dense(64),
    ]


@register_architecture("mnist_5x5", params=55_018, source="report 004, MNIST net (Table 1)")
def mnist_5x5():
    """MNIST net: conv 4/8/16 5x5 'same', max-pool after the first two, fc 64."""
    return [
        conv(4, 5), maxpool(2), conv(8, 5), maxpool(2), conv(16, 5),
        flatten(), dense(64),
    ]


@register_architecture("cifar_3x3", params=295_402, source="report 004, CIFAR-10 net (Table 4)")
def cifar_3x3():
    """CIFAR-10 net: conv 16/32/64 3x3 'same', max-pool after the first two, fc 64, 128."""
    return [
        conv(16, 3), maxpool(2), conv(32, 3), maxpool(2), conv(64, 3),
        flatten(), dense(64), dense(128),
    ]


@register_architecture("conv3_5x5", params=390_410, source="report 001, task 1")
def conv3_5x5():
    """Conv 32/64/128 5x5 (pad 2), each followed by 2x2 max-pool, fc 64."""
    return [
        conv(32, 5), maxpool(2), conv(64, 5), maxpool(2), conv(128, 5), maxpool(2),
        flatten(), dense(64),
    ]


@register_architecture("simple_49k", params=49_268, source="report 002, first network")
def simple_49k():
    """Under-50k net: conv 30 same, conv 30 valid, pool, dropout, conv 48 x2 valid, fc 32."""
    return [
        conv(30, 3, padding="same"), conv(30, 3, padding="valid"), maxpool(2), dropout(0.25),
        conv(48, 3, padding="valid"), maxpool(2),
        conv(48, 3, padding="valid"), maxpool(2), dropout(0.25),
        flatten(), dense(32), dropout(0.5),
    ]


@register_architecture("densenet_45k", params=44_410,
                       source="report 002, DenseNet (45,634 incl. 1,224 BN statistics)")
def densenet_45k():
    """Small DenseNet: conv 24, 3 dense blocks (2 x BN-ReLU-1x1(48)-BN-ReLU-3x3(12)), GAP."""
    def transition():
        return [batchnorm("relu"), conv(24, 1, activation=None, bias=False), avgpool(2)]

    return [
        conv(24, 3, activation=None, bias=False),
        dense_block(2, growth=12, bottleneck=48), *transition(),
        dense_block(2, growth=12, bottleneck=48), *transition(),
        dense_block(2, growth=12, bottleneck=48),
        batchnorm("relu"), global_avgpool(),
    ]


def _bn_stages(kernel, activation, drops):
    layers = []
    for filters, p in zip((32, 64, 128), drops):
        layers += [conv(filters, kernel, activation=activation), batchnorm(),
                   conv(filters, kernel, activation=activation), batchnorm(),
                   maxpool(2), dropout(p)]
    return layers


@register_architecture("bn_dropout_3x3", source="report 001, network 1 (Table 2.2)")
def bn_dropout_3x3():
    """3 x [conv-BN-conv-BN-maxpool-dropout(0.5)] with 32/64/128 3x3 filters, fc 64 LeakyReLU."""
    return _bn_stages(3, "relu", (0.5, 0.5, 0.5)) + [flatten(), dense(64, "leaky_relu")]


@register_architecture("elu_5x5", source="report 001, network 2")
def elu_5x5():
    """The same stages with 5x5 ELU convs, dropout 0.5/0.4/0.3, no hidden dense layer."""
    return _bn_stages(5, "elu", (0.5, 0.4, 0.3)) + [flatten()]


@register_architecture("tf_cifar10", source="report 000, task 1")
def tf_cifar10():
    """Two 5x5x64 convs, each with 3x3/2 'same' max-pool; fc1 384, fc2 192."""
    return [
        conv(64, 5), maxpool(3, 2, padding="same"),
        conv(64, 5), maxpool(3, 2, padding="same"),
        flatten(), dense(384), dense(192),
    ]


@register_architecture("alexnet_cifar", source="report 003, AlexNet for 32x32")
def alexnet_cifar():
    """AlexNet for CIFAR: 5 convs (kernels 5,5,3,3,3) with BN, 3 max-pools, fc 512, 256."""
    return [
        conv(64, 5), batchnorm(), maxpool(2),
        conv(192, 5), batchnorm(), maxpool(2),
        conv(384, 3), batchnorm(), conv(256, 3), batchnorm(), conv(256, 3), batchnorm(),
        maxpool(2),
        flatten(), dropout(0.5), dense(512), dropout(0.5), dense(256),
    ]


@register_architecture("conv3_fc3", source="report 003, self-built net")
def conv3_fc3():
    """3 convs 3x3 (32/64/128), each with BN and max-pool; fc 256, 128 (+ logits: 3 fc)."""
    return [
        conv(32, 3), batchnorm(), maxpool(2),
        conv(64, 3), batchnorm(), maxpool(2),
        conv(128, 3), batchnorm(), maxpool(2),
        flatten(), dense(256), dense(128),
    ]


@register_architecture("googlenet_cifar", source="report 003, partial GoogLeNet (kuangliu)")
def googlenet_cifar():
    """Partial GoogLeNet for 32x32: conv 64, 2 inception modules, pool, 2 more, GAP."""
    return [
        conv(64, 3), batchnorm(),
        inception(32, 48, 64, 8, 16, 16), inception(64, 64, 96, 16, 48, 32),
        maxpool(3, 2, padding="same"),
        inception(96, 48, 104, 8, 24, 32), inception(80, 56, 112, 12, 32, 32),
        global_avgpool(),
    ]
