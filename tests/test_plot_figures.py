"""Figures that look inside trained networks: filters, activations, weights, predictions.

The assertions check what is drawn (axes, images, titles, labels, legends),
not pixels; every figure is also rendered to PNG through ``save_figure``.
"""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from sklearn_cnn import CNNClassifier, plot
from sklearn_cnn.architectures import conv, flatten
from sklearn_cnn.plot import RecordWeightHistograms

DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture(scope="module")
def mnist_clf(small_digits):
    """mnist_5x5 (conv 4/8/16 5x5, fc 64) fitted for 2 epochs, recording conv1 histograms."""
    X, y, _, _ = small_digits
    clf = CNNClassifier("mnist_5x5", max_epochs=2, verbose=0, random_state=0,
                        callbacks=[RecordWeightHistograms(["conv1", "fc1"], bins=20)])
    return clf.fit(X, y)


@pytest.fixture(scope="module")
def rgb_clf():
    """A one-conv network on 60 random 8x8 RGB images: conv1 has 3 input channels."""
    rng = np.random.RandomState(0)
    X = rng.randint(0, 256, (60, 8, 8, 3)).astype(np.uint8)
    y = np.array(["cat", "dog", "frog"])[np.arange(60) % 3]
    clf = CNNClassifier([conv(8, 3), flatten()], max_epochs=1, verbose=0, random_state=0)
    return clf.fit(X, y), X, y


def _render(fig, tmp_path, name):
    path = plot.save_figure(fig, tmp_path / f"{name}.png")
    assert path.stat().st_size > 1000
    return fig


def _image_axes(fig):
    return [ax for ax in fig.axes if ax.get_images()]


# -- filters -------------------------------------------------------------------------------

def test_filters_grayscale_tiles(mnist_clf, tmp_path):
    fig = _render(plot.filters(mnist_clf, "conv1"), tmp_path, "f1")
    axes = _image_axes(fig)
    assert len(fig.axes) == len(axes) == 4  # conv1 of mnist_5x5 has 4 filters, no empty axes
    assert fig.get_suptitle() == "conv1 filters (4 of 4)"
    assert [ax.get_title() for ax in axes] == ["#0", "#1", "#2", "#3"]
    for ax in axes:
        (im,) = ax.get_images()
        assert im.get_array().shape == (5, 5)
        assert im.get_cmap().name == "gray"


def test_filters_max_filters_and_channel_mean(mnist_clf, tmp_path):
    fig = _render(plot.filters(mnist_clf, "conv3", max_filters=10, channel="mean"), tmp_path,
                  "f3")
    assert len(_image_axes(fig)) == 10
    assert fig.get_suptitle() == "conv3 filters (10 of 16)"
    assert "mean over input channels" in fig.get_supxlabel()


def test_filters_rgb_tiles(rgb_clf, tmp_path):
    clf, _, _ = rgb_clf
    fig = _render(plot.filters(clf), tmp_path, "rgb")
    axes = _image_axes(fig)
    assert len(axes) == 8
    assert fig.get_suptitle() == "conv1 filters (8 of 8)"
    for ax in axes:
        tile = np.asarray(ax.get_images()[0].get_array())
        assert tile.shape == (3, 3, 3)  # RGB tile
        assert tile.min() >= 0 and tile.max() <= 1


def test_filters_bad_input(mnist_clf):
    with pytest.raises(ValueError, match=r"valid conv layer names: \['conv1', 'conv2', 'conv3'\]"):
        plot.filters(mnist_clf, "fc1")
    with pytest.raises(ValueError, match="max_filters"):
        plot.filters(mnist_clf, max_filters=0)
    with pytest.raises(ValueError, match="channel"):
        plot.filters(mnist_clf, "conv2", channel=9)
    with pytest.raises(TypeError, match="estimator"):
        plot.filters(object())
    with pytest.raises(NotFittedError):
        plot.filters(CNNClassifier())


def test_filters_of_a_feature_transformer():
    from sklearn_cnn.features.cifar_resnet import CifarResNetFeatures

    X = np.random.RandomState(0).randint(0, 256, (2, 8, 8, 3)).astype(np.uint8)
    fx = CifarResNetFeatures(depth=8, layers="conv1", random_state=0).fit(X)
    fig = plot.filters(fx, "conv1", max_filters=4)
    assert fig.get_suptitle() == "conv1 filters (4 of 16)"
    assert np.asarray(_image_axes(fig)[0].get_images()[0].get_array()).shape == (3, 3, 3)
    fig = plot.activations(fx, X[0], layers=["conv1", "layer1"], max_maps=2)
    assert [ax.get_title() for ax in _image_axes(fig)] == [
        "input", "conv1 #0", "conv1 #1", "layer1 #0", "layer1 #1"]


