"""Tests of the pretrained-network feature transformers (no download, CPU, small inputs)."""

import io
import os
import pickle
import urllib.error

import numpy as np
import pytest
import torch
import torchvision
from sklearn.base import clone
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import check_estimator

from sklearn_cnn.features.cifar_resnet import CifarResNetFeatures
from sklearn_cnn.features.pretrained import (ResNetFeatures, TorchvisionFeatures, VGGFeatures,
                                             load_state_dict)

from .conftest import shared_file


@pytest.fixture(scope="module")
def rgb32():
    return np.random.RandomState(0).randint(0, 256, (6, 32, 32, 3)).astype(np.uint8)


@pytest.fixture
def no_download(monkeypatch):
    """Make any download attempt fail at once, as it does offline."""
    def fail(url, *args, **kwargs):
        raise urllib.error.URLError(f"no network (test): {url}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", fail)


def test_vgg_layer_names_and_shapes(rgb32):
    names = VGGFeatures(arch="vgg11").available_layers()
    assert names[:3] == ["conv1_1", "relu1_1", "pool1"]
    assert {"conv5_2", "pool5", "fc6", "relu6", "fc7", "relu7", "fc8"} <= set(names)
    assert "conv5_3" in VGGFeatures(arch="vgg16").available_layers()
    assert "bn1_1" in VGGFeatures(arch="vgg11_bn").available_layers()
    f = VGGFeatures("pool4", arch="vgg11", weights=None, random_state=0).fit(rgb32)
    Z = f.transform(rgb32)
    assert Z.shape == (6, 512 * 2 * 2) and Z.dtype == np.float32
    assert f.get_feature_names_out()[[0, -1]].tolist() == ["pool4_0", "pool4_2047"]
    # too small for pool5 at 16x16: the error says so and names resize
    with pytest.raises(ValueError, match="too small.*resize"):
        clone(f).set_params(layers="pool5").fit(rgb32[:, :16, :16])


