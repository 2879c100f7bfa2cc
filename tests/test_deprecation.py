"""Every name renamed in 0.2 warns the same way, at the user's line (sklearn_cnn._deprecation)."""

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline

from sklearn_cnn import CNNClassifier, CifarResNetFeatures, SiameseEmbedder, probe_layers
from sklearn_cnn.architectures import build_network, conv, resolve_architecture
from sklearn_cnn.experiments.pretrained import canonical_backbone
from sklearn_cnn.features import VGGFeatures
from sklearn_cnn.features import cifar_resnet

MESSAGE = "is deprecated since 0.2 and will be removed in 0.3; use "


@pytest.fixture(scope="module")
def digits8(digits):
    return digits.images[:60], digits.target[:60]


def _cases(digits8):  # report_networks' max_epochs: tests/test_cli.py (it trains)
    X, y = digits8
    rgb = np.random.RandomState(0).rand(4, 8, 8, 3).astype(np.float32)
    tiny = dict(max_epochs=1, batch_size=32, verbose=0, random_state=0)
    return {
        "layer spec helper keyword": lambda: conv(4, kernel=5),
        "layer spec dict key": lambda: resolve_architecture([{"type": "maxpool", "size": 3}]),
        "available_layers on the class": lambda: VGGFeatures.available_layers("vgg11"),
        "module constant": lambda: cifar_resnet.CIFAR_MEAN,
        "forward_features": lambda: build_network(
            resolve_architecture("cifar_3x3"), (3, 8, 8), 10).forward_features(
                __import__("torch").zeros(1, 3, 8, 8), ["fc1"]),
        "layer_module": lambda: build_network(
            resolve_architecture("cifar_3x3"), (3, 8, 8), 10).layer_module("fc1"),
        "summary input_shape": lambda: CNNClassifier("cifar_3x3").summary(input_shape=(3, 8, 8)),
        "experiment backbone name": lambda: canonical_backbone("resnet20"),
        "transformer layer= (fit)": lambda: CifarResNetFeatures(
            8, layer="layer1", pooling="avg", random_state=0).fit(rgb),
        "transformer layer= in a Pipeline": lambda: Pipeline(
            [("f", CifarResNetFeatures(8, layer="layer1", pooling="avg", random_state=0))]
        ).fit(rgb),
        "transformer layer= in cross_val_score": lambda: cross_val_score(
            make_pipeline(CifarResNetFeatures(8, layer="layer1", pooling="avg", random_state=0),
                          LogisticRegression(max_iter=50)),
            np.concatenate([rgb, rgb]), np.array([0, 1] * 4), cv=2, error_score="raise"),
        "siamese normalize (fit)": lambda: SiameseEmbedder(
            embedding_dim=4, normalize=False, **tiny).fit(X, y),
        "probe_layers train_score_samples": lambda: probe_layers(
            CNNClassifier("cifar_3x3", **tiny), X, y, X[:20], y[:20], layers=["fc1"],
            probes="logistic", train_score_samples=30, verbose=0),
    }


CASES = ["layer spec helper keyword", "layer spec dict key", "available_layers on the class",
         "module constant", "forward_features", "layer_module", "summary input_shape",
         "experiment backbone name", "transformer layer= (fit)",
         "transformer layer= in a Pipeline", "transformer layer= in cross_val_score",
         "siamese normalize (fit)",
         "probe_layers train_score_samples"]


@pytest.mark.parametrize("case", CASES)
def test_old_names_warn_once_with_one_message_at_the_callers_line(case, digits8):
    """One FutureWarning, the one message, and it names this file (the user's code) as
    its place: not a line inside sklearn_cnn, scikit-learn or skorch."""
    run = _cases(digits8)[case]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run()
    future = [w for w in caught if issubclass(w.category, FutureWarning)]
    fits = 2 if "cross_val_score" in case else 1  # one warning per fit (cv=2)
    assert len(future) == fits, [str(w.message) for w in future]
    for w in future:
        assert MESSAGE in str(w.message)
        assert w.filename == __file__, (w.filename, w.lineno)

