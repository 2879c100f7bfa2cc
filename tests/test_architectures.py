import pytest
import torch

from sklearn_cnn import CNNClassifier
from sklearn_cnn.architectures import layers
from sklearn_cnn.architectures import (apply_overrides, architecture_info, build_network, conv,
                                       dense, dense_block, flatten, list_architectures, maxpool,
                                       resolve_architecture)

PRESET_INPUT = {"mnist_5x5": (1, 28, 28)}


@pytest.mark.parametrize("name", list_architectures())
def test_preset_builds_and_runs(name):
    shape = PRESET_INPUT.get(name, (3, 32, 32))
    net = build_network(resolve_architecture(name), shape, 10)
    net.eval()
    assert net(torch.zeros((2,) + shape)).shape == (2, 10)
    assert net.layer_names[0] == "input" and net.layer_names[-1] == "logits"
    assert len(set(net.layer_names)) == len(net.layer_names)


@pytest.mark.parametrize("name,expected", [
    ("mnist_5x5", 55_018), ("cifar_3x3", 295_402), ("conv3_5x5", 390_410),
    ("simple_49k", 49_268), ("densenet_45k", 44_410),
])
def test_preset_parameter_counts_match_the_reports(name, expected):
    summary = CNNClassifier(name).summary(image_shape=PRESET_INPUT.get(name, (3, 32, 32)))
    assert summary.attrs["trainable_params"] == expected
    assert architecture_info(name)["params"] == expected


def test_densenet_total_includes_batchnorm_statistics():
    # Report 002: 45,634 total = 44,410 trainable + 1,224 non-trainable (BN running stats).
    summary = CNNClassifier("densenet_45k").summary(image_shape=(3, 32, 32))
    assert summary.attrs["total_params"] == 45_634
    assert summary.attrs["non_trainable_params"] == 1_224


def test_layer_names_follow_one_scheme():
    net = build_network(resolve_architecture("cifar_3x3"), (3, 32, 32), 10)
    assert net.layer_names == ["input", "conv1", "pool1", "conv2", "pool2", "conv3", "flatten",
                               "fc1", "fc2", "logits"]
    assert dict(net.named_parameters())["fc1.weight"].shape == (64, 4096)


@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 1, 2), (1, 8, 8), (3, 32, 32), (3, 224, 224)])
def test_default_architecture_handles_any_size(shape):
    net = build_network(resolve_architecture("default"), shape, 3)
    net.eval()
    assert net(torch.rand((2,) + shape)).shape == (2, 3)


def test_same_padding_with_stride_matches_tensorflow():
    # TF "same": output = ceil(input / stride).
    for size, stride in [(28, 2), (28, 3), (32, 3), (7, 2)]:
        net = build_network([conv(4, 5, stride=stride)], (1, size, size), 2)
        assert net.output_shapes["conv1"] == (4, -(-size // stride), -(-size // stride))


def test_valid_padding_shrinks():
    net = build_network([conv(4, 3, padding="valid")], (1, 10, 10), 2)
    assert net.output_shapes["conv1"] == (4, 8, 8)


def test_dense_block_concatenates():
    net = build_network([conv(24, 3), dense_block(2, growth=12, bottleneck=48)], (3, 8, 8), 2)
    assert net.output_shapes["block1"] == (48, 8, 8)


def test_overrides_single_and_per_layer():
    specs = resolve_architecture("mnist_5x5")
    out = apply_overrides(specs, kernel_size=3, stride=[1, 2, 1], filters=8)
    convs = [s for s in out if s["type"] == "conv"]
    assert [s["kernel_size"] for s in convs] == [3, 3, 3]
    assert [s["stride"] for s in convs] == [1, 2, 1]
    assert [s["filters"] for s in convs] == [8, 8, 8]
    with pytest.raises(ValueError, match="stride has 2 values but the architecture has 3 conv"):
        apply_overrides(resolve_architecture("mnist_5x5"), stride=[1, 2])


@pytest.mark.parametrize("spec,match", [
    ([{"type": "conv3d", "filters": 2}], "unknown layer type 'conv3d'"),
    ([{"type": "conv"}], r"missing key\(s\) \['filters'\]"),
    ([{"type": "conv", "filters": 2, "kernal": 3}], r"unknown key\(s\) \['kernal'\]"),
    ([{"type": "conv", "filters": 0}], "filters must be a positive int"),
    ([{"type": "conv", "filters": 2, "padding": "full"}], "padding must be 'same', 'valid'"),
    ([{"type": "dropout", "dropout": 1.5}], r"dropout must be a float in \[0, 1\)"),
    ([{"type": "conv", "filters": 2, "kernel": 3, "kernel_size": 3}],
     "gives both 'kernel' and 'kernel_size'"),
    ([{"type": "dense", "units": 3, "activation": "swish"}], "activation must be one of"),
    ([conv(2, name="a"), conv(2, name="a")], "repeats layer name 'a'"),
    ([], "empty list"),
])
def test_bad_layer_specs_raise_clear_errors(spec, match):
    with pytest.raises(ValueError, match=match):
        resolve_architecture(spec)


@pytest.mark.parametrize("old, new", [
    ({"type": "conv", "filters": 2, "kernel": 5},
     {"type": "conv", "filters": 2, "kernel_size": 5}),
    ({"type": "maxpool", "size": 3}, {"type": "maxpool", "kernel_size": 3}),
    ({"type": "avgpool", "size": 3}, {"type": "avgpool", "kernel_size": 3}),
    ({"type": "dropout", "p": 0.2}, {"type": "dropout", "dropout": 0.2}),
])
def test_old_spec_keys_are_deprecated_aliases(old, new):
    """The spec keys are the estimators' overriding parameters' names (kernel_size, dropout);
    the old keys give the same network with a FutureWarning."""
    with pytest.warns(FutureWarning, match=f"key '{next(iter(set(old) - set(new)))}' is "
                                           "deprecated"):
        got = resolve_architecture([old])
    assert got == resolve_architecture([new])


def test_spec_helpers_take_the_old_keywords_with_a_warning():
    with pytest.warns(FutureWarning, match="use 'kernel_size'"):
        assert conv(4, kernel=5) == conv(4, kernel_size=5)
    with pytest.warns(FutureWarning, match="use 'dropout'"):
        assert layers.dropout(p=0.1) == layers.dropout(0.1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'kernal'"):
        conv(4, kernal=5)



def test_spec_must_be_list_of_dicts():
    with pytest.raises(TypeError, match="must be a dict with a 'type' key"):
        resolve_architecture([("conv", 3)])
    with pytest.raises(ValueError, match="unknown architecture preset 'resnet1000'"):
        resolve_architecture("resnet1000")


def test_too_small_input_names_the_layer():
    with pytest.raises(ValueError, match="layer pool3 .* too small"):
        build_network([conv(2), maxpool(), conv(2), maxpool(), conv(2), maxpool()], (1, 4, 4), 2)


def test_conv_after_flatten_is_rejected():
    with pytest.raises(ValueError, match="conv2 .* needs image input"):
        build_network([conv(2), flatten(), dense(4), conv(2)], (1, 4, 4), 2)