def test_resnet_layers_pooling_and_names(rgb32):
    assert ResNetFeatures().available_layers() == [
        "conv1", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc"]
    expected = {None: 128 * 4 * 4, "avg": 128, "max": 128, 2: 128 * 2 * 2}
    for pooling, size in expected.items():
        f = ResNetFeatures("layer2", weights=None, pooling=pooling, random_state=0).fit(rgb32)
        Z = f.transform(rgb32)
        assert Z.shape == (6, size) and Z.dtype == np.float32
    f = ResNetFeatures(["layer1", "avgpool"], weights=None, pooling="avg", random_state=0)
    Z = f.fit_transform(rgb32)
    assert Z.shape == (6, 64 + 512)
    names = f.get_feature_names_out()
    assert names[0] == "layer1_0" and names[64] == "avgpool_0" and len(names) == Z.shape[1]
    # the same seed gives the same random network
    Z2 = clone(f).fit_transform(rgb32)
    np.testing.assert_array_equal(Z, Z2)


def test_forward_stops_after_deepest_layer(rgb32):
    f = ResNetFeatures("layer1", weights=None, random_state=0).fit(rgb32)
    calls = []
    f.model_.model.layer2.register_forward_hook(lambda *args: calls.append(1))
    f.transform(rgb32[:2])
    assert calls == []


def test_errors(rgb32):
    with pytest.raises(ValueError, match="valid layer names.*'layer4'"):
        ResNetFeatures("layer9", weights=None).fit(rgb32)
    with pytest.raises(ValueError, match="pooling"):
        ResNetFeatures(weights=None, pooling="median").fit(rgb32)
    with pytest.raises(TypeError, match="resize"):
        ResNetFeatures(weights=None, resize="big").fit(rgb32)
    with pytest.raises(ValueError, match="arch"):
        ResNetFeatures(arch="resnet7", weights=None).fit(rgb32)
    with pytest.raises(ValueError, match="weights"):
        ResNetFeatures(weights="NOT_A_WEIGHT").fit(rgb32)
    with pytest.raises(ValueError, match="model"):
        TorchvisionFeatures("no_such_net", weights=None).fit(rgb32)
    with pytest.raises(ValueError, match="depth"):
        CifarResNetFeatures(depth=21).fit(rgb32)


def test_grayscale_is_repeated_to_rgb(digits):
    gray = digits.images[:5]  # (5, 8, 8, 1) uint8
    f = ResNetFeatures("layer1", weights=None, resize=32, pooling="avg", random_state=0)
    Z_gray = f.fit_transform(gray)
    Z_rgb = clone(f).fit_transform(np.repeat(gray, 3, axis=-1))
    np.testing.assert_allclose(Z_gray, Z_rgb, rtol=1e-5, atol=1e-6)
    assert Z_gray.shape == (5, 64)


def test_generic_torchvision_layers(rgb32):
    f = TorchvisionFeatures("resnet18", layers=["layer1", "layer2.0.relu_1"], weights=None,
                            pooling="avg", random_state=0).fit(rgb32)
    assert f.transform(rgb32).shape == (6, 64 + 128)
    layers = f.available_layers()
    assert layers == clone(f).available_layers()  # the same names before fit, no weights
    assert layers == f.layer_view().names
    assert layers.index("layer1.1.relu_1") < layers.index("layer1") < layers.index("layer2.0.conv1")
    assert f.layers_ == ["layer1", "layer2.0.relu_1"]
    assert TorchvisionFeatures("resnet18", weights=None).fit(rgb32).layers_ == ["flatten"]
    # fitted transformers pickle (the cached FX extractors are left out) and give the same
    f2 = pickle.loads(pickle.dumps(f))
    np.testing.assert_allclose(f2.transform(rgb32), f.transform(rgb32), rtol=1e-5)


def test_vgg_knn_pipeline_cross_val(digits):
    pipe = Pipeline([("vgg", VGGFeatures("pool4", weights=None, resize=32, arch="vgg11",
                                         random_state=0)),
                     ("knn", KNeighborsClassifier())])
    scores = cross_val_score(pipe, digits.images[:300], digits.target[:300], cv=2)
    assert scores.shape == (2,) and scores.mean() > 0.5


def _random_resnet18_state(seed):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return torchvision.models.resnet18(weights=None).state_dict()


def test_default_weights_from_torch_home(tmp_path, monkeypatch, no_download, rgb32):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    weights = torchvision.models.ResNet18_Weights.DEFAULT
    target = tmp_path / "hub" / "checkpoints" / os.path.basename(weights.url)
    target.parent.mkdir(parents=True)
    state = _random_resnet18_state(1)
    torch.save(state, target)
    f = ResNetFeatures("layer1", weights="DEFAULT", pooling="avg").fit(rgb32)
    loaded = f.model_.model.state_dict()
    for key, value in state.items():
        torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)
    # the weights' own preprocessing: resize 256, crop 224, ImageNet statistics
    assert f.preprocess_.output_size(32, 32) == (224, 224)
    # the full name of the enum works too
    g = TorchvisionFeatures("resnet18", weights="ResNet18_Weights.IMAGENET1K_V1", resize=32)
    torch.testing.assert_close(g.fit(rgb32).model_.model.conv1.weight, state["conv1.weight"])


def test_missing_weights_error(tmp_path, monkeypatch, no_download, rgb32):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    weights = torchvision.models.ResNet18_Weights.DEFAULT
    expected = os.path.join(str(tmp_path), "hub", "checkpoints", os.path.basename(weights.url))
    with pytest.raises(FileNotFoundError) as info:
        ResNetFeatures(weights="DEFAULT").fit(rgb32)
    message = str(info.value)
    assert expected in message and "weights=" in message and "Put the file there" in message


