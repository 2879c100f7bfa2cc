import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from sklearn_cnn import CifarResNetFeatures, TransferClassifier

BACKBONE = CifarResNetFeatures(8, random_state=0)
FAST = dict(max_epochs=1, verbose=0, random_state=0, batch_size=32)


@pytest.fixture(scope="module")
def data(digits):
    return digits.images[:320], digits.target[:320], digits.images[320:420], digits.target[320:420]


def _backbone_params(clf):
    return {n: p.detach().clone() for n, p in clf.module_.backbone.model.named_parameters()}


def _initial_backbone():
    b = clone(BACKBONE).fit(np.zeros((2, 8, 8), np.uint8))
    return {n: p.detach().clone() for n, p in b.model_.model.named_parameters()}


def test_frozen_is_fast_and_learns(data):
    X, y, Xt, yt = data
    clf = TransferClassifier(BACKBONE, head=(64,), max_epochs=15, lr=3e-3, verbose=0,
                             random_state=0).fit(X, y, test_data=(Xt, yt))
    assert clf.fast_frozen_ and isinstance(clf.module_, torch.nn.Sequential)
    assert clf.score(Xt, yt) > 0.3  # random conv features + a trained head; chance is 0.1
    assert {"test_loss", "test_acc"} <= set(clf.history_.columns)
    assert "test_scoring" not in dict(clf.net_.callbacks_)  # no test data kept in the model


def test_unfreeze_exactly_at_step_k(data):
    X, y, _, _ = data
    start = _initial_backbone()
    # 288 training images / 32 = 9 steps per epoch; unfreeze after 4 steps of the first epoch
    snapshots = []

    from skorch.callbacks import Callback

    class Record(Callback):
        def on_batch_end(self, net, training=False, **kw):
            if training:
                snapshots.append(net.module_.backbone.model.conv1.weight.detach().clone())

    clf = TransferClassifier(BACKBONE, head=(16,), unfreeze_after_steps=4,
                             callbacks=[Record()], **FAST).fit(X, y)
    assert not clf.fast_frozen_
    w0 = start["conv1.weight"]
    for i in range(4):  # steps 1..4: backbone frozen
        assert torch.equal(snapshots[i], w0), f"changed at step {i + 1}"
    assert not torch.equal(snapshots[5], w0)  # trained after step 4
    assert len(clf.steps_) == len(snapshots) == 9


def test_weight_histograms_of_backbone_layers_move_after_unfreezing(data):
    from sklearn_cnn.plot import RecordWeightHistograms, weight_histogram_progression

    X, y, _, _ = data
    w0 = _initial_backbone()["conv1.weight"].numpy().ravel()
    # 288 training images / 32 = 9 steps per epoch: epoch 1 frozen, unfrozen in epoch 2.
    clf = TransferClassifier(BACKBONE, head=(16,), unfreeze_after_steps=12,
                             callbacks=[RecordWeightHistograms(["conv1", "layer3", "head"])],
                             **{**FAST, "max_epochs": 3}).fit(X, y)
    hists = clf.history_["hist_conv1"]
    counts0, edges0 = np.histogram(w0, bins=50)
    assert hists[0][0] == counts0.tolist()  # still the pretrained weights after epoch 1
    np.testing.assert_allclose(hists[0][1], edges0, rtol=1e-6)
    assert hists[1] != hists[0] and hists[2] != hists[1]  # trained from step 13 on
    assert len(clf.history_["hist_head"]) == 3
    assert len(weight_histogram_progression(clf, "conv1").axes) >= 1
    with pytest.raises(ValueError, match="unknown layer 'conv9'.*valid layer names"):
        TransferClassifier(BACKBONE, unfreeze_after_steps=2,
                           callbacks=[RecordWeightHistograms("conv9")], **FAST).fit(X, y)


def test_partial_training_keeps_frozen_layers_and_bn_stats(data):
    X, y, _, _ = data
    start = _initial_backbone()
    b = clone(BACKBONE).fit(X[:2])
    bn_before = b.model_.model.bn1.running_mean.clone()
    clf = TransferClassifier(BACKBONE, train_layers="from:layer2", **FAST).fit(X, y)
    after = _backbone_params(clf)
    for name, value in after.items():
        if name.startswith("linear."):
            continue  # the backbone's own classifier lies beyond the cut at avgpool: unused
        changed = not torch.equal(value, start[name])
        frozen = name.startswith(("conv1", "bn1", "layer1"))
        assert changed != frozen or ("bn" in name and not changed), name
    # frozen BatchNorm layers stay in eval mode: running statistics untouched
    assert torch.equal(clf.module_.backbone.model.bn1.running_mean, bn_before)