# -- activations ---------------------------------------------------------------------------

def test_activations_rows(mnist_clf, small_digits, tmp_path):
    _, _, X_test, _ = small_digits
    fig = _render(plot.activations(mnist_clf, X_test[0], layers=["conv1", "conv2", "logits"],
                                   max_maps=6), tmp_path, "act")
    axes = _image_axes(fig)
    titles = [ax.get_title() for ax in axes]
    assert titles == ["input", "conv1 #0", "conv1 #1", "conv1 #2", "conv1 #3",
                      "conv2 #0", "conv2 #1", "conv2 #2", "conv2 #3", "conv2 #4", "conv2 #5",
                      "logits"]
    assert axes[0].get_images()[0].get_array().shape == (8, 8)  # the input image itself
    assert axes[1].get_images()[0].get_array().shape == (8, 8)  # conv1 maps, 'same' padding
    assert axes[5].get_images()[0].get_array().shape == (4, 4)  # conv2 after pool1
    # one colour scale per layer
    assert len({ax.get_images()[0].get_clim() for ax in axes[5:11]}) == 1
    assert [t.get_text() for t in axes[-1].get_xticklabels()] == [str(c) for c in range(10)]
    colorbars = [ax for ax in fig.axes if ax.get_ylabel() == "activation"]
    assert len(colorbars) == 3
    assert fig.get_suptitle() == "activations (conv1, conv2, logits)"


@pytest.mark.parametrize("layout", ["hw", "hwc", "1hw", "1hwc", "flat"])
def test_activations_accepts_image_layouts(mnist_clf, small_digits, layout):
    _, _, X_test, _ = small_digits
    base = X_test[0].reshape(8, 8)  # uint8
    img = {"hw": base, "hwc": base[:, :, None], "1hw": base[None], "1hwc": base[None, :, :, None],
           "flat": base.ravel()}[layout]
    fig = plot.activations(mnist_clf, img, layers="conv1", max_maps=2)
    axes = _image_axes(fig)
    assert len(axes) == 3
    np.testing.assert_allclose(axes[0].get_images()[0].get_array(), base / 255, rtol=1e-6)


def test_activations_bad_input(mnist_clf, small_digits):
    _, _, X_test, _ = small_digits
    with pytest.raises(ValueError, match="unknown layers 'conv9'; valid layer names"):
        plot.activations(mnist_clf, X_test[0], layers=["conv9"])
    with pytest.raises(ValueError, match="image must be one image"):
        plot.activations(mnist_clf, X_test[:2])
    with pytest.raises(ValueError, match="max_maps"):
        plot.activations(mnist_clf, X_test[0], max_maps=-1)
    with pytest.raises(ValueError, match="image has images of 4x4"):
        plot.activations(mnist_clf, np.zeros((4, 4)))


def test_activations_rgb_input(rgb_clf):
    clf, X, _ = rgb_clf
    fig = plot.activations(clf, X[0], layers=["conv1", "flatten"])
    axes = _image_axes(fig)
    assert axes[0].get_images()[0].get_array().shape == (8, 8, 3)
    assert len(axes) == 1 + 8 + 1
    assert axes[-1].get_title() == "flatten" and axes[-1].get_xlabel() == "unit"


# -- weight histograms ---------------------------------------------------------------------

def test_weight_histograms_default_layers(mnist_clf, tmp_path):
    fig = _render(plot.weight_histograms(mnist_clf, bins=20), tmp_path, "wh")
    assert [ax.get_title() for ax in fig.axes] == ["conv1", "conv2", "conv3", "fc1", "logits"]
    for ax in fig.axes:
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["weights", "biases"]
        assert len(ax.patches) == 40  # 20 bars each
        assert ax.get_xlabel() == "value" and ax.get_ylabel() == "count"
    assert fig.get_suptitle() == "weight histograms"