def test_weights_from_file(tmp_path, rgb32):
    state = _random_resnet18_state(2)
    path = tmp_path / "my_resnet18.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in state.items()}}, path)
    f = TorchvisionFeatures("resnet18", layers="layer1", weights=str(path)).fit(rgb32)
    torch.testing.assert_close(f.model_.model.layer1[0].conv1.weight,
                               state["layer1.0.conv1.weight"])
    assert f.preprocess_.output_size(32, 32) == (32, 32)  # no resize unless asked
    with pytest.raises(FileNotFoundError, match="no_such.pth"):
        TorchvisionFeatures("resnet18", weights=str(tmp_path / "no_such.pth")).fit(rgb32)
    # a checkpoint of another architecture
    with pytest.raises(ValueError, match="does not fit"):
        TorchvisionFeatures("resnet34", weights=str(path)).fit(rgb32)


def test_cifar_resnet_layers_and_file_object(tmp_path, rgb32):
    f = CifarResNetFeatures(20, layers=["conv1", "layer1", "layer2", "layer3", "avgpool",
                                       "logits"], random_state=0).fit(rgb32)
    assert f.feature_sizes_ == [16 * 32 * 32, 16 * 32 * 32, 32 * 16 * 16, 64 * 8 * 8, 64, 10]
    path = tmp_path / "r20.th"
    torch.save({"state_dict": {"module." + k: v for k, v in
                               f.model_.model.state_dict().items()}}, path)
    with open(path, "rb") as fh:
        g = CifarResNetFeatures(20, layers="logits", weights=fh).fit(rgb32)
    np.testing.assert_allclose(g.transform(rgb32), f.transform(rgb32)[:, -10:], rtol=1e-5,
                               atol=1e-6)
    with pytest.raises(ValueError, match="depth-32"):
        CifarResNetFeatures(32, weights=str(path)).fit(rgb32)


class _WritesMarker:
    """Unpickling this runs ``open(path, "w")``: how a crafted checkpoint runs code."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _crafted_checkpoint(tmp_path):
    """A CIFAR ResNet-8 checkpoint with a payload next to its weights, and the payload's marker."""
    marker = tmp_path / "code_ran"
    state = CifarResNetFeatures(8, random_state=0).fit(np.zeros((1, 8, 8, 3))).model_.model
    path = tmp_path / "crafted.th"
    torch.save({"state_dict": state.state_dict(), "extra": _WritesMarker(marker)}, path)
    return path, marker


def test_weights_file_with_code_is_not_unpickled_by_default(tmp_path, rgb32):
    path, marker = _crafted_checkpoint(tmp_path)
    with pytest.raises(ValueError, match=r"holds Python objects other than tensors.*"
                                         r"trust_weights_file=True") as info:
        CifarResNetFeatures(8, weights=str(path)).fit(rgb32)
    assert str(path) in str(info.value)
    with pytest.raises(ValueError, match="other than tensors"):
        load_state_dict(path)
    assert not marker.exists()
    # the documented opt-in for a trusted legacy file unpickles everything (and so runs it)
    CifarResNetFeatures(8, weights=str(path), trust_weights_file=True).fit(rgb32)
    assert marker.exists()


def test_torch_home_weights_file_with_code_is_not_unpickled(tmp_path, monkeypatch, no_download,
                                                            rgb32):
    # torchvision's builders read $TORCH_HOME/hub/checkpoints with weights_only=False
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    target = tmp_path / "hub" / "checkpoints" / os.path.basename(
        torchvision.models.ResNet18_Weights.DEFAULT.url)
    target.parent.mkdir(parents=True)
    marker = tmp_path / "code_ran"
    torch.save({**_random_resnet18_state(0), "extra": _WritesMarker(marker)}, target)
    with pytest.raises(ValueError, match="other than tensors") as info:
        ResNetFeatures(weights="DEFAULT").fit(rgb32)
    assert str(target) in str(info.value) and not marker.exists()


