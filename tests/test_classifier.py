import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from sklearn_cnn import CNNClassifier
from sklearn_cnn._input import ImageBatches
from sklearn_cnn.architectures import conv, dense, flatten, maxpool

FAST = dict(max_epochs=2, verbose=0, random_state=0)


def test_learns_digits(small_digits):
    X, y, Xt, yt = small_digits
    clf = CNNClassifier(max_epochs=8, verbose=0, random_state=0).fit(X, y)
    assert clf.score(Xt, yt) > 0.75  # chance is 0.1
    proba = clf.predict_proba(Xt)
    assert proba.shape == (200, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)


def test_same_seed_same_predictions(small_digits):
    X, y, Xt, _ = small_digits
    a = CNNClassifier(**FAST).fit(X, y).predict_proba(Xt)
    b = CNNClassifier(**FAST).fit(X, y).predict_proba(Xt)
    c = CNNClassifier(**{**FAST, "random_state": 1}).fit(X, y).predict_proba(Xt)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_fit_does_not_touch_global_torch_rng(small_digits):
    X, y, _, _ = small_digits
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    CNNClassifier(**FAST).fit(X[:100], y[:100])
    np.testing.assert_array_equal(torch.rand(3), expected)


def test_string_labels(small_digits):
    X, y, Xt, _ = small_digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"])
    clf = CNNClassifier(**FAST).fit(X, names[y])
    assert set(clf.predict(Xt)) <= set(names)
    assert list(clf.classes_) == sorted(names)


@pytest.mark.parametrize("make", [
    lambda X: X,                                       # (n, 8, 8, 1) uint8
    lambda X: X[..., 0],                               # (n, 8, 8) uint8
    lambda X: X.reshape(len(X), -1) / 255.0,           # (n, 64) float -> 8x8 inferred
    lambda X: np.repeat(X, 3, axis=-1).astype(np.float32) / 255,  # RGB float
])
def test_input_layouts(small_digits, make):
    X, y, Xt, yt = small_digits
    clf = CNNClassifier(**FAST).fit(make(X), y)
    assert clf.predict(make(Xt)).shape == (len(Xt),)
    assert clf.image_shape_[1:] == (8, 8)


def test_uint8_and_scaled_float_inputs_agree(small_digits):
    X, y, Xt, _ = small_digits
    a = CNNClassifier(**FAST).fit(X, y).predict_proba(Xt)
    b = CNNClassifier(**FAST).fit(X.astype(np.float32) / 255, y).predict_proba(
        Xt.astype(np.float32) / 255)
    np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("n", [1, 200, 300])  # one image, under and over one batch of 256
def test_prediction_converts_batch_by_batch_and_equals_the_whole_conversion(small_digits, n,
                                                                            monkeypatch):
    X, y, Xt, _ = small_digits
    Xt = np.concatenate([Xt, Xt])[:n]
    clf = CNNClassifier(**FAST).fit(X, y)
    whole = clf.net_.predict_proba(torch.from_numpy(clf._images(Xt)))
    batches = []
    convert = ImageBatches.__getitem__
    monkeypatch.setattr(ImageBatches, "__getitem__",
                        lambda self, i: batches.append(i) or convert(self, i))
    np.testing.assert_array_equal(clf.predict_proba(Xt), whole / whole.sum(1, keepdims=True,
                                                                         dtype=np.float64))
    assert batches == [slice(s, s + 256) for s in range(0, n, 256)]


def test_prediction_batch_size_minus_one_is_one_batch(small_digits, monkeypatch):
    # skorch's batch_size=-1 (everything at once) used to make range() step -1: no batch
    X, y, Xt, _ = small_digits
    clf = CNNClassifier(**FAST).fit(X, y)
    clf.net_.iterator_valid__batch_size = -1  # skorch: everything in one batch
    batches = []
    convert = ImageBatches.__getitem__
    monkeypatch.setattr(ImageBatches, "__getitem__",
                        lambda self, i: batches.append(i) or convert(self, i))
    proba = clf.predict_proba(Xt)
    assert proba.shape == (len(Xt), len(clf.classes_))
    assert batches == [slice(0, len(Xt))]