def test_weight_histograms_chosen_layers_and_errors(mnist_clf):
    fig = plot.weight_histograms(mnist_clf, layers="fc1", density=True)
    assert [ax.get_title() for ax in fig.axes] == ["fc1"]
    assert fig.axes[0].get_ylabel() == "density"
    with pytest.raises(ValueError, match="'pool1' has no parameters"):
        plot.weight_histograms(mnist_clf, layers=["pool1"])
    with pytest.raises(ValueError, match="unknown layers"):
        plot.weight_histograms(mnist_clf, layers=["nope"])
    with pytest.raises(ValueError, match="bins"):
        plot.weight_histograms(mnist_clf, bins=0)


def test_record_weight_histograms_in_history(mnist_clf):
    hist = mnist_clf.history_
    assert len(hist) == 2
    for layer in ("conv1", "fc1"):
        for counts, edges in hist[f"hist_{layer}"]:
            assert len(counts) == 20 and len(edges) == 21
    n_conv1 = mnist_clf.module_.conv1.weight.numel()
    assert sum(hist["hist_conv1"].iloc[-1][0]) == n_conv1
    # the last record is the trained weights' histogram
    counts, _ = np.histogram(mnist_clf.module_.conv1.weight.detach().numpy(), bins=20)
    assert hist["hist_conv1"].iloc[-1][0] == counts.tolist()


@pytest.mark.parametrize("kind", ["image", "lines"])
def test_weight_histogram_progression(mnist_clf, tmp_path, kind):
    fig = _render(plot.weight_histogram_progression(mnist_clf, "conv1", kind=kind), tmp_path,
                  kind)
    ax = fig.axes[0]
    assert ax.get_title() == "conv1 weights during training"
    if kind == "image":
        assert len(ax.collections) == 2  # one column per epoch
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("epoch", "weight value")
        assert fig.axes[1].get_ylabel() == "count"  # colorbar
    else:
        assert [l.get_label() for l in ax.get_lines()] == ["epoch 1", "epoch 2"]
        assert fig.axes[1].get_ylabel() == "epoch"
    # the same records from a skorch History and from the DataFrame
    for source in (mnist_clf.net_.history, mnist_clf.history_):
        again = plot.weight_histogram_progression(source, "conv1", kind=kind)
        assert len(again.axes[0].collections if kind == "image" else again.axes[0].get_lines()) \
            == 2


def test_weight_histogram_progression_errors(mnist_clf):
    with pytest.raises(ValueError, match=r"recorded layers: \['conv1', 'fc1'\]"):
        plot.weight_histogram_progression(mnist_clf, "conv2")
    with pytest.raises(ValueError, match="kind"):
        plot.weight_histogram_progression(mnist_clf, "conv1", kind="ridge")
    with pytest.raises(TypeError, match="history"):
        plot.weight_histogram_progression(42, "conv1")


def test_record_weight_histograms_every_and_errors(small_digits):
    X, y, _, _ = small_digits
    clf = CNNClassifier([conv(2, 3), flatten()], max_epochs=3, verbose=0, random_state=0,
                        validation_fraction=None,
                        callbacks=[("hists", RecordWeightHistograms("conv1", every=2))])
    hist = clf.fit(X[:60], y[:60]).history_
    assert hist["hist_conv1"].notna().tolist() == [True, False, True]
    fig = plot.weight_histogram_progression(clf, "conv1")
    assert len(fig.axes[0].collections) == 2
    bad = CNNClassifier([conv(2, 3), flatten()], max_epochs=1, verbose=0,
                        callbacks=[RecordWeightHistograms(["conv7"])])
    with pytest.raises(ValueError, match="unknown layer 'conv7'"):
        bad.fit(X[:60], y[:60])
    with pytest.raises(ValueError, match="bins"):
        RecordWeightHistograms("conv1", bins=0).initialize()


# -- examples ------------------------------------------------------------------------------

def test_examples_correct_and_wrong(mnist_clf, small_digits, tmp_path):
    _, _, X_test, y_test = small_digits
    pred = mnist_clf.predict(X_test)
    n_right = int((pred == y_test).sum())
    assert 5 <= n_right <= len(y_test) - 5  # both kinds exist after 2 epochs
    fig = _render(plot.examples(mnist_clf, X_test, y_test, correct=True,
                                target_names=DIGIT_NAMES), tmp_path, "ex")
    axes = _image_axes(fig)
    assert len(axes) == 5
    for ax in axes:
        true, predicted = ax.get_title().removeprefix("true: ").split(" / pred: ")
        assert true == predicted and true in DIGIT_NAMES
        assert ax.get_images()[0].get_cmap().name == "gray"
    assert fig.get_suptitle() == f"5 correctly classified images ({n_right} of 200)"
    fig = plot.examples(mnist_clf, X_test, y_test, correct=False, n=3)
    titles = [ax.get_title() for ax in _image_axes(fig)]
    assert len(titles) == 3
    assert all(t.split(" / pred: ")[0] != "true: " + t.split(" / pred: ")[1] for t in titles)