def _truncated_shared_resnet20(tmp_path):
    data = shared_file("weights", "resnet20-12fca82f.th").read_bytes()
    return data[:len(data) // 2]


def _truncated_local_checkpoint(tmp_path):
    buffer = io.BytesIO()
    torch.save({"state_dict": CifarResNetFeatures(8, random_state=0).fit(
        np.zeros((1, 8, 8, 3))).model_.model.state_dict()}, buffer)
    return buffer.getvalue()[:-100]


@pytest.mark.parametrize("content, reason", [
    (lambda tmp: np.random.RandomState(0).bytes(1000), "Unsupported operand"),
    (lambda tmp: b"", "empty or ends too early"),
    (_truncated_local_checkpoint, "unexpected EOF|ends too early|corrupt"),
    pytest.param(_truncated_shared_resnet20, "unexpected EOF", marks=pytest.mark.shared),
], ids=["random bytes", "empty", "truncated", "truncated shared resnet20"])
def test_corrupt_weights_file_error_names_the_file(tmp_path, rgb32, content, reason):
    path = tmp_path / "bad.th"
    path.write_bytes(content(tmp_path))
    for est in (CifarResNetFeatures(20, weights=str(path)),
                TorchvisionFeatures("resnet18", weights=str(path))):
        with pytest.raises(ValueError, match=f"cannot read the weights file '{path}': "
                                             f"(.*)({reason})"):
            est.fit(rgb32)
    with open(path, "rb") as fh, pytest.raises(ValueError, match="cannot read the weights file"):
        load_state_dict(fh)


@pytest.mark.shared
def test_cifar_resnet20_accuracy_on_shared_cifar10():
    from sklearn_cnn.datasets import load_image_folder

    data = shared_file("data", "cifar10-jpg.tar.gz")
    weights = shared_file("weights", "resnet20-12fca82f.th")
    test = load_image_folder(data, split="test")
    f = CifarResNetFeatures(20, layers="logits", weights=weights).fit(test.images[:1])
    accuracy = np.mean(f.transform(test.images).argmax(axis=1) == test.target)
    assert abs(accuracy - 0.810) <= 0.003, accuracy


@pytest.mark.parametrize("estimator", [
    CifarResNetFeatures(depth=8, random_state=0),  # depth=20 passes too, more slowly
    # pooled: unpooled layer1 maps differ by ~1e-6 between batch sizes (oneDNN kernels),
    # beyond check_methods_subset_invariance's rtol=1e-4 on near-zero activations
    ResNetFeatures("layer1", weights=None, resize=32, pooling="avg", random_state=0),
], ids=lambda e: type(e).__name__)
def test_check_estimator(estimator):
    check_estimator(estimator)


def _rgb_backbone(make):
    def build(rgb32, digits):
        return make(), rgb32, None
    return build


def _layer_features(layers):
    def build(rgb32, digits):
        from sklearn_cnn import CNNClassifier, LayerFeatures

        X, y = digits.images[:64], digits.target[:64]
        cnn = CNNClassifier(max_epochs=1, verbose=0, random_state=0).fit(X, y)
        return LayerFeatures(cnn, layers, refit=False), X, y
    return build


# (backbone with a multi-layer ``layer``, each layer of which is compared with its own extraction)
MULTI_LAYER_CASES = {
    "vgg11 conv/pool": _rgb_backbone(lambda: VGGFeatures(
        ["conv1_1", "pool1"], arch="vgg11", weights=None, random_state=0)),
    "vgg11 fc6/fc7": _rgb_backbone(lambda: VGGFeatures(
        ["fc6", "relu6", "fc7"], arch="vgg11", weights=None, random_state=0)),
    "vgg11_bn bn": _rgb_backbone(lambda: VGGFeatures(
        ["conv1_1", "bn1_1", "conv2_1"], arch="vgg11_bn", weights=None, random_state=0)),
    "resnet18": _rgb_backbone(lambda: ResNetFeatures(
        ["conv1", "layer1", "layer2", "fc"], weights=None, random_state=0)),
    "torchvision nodes": _rgb_backbone(lambda: TorchvisionFeatures(
        "resnet18", ["bn1", "layer1.0.bn1", "layer1.0.bn2", "layer1.0.relu_1"], weights=None,
        random_state=0)),
    "cifar resnet": _rgb_backbone(lambda: CifarResNetFeatures(
        8, ["conv1", "layer1", "layer2", "logits"], random_state=0)),
    "CNNClassifier layers": _layer_features(["conv1", "bn1", "pool1", "gap", "fc1"]),
}


@pytest.mark.parametrize("case", list(MULTI_LAYER_CASES))
def test_multi_layer_call_equals_single_layer_extractions(case, rgb32, digits):
    # In-place ops after a returned layer (ReLU(inplace=True), ``out += identity``) used to
    # overwrite it: conv1_1 came back ReLU'd when pool1 was requested too.
    est, X, y = MULTI_LAYER_CASES[case](rgb32, digits)
    layers = est.layers
    both = est.fit(X, y).transform(X)
    start, negative = 0, False
    for layer, size in zip(layers, est.feature_sizes_):
        alone = clone(est).set_params(layers=layer).fit(X, y).transform(X)
        assert alone.shape[1] == size
        np.testing.assert_array_equal(both[:, start:start + size], alone, err_msg=layer)
        negative |= bool((alone < 0).any())
        start += size
    assert start == both.shape[1]
    assert negative  # some requested layer is pre-ReLU, so the check had something to catch


@pytest.mark.parametrize("make", [
    lambda: CifarResNetFeatures(8, "layer2", random_state=0),
    lambda: ResNetFeatures("layer1", weights=None, random_state=0),
    lambda: VGGFeatures("bn1_1", arch="vgg11_bn", weights=None, random_state=0),
], ids=["cifar resnet", "resnet18", "vgg11_bn"])
def test_feature_extractors_stay_in_eval_mode(make, rgb32):
    f = make().fit(rgb32)
    assert not any(m.training for m in f.model_.modules())
    f.transform(rgb32)  # extraction restores the mode it found: still eval
    assert not any(m.training for m in f.model_.modules())


def test_feature_extractor_input_rules(rgb32):
    import pandas as pd

    f = CifarResNetFeatures(8, "layer1", pooling="avg", random_state=0).fit(rgb32)
    expected = f.transform(rgb32)
    np.testing.assert_array_equal(f.transform(rgb32.astype(np.int64)), expected)
    np.testing.assert_array_equal(f.transform(rgb32.tolist()), expected)
    with pytest.raises(ValueError, match="order that cannot be told"):
        f.transform(pd.DataFrame(rgb32.reshape(len(rgb32), -1)))
    with pytest.warns(UserWarning, match="CifarResNetFeatures was fit on integer images"):
        f.transform(rgb32.astype(np.float32))


def test_available_layers_on_the_class_is_deprecated():
    with pytest.warns(FutureWarning, match=r"use VGGFeatures\(arch=\.\.\.\)\.available_layers\(\)"):
        names = VGGFeatures.available_layers("vgg16")
    assert names == VGGFeatures(arch="vgg16").available_layers()
    with pytest.warns(FutureWarning, match="on the class is deprecated"):
        assert VGGFeatures.available_layers(arch="vgg11") == \
            VGGFeatures(arch="vgg11").available_layers()
    with pytest.warns(FutureWarning, match="on the class is deprecated"):
        assert CifarResNetFeatures.available_layers() == CifarResNetFeatures().available_layers()
    with pytest.raises(ValueError, match="arch must be one of"):
        VGGFeatures(arch="vgg7").available_layers()


def test_layer_is_the_deprecated_name_of_layers(rgb32):
    """``layers`` (one name or several) as everywhere else; 0.1's ``layer`` still works."""
    new = CifarResNetFeatures(8, layers="layer1", pooling="avg", random_state=0).fit(rgb32)
    with pytest.warns(FutureWarning, match=r"CifarResNetFeatures\(layer=\.\.\.\) is deprecated"):
        old = CifarResNetFeatures(8, layer="layer1", pooling="avg", random_state=0).fit(rgb32)
    assert old.layers_ == new.layers_ == ["layer1"]
    np.testing.assert_array_equal(old.transform(rgb32), new.transform(rgb32))
    with pytest.raises(ValueError, match="got both layers='conv1' and layer='layer1'"):
        CifarResNetFeatures(8, layers="conv1", layer="layer1").fit(rgb32)
