import numpy as np
import pytest
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

import sklearn_cnn.features._extract as extract_module
from sklearn_cnn import CNNClassifier, LayerFeatures
from sklearn_cnn.features._extract import TRANSFORM_CACHE

CNN = CNNClassifier("cifar_3x3", max_epochs=2, verbose=0, random_state=0)


@pytest.fixture(scope="module")
def fitted_cnn(small_digits):
    X, y, _, _ = small_digits
    from sklearn.base import clone

    return clone(CNN).fit(X, y)


def test_layer_outputs_shapes_and_names(small_digits, fitted_cnn):
    X, y, Xt, _ = small_digits
    lf = LayerFeatures(fitted_cnn, ["flatten", "fc1"], refit=False).fit(X, y)
    F = lf.transform(Xt)
    assert F.dtype == np.float32 and F.shape == (200, 256 + 64)
    assert lf.feature_sizes_ == [256, 64]
    names = lf.get_feature_names_out()
    assert names[0] == "flatten_0" and names[256] == "fc1_0" and len(names) == 320
    # concatenation keeps each layer's own activations
    fc1 = LayerFeatures(fitted_cnn, "fc1", refit=False).fit(X, y).transform(Xt)
    np.testing.assert_allclose(F[:, 256:], fc1, rtol=1e-6)
    assert (fc1 >= 0).all()  # fc1 output is after its ReLU


def test_refit_false_uses_the_fitted_net_as_is(small_digits, fitted_cnn):
    X, y, Xt, _ = small_digits
    lf = LayerFeatures(fitted_cnn, "fc1", refit=False).fit(X[:10], y[:10])
    assert lf.estimator_ is fitted_cnn
    frozen = LayerFeatures(FrozenEstimator(fitted_cnn), "fc1").fit(X[:10], y[:10])
    np.testing.assert_array_equal(frozen.transform(Xt), lf.transform(Xt))


@pytest.mark.parametrize("pooling,n", [(None, 64 * 2 * 2), ("avg", 64), ("max", 64),
                                       (1, 64), (3, 64 * 9)])
def test_pooling_conv_maps(small_digits, fitted_cnn, pooling, n):
    X, y, Xt, _ = small_digits
    lf = LayerFeatures(fitted_cnn, "conv3", pooling=pooling, refit=False).fit(X, y)
    assert lf.transform(Xt[:5]).shape == (5, n) and lf.n_features_out_ == n


def test_avg_pooling_is_the_mean_of_the_map(small_digits, fitted_cnn):
    X, y, Xt, _ = small_digits
    full = LayerFeatures(fitted_cnn, "conv3", refit=False).fit(X, y).transform(Xt[:5])
    avg = LayerFeatures(fitted_cnn, "conv3", pooling="avg", refit=False).fit(X, y).transform(
        Xt[:5])
    np.testing.assert_allclose(full.reshape(5, 64, 4).mean(axis=2), avg, rtol=1e-5)


def test_unknown_layer_lists_valid_names(small_digits, fitted_cnn):
    X, y, _, _ = small_digits
    with pytest.raises(ValueError, match=r"unknown layers 'fc9'; valid layer names: \['input', "
                                         r"'conv1'"):
        LayerFeatures(fitted_cnn, "fc9", refit=False).fit(X, y)
    assert "fc2" in fitted_cnn.layer_names_
    with pytest.raises(ValueError, match="pooling must be None"):
        LayerFeatures(fitted_cnn, "fc1", pooling="median", refit=False).fit(X, y)