def test_integer_inputs_of_any_dtype_predict_like_uint8(small_digits):
    # Only uint8 used to be read as 0-255: X.tolist() or int64 changed every prediction.
    import pandas as pd

    X, y, Xt, _ = small_digits
    clf = CNNClassifier(**FAST).fit(X, y)
    assert clf.integer_input_
    expected = clf.predict_proba(Xt)
    for other in (Xt.astype(np.int64), Xt.tolist(), Xt[..., 0].astype(np.int32),
                  pd.DataFrame(Xt.reshape(len(Xt), -1))):
        np.testing.assert_array_equal(clf.predict_proba(other), expected)
    assert clf.score(Xt.astype(np.int64), small_digits[3]) == clf.score(Xt, small_digits[3])
    # 0-255 values as floats after an integer fit: used as they are, with a warning
    with pytest.warns(UserWarning, match="CNNClassifier was fit on integer images"):
        clf.predict_proba(Xt.astype(np.float32))


def test_flat_rgb_input_is_never_silently_read_channels_first():
    # transform(pd.DataFrame(R.reshape(n, -1))) used to read channels-last rows channels-first.
    import pandas as pd

    rng = np.random.RandomState(0)
    R = rng.randint(0, 256, (40, 4, 4, 3)).astype(np.uint8)
    y = np.arange(40) % 2
    clf = CNNClassifier(**FAST).fit(R, y)
    for flat in (R.reshape(40, -1), pd.DataFrame(R.reshape(40, -1))):
        with pytest.raises(ValueError, match="order that cannot be told"):
            clf.predict_proba(flat)
    with pytest.raises(ValueError, match=r"image_shape=\(3, 4, 4\)"):
        CNNClassifier(**FAST).fit(R.reshape(40, -1), y)
    # image_shape states the (channels-first) layout of the rows
    chw = R.transpose(0, 3, 1, 2).reshape(40, -1)
    flat_clf = CNNClassifier(image_shape=(3, 4, 4), **FAST).fit(chw, y)
    np.testing.assert_allclose(flat_clf.predict_proba(chw), clf.predict_proba(R), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_array_equal(flat_clf.predict_proba(R), flat_clf.predict_proba(chw))


def test_pickle_and_joblib_round_trip(small_digits, tmp_path):
    X, y, Xt, _ = small_digits
    clf = CNNClassifier(**FAST).fit(X, y)
    expected = clf.predict_proba(Xt)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(Xt), expected)
    joblib.dump(clf, tmp_path / "clf.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "clf.joblib").predict_proba(Xt),
                                  expected)


def test_history_and_summary(small_digits):
    X, y, _, _ = small_digits
    clf = CNNClassifier(max_epochs=3, verbose=0, random_state=0, lr_schedule="exponential",
                        lr_gamma=0.5).fit(X, y)
    h = clf.history_
    assert list(h.columns[:7]) == ["epoch", "train_loss", "train_acc", "valid_loss",
                                   "valid_acc", "lr", "dur"]
    assert h["epoch"].tolist() == [1, 2, 3]
    np.testing.assert_allclose(h["lr"], [1e-3, 5e-4, 2.5e-4])
    assert h[["train_loss", "valid_loss", "valid_acc"]].notna().all().all()
    s = clf.summary()
    assert s["name"].tolist()[-1] == "total"
    assert s["name"].tolist()[:-1] == clf.layer_names_
    assert s.attrs["trainable_params"] == sum(
        p.numel() for p in clf.module_.parameters() if p.requires_grad)


@pytest.mark.parametrize("schedule,params,expected", [
    ("multistep", dict(lr_milestones=(1, 2), lr_gamma=0.5), [1e-3, 5e-4, 2.5e-4]),
    ("annealing", dict(lr_anneal_T=2), [1e-3, 1e-3 / 1.5, 1e-3 / 2]),
])
def test_lr_schedules(small_digits, schedule, params, expected):
    X, y, _, _ = small_digits
    clf = CNNClassifier(max_epochs=3, verbose=0, random_state=0, lr_schedule=schedule,
                        **params).fit(X[:100], y[:100])
    np.testing.assert_allclose(clf.history_["lr"], expected)