def test_examples_fewer_than_requested(mnist_clf, small_digits):
    _, _, X_test, y_test = small_digits
    pred = mnist_clf.predict(X_test)
    wrong = np.flatnonzero(pred != y_test)[:2]
    right = np.flatnonzero(pred == y_test)[:10]
    idx = np.concatenate([wrong, right])
    fig = plot.examples(mnist_clf, X_test[idx], y_test[idx], correct=False, n=5)
    assert len(_image_axes(fig)) == 2
    assert fig.get_suptitle() == "only 2 misclassified images (5 requested, 12 images)"
    fig = plot.examples(mnist_clf, X_test[right], y_test[right], correct=False)
    assert not _image_axes(fig)
    assert fig.get_suptitle().startswith("only 0 misclassified images")


def test_examples_rgb_string_labels(rgb_clf):
    clf, X, y = rgb_clf
    fig = plot.examples(clf, X, y, correct=True, n=2)
    for ax in _image_axes(fig):
        assert ax.get_images()[0].get_array().shape == (8, 8, 3)
        assert ax.get_title().split(" / ")[0].removeprefix("true: ") in ("cat", "dog", "frog")


def test_examples_bad_input(mnist_clf, small_digits):
    _, _, X_test, y_test = small_digits
    with pytest.raises(ValueError, match="n must be"):
        plot.examples(mnist_clf, X_test, y_test, n=0)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        plot.examples(mnist_clf, X_test, y_test[:5])
    with pytest.raises(TypeError, match="correct"):
        plot.examples(mnist_clf, X_test, y_test, correct="yes")
    with pytest.raises(TypeError, match="estimator"):
        plot.examples(None, X_test, y_test)
    with pytest.raises(ValueError, match="target_names has 2 names"):
        plot.examples(mnist_clf, X_test, y_test, target_names=["a", "b"])


# -- confusion matrix ----------------------------------------------------------------------

def test_confusion_matrix_from_estimator(mnist_clf, small_digits, tmp_path):
    _, _, X_test, y_test = small_digits
    fig = _render(plot.confusion_matrix(mnist_clf, X_test, y_test, target_names=DIGIT_NAMES),
                  tmp_path, "cm")
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted", "true")
    assert [t.get_text() for t in ax.get_xticklabels()] == DIGIT_NAMES
    assert [t.get_text() for t in ax.get_yticklabels()] == DIGIT_NAMES
    cells = np.array([int(t.get_text()) for t in ax.texts]).reshape(10, 10)
    from sklearn.metrics import confusion_matrix

    np.testing.assert_array_equal(cells, confusion_matrix(y_test, mnist_clf.predict(X_test)))
    assert ax.get_title() == "confusion matrix"
    assert fig.axes[1].get_ylabel() == "count"


def test_confusion_matrix_from_labels_normalized():
    fig = plot.confusion_matrix(["cat", "dog", "dog", "cat"], ["cat", "dog", "cat", "cat"],
                                normalize="true")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog"]
    assert [t.get_text() for t in ax.texts] == ["1.00", "0.00", "0.50", "0.50"]
    assert ax.get_title() == "confusion matrix (rows sum to 1)"
    assert fig.axes[1].get_ylabel() == "rate"


def test_confusion_matrix_bad_input(mnist_clf, small_digits):
    _, _, X_test, y_test = small_digits
    with pytest.raises(ValueError, match="y .the true labels. is required"):
        plot.confusion_matrix(mnist_clf, X_test)
    with pytest.raises(ValueError, match="y must be None"):
        plot.confusion_matrix([0, 1], [0, 1], [0, 1])
    with pytest.raises(ValueError, match="normalize"):
        plot.confusion_matrix([0, 1], [0, 1], normalize="rows")
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        plot.confusion_matrix([0, 1, 1], [0, 1])
    with pytest.raises(TypeError, match="target_names"):
        plot.confusion_matrix([0, 1], [0, 1], target_names="ab")