def test_train_layers_list_and_backbone_lr(data):
    X, y, _, _ = data
    clf = TransferClassifier(BACKBONE, train_layers=["layer3"], backbone_lr=1e-5, **FAST)
    clf.fit(X, y)
    grads = {n: p.requires_grad for n, p in clf.module_.backbone.model.named_parameters()}
    assert grads["layer3.0.conv1.weight"] and not grads["layer2.0.conv1.weight"]
    assert sorted(g["lr"] for g in clf.net_.optimizer_.param_groups) == [1e-5, 1e-3]


@pytest.mark.parametrize("train_layers,trained", [
    (["conv1"], {"conv1.weight"}),
    ("from:conv1", {"conv1.weight", "bn1.weight", "layer1.0.conv1.weight",
                    "layer3.0.conv2.weight"}),
])
def test_train_layers_name_the_layer_not_its_activation(data, train_layers, trained):
    # CifarResNet's "conv1" output node is its relu; the layer name must still select
    # the conv1 module's own parameters.
    X, y, _, _ = data
    clf = TransferClassifier(BACKBONE, train_layers=train_layers, **FAST).fit(X, y)
    grads = {n for n, p in clf.module_.backbone.model.named_parameters() if p.requires_grad}
    assert trained <= grads
    if train_layers == ["conv1"]:
        assert grads == {"conv1.weight"} | ({"conv1.bias"} & grads)


def test_truncated_backbone_is_a_layer_choice(data):
    X, y, _, _ = data
    clf = TransferClassifier(CifarResNetFeatures(8, pooling="avg", random_state=0),
                             layer="layer2", head=(), **FAST).fit(X, y)
    assert clf.backbone_.layers_ == ["layer2"] and clf.module_[0].in_features == 32


def test_grid_search_over_strategies(data):
    X, y, _, _ = data
    search = GridSearchCV(TransferClassifier(BACKBONE, head=(16,), **FAST),
                          {"train_layers": ["none", "all"], "unfreeze_after_steps": [None, 2]},
                          cv=2)
    search.fit(X[:200], y[:200])
    assert len(search.cv_results_["params"]) == 4


def test_layer_wins_over_the_backbones_deprecated_layer():
    """TransferClassifier(layer=) is the cut point even when the backbone was built with
    0.1's layer= (which would otherwise win over the layers it sets)."""
    from sklearn_cnn import VGGFeatures
    from sklearn_cnn._layers import requested_layers

    clf = TransferClassifier(VGGFeatures(layer="pool1", arch="vgg11", weights=None),
                             layer="pool5")  # pool5: VGGFeatures' default layers
    assert requested_layers(clf._make_backbone()) == "pool5"


@pytest.mark.parametrize("params,exc,match", [
    (dict(backbone="alexnet9"), ValueError, "unknown backbone"),
    (dict(backbone=42), TypeError, "'backbone' parameter of TransferClassifier must be"),
    (dict(head=(0,)), ValueError, "head must be a tuple of positive ints"),
    (dict(unfreeze_after_steps=-1), ValueError, "unfreeze_after_steps"),
    (dict(train_layers="from:layer9"), ValueError, "valid layer names"),
    (dict(train_layers="some"), ValueError, "train_layers must be"),
    (dict(layer="layer9"), ValueError, "layer 'layer9' is not a layer of the backbone; valid"),
])
def test_bad_parameters(data, params, exc, match):
    X, y, _, _ = data
    with pytest.raises(exc, match=match):
        TransferClassifier(**{"backbone": BACKBONE, **FAST, **params}).fit(X[:40], y[:40])


def test_fast_path_in_fine_tuning(data):
    X, y, Xt, _ = data
    ref = TransferClassifier(BACKBONE, head=(16,), train_layers="all", **FAST).fit(X, y)
    fast = TransferClassifier(BACKBONE, head=(16,), train_layers="all",
                              fast_path=["channels_last", "bf16"], **FAST).fit(X, y)
    assert fast.module_.backbone.model.conv1.weight.is_contiguous(
        memory_format=torch.channels_last)
    p, q = fast.predict_proba(Xt), ref.predict_proba(Xt)
    assert not np.array_equal(p, q)  # bf16 rounds
    np.testing.assert_allclose(p, q, atol=0.05)