def test_no_validation_split(small_digits):
    X, y, _, _ = small_digits
    clf = CNNClassifier(validation_fraction=None, **FAST).fit(X, y)
    assert clf.history_["valid_loss"].isna().all()
    assert clf.net_.history[-1]["train_batch_count"] == int(np.ceil(400 / 32))


def test_early_stopping_stops_and_restores(small_digits):
    X, y, _, _ = small_digits
    clf = CNNClassifier(max_epochs=40, early_stopping=True, patience=1, lr=0.05,
                        optimizer="sgd", verbose=0, random_state=0).fit(X, y)
    assert len(clf.history_) < 40


def test_weight_decay_limited_to_named_layers(small_digits):
    X, y, _, _ = small_digits
    clf = CNNClassifier([conv(4), maxpool(), flatten(), dense(16)], weight_decay=0.5,
                        weight_decay_layers=["fc*"], **FAST).fit(X, y)
    groups = clf.net_.optimizer_.param_groups
    decayed = [g for g in groups if g["weight_decay"] > 0]
    named = dict(clf.module_.named_parameters())
    assert len(decayed) == 1 and len(decayed[0]["params"]) == 1
    assert decayed[0]["params"][0] is named["fc1.weight"]
    with pytest.raises(ValueError, match="matches no layer; valid layer names"):
        CNNClassifier(weight_decay=0.1, weight_decay_layers=["fc9"], **FAST).fit(X, y)


def test_weight_decay_shrinks_weights(small_digits):
    X, y, _, _ = small_digits
    plain = CNNClassifier("mnist_5x5", **FAST).fit(X, y)
    l2 = CNNClassifier("mnist_5x5", weight_decay=1.0, optimizer="sgd", lr=0.05,
                       **FAST).fit(X, y)
    plain_sgd = CNNClassifier("mnist_5x5", optimizer="sgd", lr=0.05, **FAST).fit(X, y)
    norm = lambda c: c.module_.fc1.weight.norm().item()  # noqa: E731
    assert norm(l2) < norm(plain_sgd)
    assert plain.module_.fc1.weight.shape == (64, 64)  # 8x8 -> 2x2x16 after two pools


def test_zero_denormals():
    from sklearn_cnn._base import zero_denormals

    x = torch.tensor([1e-39, -1e-40, 1.2e-38, -2e-38, 0.0, 1.0, -3.0])
    ints = torch.tensor([0, 1, 2])
    zero_denormals([x, ints])
    assert x.tolist() == pytest.approx([0.0, 0.0, 1.2e-38, -2e-38, 0.0, 1.0, -3.0], abs=0, rel=1e-6)
    assert ints.tolist() == [0, 1, 2]


@pytest.mark.parametrize("every,zeroed", [(1, True), (10**9, False)])
def test_training_zeroes_denormal_weights(small_digits, every, zeroed, monkeypatch):
    # Weight decay drives weights and Adam moments into the denormal range, where CPU
    # arithmetic is many times slower; the training step sets them to zero (tested
    # here without the calling thread's flush flag, which alone would zero them too).
    import contextlib

    from skorch.callbacks import Callback

    monkeypatch.setattr("sklearn_cnn._base.flush_denormal", contextlib.nullcontext)

    class Plant(Callback):
        def on_train_begin(self, net, **kwargs):
            net.zero_denormals_every = every
            with torch.no_grad():
                net.module_.fc1.weight.view(-1)[:3] = torch.tensor([1e-39, -1e-40, 0.5])

    X, y, _, _ = small_digits
    clf = CNNClassifier("mnist_5x5", lr=0.0, max_epochs=1, verbose=0, random_state=0,
                        callbacks=[Plant()]).fit(X[:64], y[:64])
    head = clf.module_.fc1.weight.view(-1)[:3].tolist()  # lr 0: training changed nothing else
    assert head[2] == 0.5
    assert (head[:2] == [0.0, 0.0]) == zeroed
    moments = [v for s in clf.net_.optimizer_.state.values() for v in s.values()]
    tiny = torch.finfo(torch.float32).tiny
    if zeroed:
        assert all(int(((m.abs() > 0) & (m.abs() < tiny)).sum()) == 0 for m in moments)