def test_stops_at_the_deepest_requested_layer(small_digits, fitted_cnn):
    X, y, Xt, _ = small_digits
    calls = []
    hooks = [getattr(fitted_cnn.module_, n).register_forward_hook(
        lambda m, i, o, n=n: calls.append(n)) for n in ("fc1", "fc2", "logits")]
    try:
        LayerFeatures(fitted_cnn, "fc1", refit=False).fit(X, y).transform(Xt[:3] // 2)
    finally:
        for h in hooks:
            h.remove()
    assert "fc1" in calls and "fc2" not in calls and "logits" not in calls


def test_pandas_output(small_digits, fitted_cnn):
    X, y, Xt, _ = small_digits
    lf = LayerFeatures(fitted_cnn, "fc1", refit=False).set_output(transform="pandas")
    df = lf.fit(X, y).transform(Xt)
    assert list(df.columns[:2]) == ["fc1_0", "fc1_1"] and df.shape == (200, 64)


def test_pipeline_in_cross_val_score(small_digits):
    X, y, _, _ = small_digits
    pipe = Pipeline([("features", LayerFeatures(CNN, "fc1")), ("svm", LinearSVC())])
    scores = cross_val_score(pipe, X[:300], y[:300], cv=2)
    assert scores.shape == (2,) and scores.mean() > 0.5


def test_grid_search_runs_the_cnn_once_per_fold(small_digits, tmp_path, monkeypatch):
    X, y, _, _ = small_digits
    X, y = X[:300], y[:300]
    forward, fits = [], []
    real_extract = extract_module.extract_features
    real_fit = CNNClassifier.fit

    def counting_extract(module, images, *args, **kwargs):
        forward.append(len(images))
        return real_extract(module, images, *args, **kwargs)

    def counting_fit(self, X, y):
        fits.append(len(X))
        return real_fit(self, X, y)

    monkeypatch.setattr(extract_module, "extract_features", counting_extract)
    monkeypatch.setattr(CNNClassifier, "fit", counting_fit)
    TRANSFORM_CACHE.clear()
    pipe = Pipeline([("features", LayerFeatures(CNN, "fc1")), ("svm", LinearSVC())],
                    memory=str(tmp_path))
    search = GridSearchCV(pipe, {"svm__C": [0.01, 0.1, 1.0, 10.0]}, cv=3)
    search.fit(X, y)
    # 3 folds + the final refit: one CNN training each, not one per candidate (4 x 3).
    assert len(fits) == 4
    # Per fold one pass over its training part and one over its test part; the refit adds
    # one pass over all 300 images. 12 candidate-fold fits would otherwise give 24 + 1.
    assert len(forward) == 3 * 2 + 1
    assert sorted(forward) == [100, 100, 100, 200, 200, 200, 300]
    assert search.best_params_["svm__C"] in (0.01, 0.1, 1.0, 10.0)


def test_refit_false_features_follow_a_refit_of_the_wrapped_cnn(small_digits):
    # The memo was keyed on LayerFeatures.fit, so it returned the old network's features.
    X, y, Xt, _ = small_digits
    cnn = CNNClassifier("cifar_3x3", max_epochs=1, verbose=0, random_state=0).fit(X, y)
    lf = LayerFeatures(cnn, "fc1", refit=False).fit(X, y)
    before = lf.transform(Xt)
    cnn.set_params(random_state=1, lr=3e-3).fit(X, y)
    after = lf.transform(Xt)
    expected = LayerFeatures(cnn, "fc1", refit=False).fit(X, y).transform(Xt)
    assert np.abs(after - before).max() > 1e-3
    np.testing.assert_array_equal(after, expected)
    # weights changed in place (as further training does) change the features too
    import torch

    with torch.no_grad():
        cnn.module_.fc1.weight.mul_(2)
    assert np.abs(lf.transform(Xt) - after).max() > 1e-3
    # a refit with another network: the fitted layers no longer exist or have other sizes
    flat = LayerFeatures(cnn, "flatten", refit=False).fit(X, y)
    conv = LayerFeatures(cnn, "conv1", refit=False).fit(X, y)
    cnn.set_params(architecture="default").fit(X, y)
    for stale in (flat, conv):
        with pytest.raises(ValueError, match="was refit with another network.*call fit again"):
            stale.transform(Xt)


def test_layer_is_the_deprecated_name_of_layers(small_digits, fitted_cnn):
    X, y, Xt, _ = small_digits
    with pytest.warns(FutureWarning, match=r"LayerFeatures\(layer=\.\.\.\) is deprecated"):
        old = LayerFeatures(fitted_cnn, layer="fc1", refit=False).fit(X, y)
    new = LayerFeatures(fitted_cnn, layers="fc1", refit=False).fit(X, y)
    assert old.layers_ == new.layers_ == ["fc1"]
    np.testing.assert_array_equal(old.transform(Xt[:5]), new.transform(Xt[:5]))