def test_default_backbone_without_its_weights_raises(data, monkeypatch, tmp_path):
    # It used to train on a randomly initialised "pretrained" ResNet-20 (backbone_.weights None).
    X, y, _, _ = data
    monkeypatch.delenv("SKLEARN_CNN_SHARED", raising=False)
    with pytest.raises(FileNotFoundError, match=r"resnet20-12fca82f\.th.*SKLEARN_CNN_SHARED"
                                                r".*weights=None for a randomly initialised"):
        TransferClassifier(**FAST).fit(X[:40], y[:40])
    monkeypatch.setenv("SKLEARN_CNN_SHARED", str(tmp_path))  # set, but without the file
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "weights" / "resnet20-12fca82f.th")):
        TransferClassifier(**FAST).fit(X[:40], y[:40])


@pytest.mark.shared
def test_default_backbone_uses_the_shared_weights(data):
    from .conftest import shared_file

    path = shared_file("weights", "resnet20-12fca82f.th")
    X, y, _, _ = data
    clf = TransferClassifier(head=(8,), **FAST).fit(X[:40], y[:40])
    assert str(clf.backbone_.weights) == str(path)


@pytest.mark.parametrize("params", [
    dict(train_layers="none", validation_fraction=None),
    dict(train_layers="all", validation_fraction=None),
    dict(train_layers="from:layer2", validation_fraction=0.2),
    dict(unfreeze_after_steps=1, validation_fraction=None),
])
def test_fitted_networks_are_in_eval_mode(data, params):
    X, y, Xt, _ = data
    clf = TransferClassifier(BACKBONE, head=(8,), **{**FAST, **params}).fit(X[:64], y[:64])
    clf.predict(Xt[:4])
    modules = [clf.backbone_.model_, clf.module_]
    assert not any(m.training for module in modules for m in module.modules())
    # so calling the module is deterministic and leaves the BatchNorm statistics alone
    bn = clf.backbone_.model_.model.bn1
    before = bn.running_mean.clone()
    net = clf.module_ if not clf.fast_frozen_ else clf.backbone_.model_
    x = torch.from_numpy(np.random.RandomState(0).rand(4, 3, 8, 8).astype(np.float32))
    with torch.no_grad():
        first, second = net(x), net(x[:2])
    torch.testing.assert_close(first[:2], second)
    torch.testing.assert_close(bn.running_mean, before, rtol=0, atol=0)


@pytest.mark.parametrize("test_data, exc, match", [
    (lambda Xt, yt: (Xt, yt[:-1]), ValueError, "X_test has 100 samples but y_test has 99"),
    (lambda Xt, yt: (Xt, np.where(yt == 3, 11, yt)), ValueError,
     r"y_test has label\(s\) \[11\] not seen in y"),
    (lambda Xt, yt: (Xt, yt.astype(str)), ValueError, "not seen in y"),
    (lambda Xt, yt: (Xt[:, :4], yt), ValueError, "test_data X_test has images of 4x8"),
    (lambda Xt, yt: (Xt, yt[:, None].repeat(2, 1)), ValueError, "y should be a 1d array"),
    (lambda Xt, yt: Xt, TypeError, "test_data must be a pair"),
])
def test_bad_test_data_is_rejected_before_training(data, test_data, exc, match):
    X, y, Xt, yt = data
    clf = TransferClassifier(BACKBONE, head=(8,), **FAST)
    with pytest.raises(exc, match=match):
        clf.fit(X[:40], y[:40], test_data=test_data(Xt, yt))
    assert not hasattr(clf, "net_")  # nothing was trained


def test_test_data_with_string_labels(data):
    X, y, Xt, yt = data
    names = np.array(list("abcdefghij"))
    clf = TransferClassifier(BACKBONE, head=(8,), **FAST).fit(X, names[y],
                                                              test_data=(Xt, names[yt]))
    proba = clf.predict_proba(Xt)
    expected = -np.log(np.clip(proba[np.arange(len(yt)), yt], 1e-12, None)).mean()
    np.testing.assert_allclose(clf.history_["test_loss"].iloc[-1], expected, rtol=1e-5)