def test_fit_flushes_denormals_and_restores_the_flag(small_digits):
    from skorch.callbacks import Callback
    from sklearn_cnn._base import flush_denormal_enabled

    seen = []

    class Look(Callback):
        def on_epoch_end(self, net, **kwargs):
            seen.append(flush_denormal_enabled())

    X, y, _, _ = small_digits
    assert not flush_denormal_enabled()
    CNNClassifier("mnist_5x5", max_epochs=1, verbose=0, callbacks=[Look()]).fit(X[:64], y[:64])
    assert seen == [True] or not torch.set_flush_denormal(False)  # CPU without FTZ: no-op
    assert not flush_denormal_enabled()


@pytest.mark.parametrize("init,check", [
    ("gaussian", lambda w: abs(w.std().item() - 0.01) < 0.003),
    ("xavier", lambda w: w.abs().max().item() <= np.sqrt(6 / (64 + 10)) + 1e-6),
    ("kaiming", lambda w: w.std().item() > 0.05),
])
def test_init(small_digits, init, check):
    X, y, _, _ = small_digits
    clf = CNNClassifier(init=init, max_epochs=0, verbose=0, random_state=0).fit(X, y)
    assert check(clf.module_.logits.weight.detach())
    assert torch.count_nonzero(clf.module_.logits.bias) == 0


def test_augmentation_trains_and_keeps_shapes(small_digits):
    from sklearn_cnn._base import Augment

    X, y, Xt, yt = small_digits
    torch.manual_seed(0)
    batch = torch.rand(16, 3, 8, 8)
    flipped = Augment(flip=True)(batch)
    same = [(flipped[i] == batch[i]).all() or (flipped[i] == batch[i].flip(-1)).all()
            for i in range(16)]
    assert all(same) and not (flipped == batch).all()
    shifted = Augment(shift=2)(batch)
    assert shifted.shape == batch.shape
    clf = CNNClassifier(random_flip=True, random_shift=1, max_epochs=5, verbose=0,
                        random_state=0).fit(X, y)
    assert clf.score(Xt, yt) > 0.5


def test_sgd_nesterov(small_digits):
    X, y, _, _ = small_digits
    clf = CNNClassifier(optimizer="sgd", nesterov=True, momentum=0.9, lr=0.01, **FAST).fit(X, y)
    assert clf.net_.optimizer_.param_groups[0]["nesterov"] is True


def test_grid_search_over_kernel_and_stride(small_digits):
    X, y, _, _ = small_digits
    search = GridSearchCV(CNNClassifier(max_epochs=1, verbose=0, random_state=0),
                          {"kernel_size": [3, 5], "stride": [1, 2]}, cv=2)
    search.fit(X[:200], y[:200])
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert len(search.cv_results_["params"]) == 4
    assert search.best_estimator_.kernel_size in (3, 5)
    convs = [s for s in search.best_estimator_.module_.specs if s["type"] == "conv"]
    assert {s["kernel_size"] for s in convs} == {search.best_params_["kernel_size"]}


def test_clone_keeps_params_not_fit():
    clf = CNNClassifier("cifar_3x3", lr=0.01, random_state=3)
    c = clone(clf)
    assert c.get_params() == clf.get_params() and not hasattr(c, "net_")


# ---------------------------------------------------------------- bad input
@pytest.fixture
def fitted(small_digits):
    X, y, _, _ = small_digits
    return CNNClassifier(**FAST).fit(X, y)


def test_nan_input_is_rejected(small_digits):
    X, y, _, _ = small_digits
    Xf = X.astype(float)
    Xf[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        CNNClassifier(**FAST).fit(Xf, y)


@pytest.mark.parametrize("X,match", [
    (np.zeros(10), "got an array with 1 dimension"),
    (np.zeros((2, 3, 4, 5, 6)), "got an array with 5 dimension"),
    (np.zeros((4, 8, 8, 7)), r"channels-last \(n, H, W, C\) with C in 1, 3 or 4"),
    (np.zeros((0, 8, 8)), "0 sample"),
])
def test_bad_shapes_are_rejected(X, match):
    with pytest.raises(ValueError, match=match):
        CNNClassifier(**FAST).fit(X, np.arange(len(X)) % 2)


def test_channel_count_must_match_fit(fitted, small_digits):
    Xt = small_digits[2]
    with pytest.raises(ValueError, match=r"3 channel\(s\) but fit saw 1"):
        fitted.predict(np.repeat(Xt, 3, axis=-1))
    with pytest.raises(ValueError, match="images of 10x10 but fit saw 8x8"):
        fitted.predict(np.zeros((2, 10, 10), np.uint8))
    with pytest.raises(ValueError, match="X has 10 features, but CNNClassifier is expecting 64"):
        fitted.predict(np.zeros((2, 10)))


def test_mismatched_y_length(small_digits):
    X, y, _, _ = small_digits
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        CNNClassifier(**FAST).fit(X, y[:-1])


def test_one_class_only(small_digits):
    X, _, _, _ = small_digits
    with pytest.raises(ValueError, match="at least 2 classes"):
        CNNClassifier(**FAST).fit(X, np.zeros(len(X)))


def test_string_images_are_rejected():
    with pytest.raises(TypeError, match="must hold numbers"):
        CNNClassifier(**FAST).fit(np.array([["a", "b"], ["c", "d"]]), [0, 1])


@pytest.mark.parametrize("params,exc,match", [
    (dict(architecture="vgg99"), ValueError, "unknown architecture preset 'vgg99'"),
    (dict(architecture=[{"type": "conv"}]), ValueError, "missing key"),
    (dict(optimizer="adagrad9"), ValueError, "'optimizer' parameter of CNNClassifier must be a str among"),
    (dict(lr=-1), ValueError, r"'lr' parameter of CNNClassifier must be a float in the range \[0.0, inf\)"),
    (dict(batch_size=0), ValueError, r"'batch_size' parameter of CNNClassifier must be an int in the range \[1, inf\)"),
    (dict(validation_fraction=1.5), ValueError, r"'validation_fraction' parameter of CNNClassifier must be a float in the range \(0.0, 1.0\) or None"),
    (dict(early_stopping=True, validation_fraction=None), ValueError, "needs a validation"),
    (dict(lr_schedule="cosine"), ValueError, "'lr_schedule' parameter of CNNClassifier must be a str among"),
    (dict(lr_schedule="multistep"), ValueError, "needs lr_milestones"),
    (dict(init="orthogonal"), ValueError, "'init' parameter of CNNClassifier must be a str among"),
    (dict(image_shape=(3, 3)), ValueError, "cannot be reshaped to image_shape"),
    (dict(kernel_size=[3, 3, 3]), ValueError, "kernel_size has 3 values"),
    (dict(fast_path="fp16"), ValueError, "fast_path must be None, 'auto', one of"),
    (dict(fast_path=["bf16", 3]), ValueError, "fast_path must be None, 'auto', one of"),
    (dict(fast_path=["auto"]), ValueError, "fast_path must be None, 'auto', one of"),
])
def test_bad_parameters_raise_in_fit(params, exc, match):
    X = np.random.RandomState(0).rand(20, 64)
    y = np.arange(20) % 2
    clf = CNNClassifier(**{**FAST, **params})  # __init__ never validates
    with pytest.raises(exc, match=match):
        clf.fit(X, y)


def test_fast_path_channels_last_and_bf16(small_digits):
    X, y, Xt, yt = small_digits
    ref = CNNClassifier("mnist_5x5", **FAST).fit(X, y)
    cl = CNNClassifier("mnist_5x5", fast_path="channels_last", **FAST).fit(X, y)
    assert cl.module_.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    # The same arithmetic in another memory layout: the same model up to rounding.
    np.testing.assert_allclose(cl.predict_proba(Xt), ref.predict_proba(Xt), atol=1e-3)
    # bf16 rounds activations to 8 bits of mantissa: close to float32, not equal.
    opts = {**FAST, "max_epochs": 6}
    ref = CNNClassifier(**opts).fit(X, y)
    both = CNNClassifier(fast_path=["channels_last", "bf16"], **opts).fit(X, y)
    proba = both.predict_proba(Xt)
    assert proba.dtype == ref.predict_proba(Xt).dtype
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert not np.array_equal(proba, ref.predict_proba(Xt))
    assert np.mean(both.predict(Xt) == ref.predict(Xt)) >= 0.9
    assert abs(both.score(Xt, yt) - ref.score(Xt, yt)) <= 0.05
    restored = pickle.loads(pickle.dumps(both))
    np.testing.assert_array_equal(restored.predict_proba(Xt), proba)


@pytest.mark.parametrize("contiguous_ms, nhwc_ms, chosen", [
    (10.0, 8.0, ("channels_last",)),  # 1.25x: kept
    (10.0, 9.8, ()),  # 1.02x: a tie, contiguous stays
    (8.0, 10.0, ()),
])
def test_fast_path_auto_keeps_the_faster_layout(small_digits, monkeypatch, capsys,
                                                contiguous_ms, nhwc_ms, chosen):
    """"auto" times both layouts (here: timings given) and trains with the faster one:
    the same network, bit for bit, as the explicit choice, so the trial moves no seed;
    the choice is printed and recorded."""
    from sklearn_cnn import _fast_path

    monkeypatch.setattr(_fast_path, "_CHOICES", {})
    monkeypatch.setattr(_fast_path, "native_bf16", lambda: False)
    monkeypatch.setattr(_fast_path, "_step_seconds", lambda trial, x, channels_last, bf16: (
        nhwc_ms if channels_last else contiguous_ms) / 1e3)
    X, y, Xt, _ = small_digits
    auto = CNNClassifier(fast_path="auto", **{**FAST, "verbose": 1}).fit(X, y)
    assert auto.fast_path_ == chosen
    out = capsys.readouterr().out
    assert f"fast_path='auto': {'channels_last' if chosen else 'none'}" in out
    assert "bf16" not in out  # no native bf16: not timed, no word on it
    explicit = CNNClassifier(fast_path=list(chosen), **FAST).fit(X, y)  # default: dropout
    np.testing.assert_array_equal(auto.predict_proba(Xt), explicit.predict_proba(Xt))
    assert CNNClassifier(**FAST).fit(X, y).fast_path_ == ()


@pytest.mark.parametrize("layout_faster", [True, False])
def test_fast_path_auto_times_bf16_on_a_native_bf16_cpu_but_never_chooses_it(
        small_digits, monkeypatch, capsys, layout_faster):
    """On a CPU with native bf16 the trial also times bf16 in the chosen layout and says
    how much faster it was, with the fast_path to give; the choice stays a layout (bf16
    rounds), so training is the explicit layout's, bit for bit."""
    from sklearn_cnn import _fast_path

    monkeypatch.setattr(_fast_path, "_CHOICES", {})
    monkeypatch.setattr(_fast_path, "native_bf16", lambda: True)
    timed = []

    def seconds(trial, x, channels_last, bf16):
        timed.append((channels_last, bf16))
        return (0.010 if channels_last == layout_faster else 0.012) / (2.5 if bf16 else 1)

    monkeypatch.setattr(_fast_path, "_step_seconds", seconds)
    X, y, Xt, _ = small_digits
    auto = CNNClassifier(fast_path="auto", **{**FAST, "verbose": 1}).fit(X, y)
    chosen = ("channels_last",) if layout_faster else ()
    assert auto.fast_path_ == chosen
    assert (layout_faster, True) in timed and (not layout_faster, True) not in timed
    out = capsys.readouterr().out
    explicit = "['bf16', 'channels_last']" if layout_faster else "'bf16'"
    assert "native bf16" in out and "2.50x as fast" in out
    assert f"give fast_path={explicit} to train with it" in out
    np.testing.assert_array_equal(
        auto.predict_proba(Xt), CNNClassifier(fast_path=list(chosen), **FAST).fit(X, y)
        .predict_proba(Xt))


def test_fast_path_auto_times_real_steps_without_touching_the_network(small_digits):
    from sklearn_cnn._fast_path import choose_fast_path
    from sklearn_cnn.architectures import build_network, resolve_architecture

    net = build_network(resolve_architecture("cifar_3x3"), (1, 8, 8), 10)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    images = torch.rand(64, 1, 8, 8)
    rng = torch.get_rng_state()
    choice = choose_fast_path(net, images, 32)
    assert choice in (frozenset(), frozenset({"channels_last"}))
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters())
    assert net.conv1.weight.is_contiguous()  # the copy was timed in NHWC, not the network
    # no convolution (a linear head on features): nothing to choose
    head = torch.nn.Sequential(torch.nn.Linear(8, 3))
    assert choose_fast_path(head, torch.rand(64, 8), 32) == frozenset()


def test_fast_path_auto_resumes_with_the_recorded_choice(small_digits, tmp_path, monkeypatch,
                                                         capsys):
    """A run continued from its checkpoint trains with the layout it started with, whatever
    a new timing would say."""
    from sklearn_cnn import _fast_path

    X, y, _, _ = small_digits
    for faster in (True, False):  # first run: channels_last wins; the rerun would say no
        monkeypatch.setattr(_fast_path, "_CHOICES", {})
        monkeypatch.setattr(_fast_path, "_step_seconds", lambda trial, x, channels_last,
                            bf16, faster=faster: 0.008 if channels_last == faster else 0.010)
        clf = CNNClassifier(fast_path="auto", checkpoint_dir=tmp_path, **{**FAST, "verbose": 1})
        clf.fit(X, y)
        assert clf.fast_path_ == ("channels_last",)
    assert "(the resumed run's choice)" in capsys.readouterr().out


@pytest.mark.parametrize("saved", [None, "channels_last"])
def test_fast_path_auto_continues_a_run_saved_with_an_explicit_fast_path(
        small_digits, tmp_path, saved, capsys):
    """A run checkpointed under fast_path=None or "channels_last" (e.g. before "auto" was
    the CLI's default) is continued by "auto" in the layout it trained with."""
    X, y, _, _ = small_digits
    first = CNNClassifier(fast_path=saved, checkpoint_dir=tmp_path, **FAST).fit(X, y)
    again = CNNClassifier(fast_path="auto", checkpoint_dir=tmp_path,
                          **{**FAST, "verbose": 1}).fit(X, y)
    assert again.fast_path_ == first.fast_path_ == (("channels_last",) if saved else ())
    assert "(the resumed run's choice)" in capsys.readouterr().out
    with pytest.raises(ValueError, match="fast_path="):  # an explicit other one: another run
        CNNClassifier(fast_path="bf16", checkpoint_dir=tmp_path, **FAST).fit(X, y)


def test_fast_path_auto_where_there_is_nothing_to_time():
    """Other devices, frozen networks and optimizers whose step needs a closure: no
    trial error reaches the user; the default layout, with a warning where it failed."""
    from sklearn_cnn._fast_path import _setting_key, choose_fast_path
    from sklearn_cnn.architectures import build_network, resolve_architecture

    net = build_network(resolve_architecture("cifar_3x3"), (1, 8, 8), 10)
    images = torch.rand(16, 1, 8, 8)
    assert choose_fast_path(net, images, 8, device="meta") == frozenset()
    frozen = build_network(resolve_architecture("cifar_3x3"), (1, 8, 8), 10).requires_grad_(False)
    assert choose_fast_path(frozen, images, 8) in (frozenset(), frozenset({"channels_last"}))
    with pytest.warns(UserWarning, match="could not time a training step"):
        assert choose_fast_path(net, images, 8, optimizer=torch.optim.LBFGS) == frozenset()
    # what trains is part of the setting: a partly frozen copy is another trial
    assert _setting_key(net, images, torch.optim.Adam) != _setting_key(
        frozen, images, torch.optim.Adam)
    assert _setting_key(net, images, torch.optim.Adam) != _setting_key(
        net, images, torch.optim.SGD)


def test_fast_path_compile_wires_torch_compile(small_digits, monkeypatch):
    # Inductor's C++ build takes minutes on this CPU; dynamo with the eager backend
    # traces the same graphs in seconds (the benchmark runs the real compiler).
    compiled = []
    real = torch.compile

    def eager_compile(module, **kwargs):
        compiled.append(module)
        return real(module, backend="eager")

    monkeypatch.setattr(torch, "compile", eager_compile)
    X, y, Xt, _ = small_digits
    ref = CNNClassifier("mnist_5x5", **FAST).fit(X, y)
    clf = CNNClassifier("mnist_5x5", fast_path="compile", **FAST).fit(X, y)
    assert len(compiled) == 1 and compiled[0] is clf.module_  # the module itself stays plain
    assert [n for n, _ in clf.module_.named_parameters()] == \
        [n for n, _ in ref.module_.named_parameters()]
    np.testing.assert_allclose(clf.predict_proba(Xt), ref.predict_proba(Xt), atol=1e-4)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(restored.predict_proba(Xt), clf.predict_proba(Xt), atol=1e-6)


def test_test_data_gives_per_epoch_test_curves_and_is_not_kept(small_digits):
    X, y, Xt, yt = small_digits
    clf = CNNClassifier(**FAST).fit(X, y, test_data=(Xt, yt))
    hist = clf.history_
    assert {"test_loss", "test_acc"} <= set(hist.columns) and len(hist) == 2
    # the last epoch's test_acc is the fitted model's score on the test set
    assert hist["test_acc"].iloc[-1] == pytest.approx(clf.score(Xt, yt))
    assert not any(name == "test_scoring" for name, _ in clf.net_.callbacks_)
    assert not any(name == "test_scoring" for name, _ in clf.net_.callbacks)
    # nor does the saved model carry the test images: it pickles to the same size as a
    # model fitted without test data (it carried them in net_.callbacks before 0.2)
    plain = CNNClassifier(**FAST).fit(X, y)
    assert len(pickle.dumps(clf)) - len(pickle.dumps(plain)) < Xt.nbytes / 4
    # the test set never trains: the same weights as a fit without it
    ref = CNNClassifier(**FAST).fit(X, y)
    np.testing.assert_array_equal(ref.predict_proba(Xt), clf.predict_proba(Xt))


def test_test_curve_has_the_epoch_that_stopped_the_run(small_digits):
    """Early stopping ends the epoch's callbacks: the test scoring runs before it, so the
    stopping epoch has its test point too (and it scores that epoch's weights, not the
    best ones restored after it)."""
    X, y, Xt, yt = small_digits
    clf = CNNClassifier(early_stopping=True, patience=1, validation_fraction=0.2, lr=0.05,
                        **{**FAST, "max_epochs": 12}).fit(X, y, test_data=(Xt, yt))
    hist = clf.history_
    assert len(hist) < 12  # it stopped early
    assert hist["test_acc"].notna().all() and hist["test_loss"].notna().all()
    best = hist["valid_loss"].idxmin()
    assert clf.score(Xt, yt) == pytest.approx(hist["test_acc"].iloc[best])


@pytest.mark.parametrize("test_data, exc, match", [
    ("nope", TypeError, "test_data must be a pair"),
    ((np.zeros((3, 8, 8)), [0, 1]), ValueError, "X_test has 3 samples but y_test has 2"),
    ((np.zeros((2, 8, 8)), [0, 99]), ValueError, r"label\(s\) \[99\] not seen in y"),
])
def test_bad_test_data_fails_before_training(small_digits, test_data, exc, match):
    X, y, _, _ = small_digits
    clf = CNNClassifier(**FAST)
    with pytest.raises(exc, match=match):
        clf.fit(X, y, test_data=test_data)
    assert not hasattr(clf, "net_")
