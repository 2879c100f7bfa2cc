import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from sklearn_cnn import SiameseEmbedder
from sklearn_cnn.metrics import retrieval_scorer
from sklearn_cnn.siamese import ContrastiveLoss, PairSampler

FAST = dict(max_epochs=2, verbose=0, random_state=0)


def test_contrastive_loss_by_hand():
    x1 = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    x2 = torch.tensor([[0.3, 0.4], [0.3, 0.4], [0.1, 0.0], [1.0, 0.0]])
    same = torch.tensor([1, 0, 0, 1])
    # d^2 = 0.25, 0.25, 0.01, 0. Same pairs: d^2; different: max(0.2 - d^2, 0).
    loss = ContrastiveLoss("contrastive", margin=0.2)(x1, x2, same)
    assert loss.item() == pytest.approx((0.25 + 0.0 + 0.19 + 0.0) / 4)
    # hinge on d = 0.5, 0.5, 0.1, 0 with pos_margin 0.1, neg_margin 0.6:
    # same: max(d - 0.1, 0) -> 0.4, 0; different: max(0.6 - d, 0) -> 0.1, 0.5
    hinge = ContrastiveLoss("hinge", pos_margin=0.1, neg_margin=0.6)(x1, x2, same)
    assert hinge.item() == pytest.approx((0.4 + 0.1 + 0.5 + 0.0) / 4, abs=1e-5)


def test_pair_sampler_fraction_and_no_self_pairs():
    labels = np.repeat(np.arange(5), 20)
    sampler = PairSampler(labels, 0.2, random_state=0)
    anchors = np.arange(100)
    for _ in range(5):
        partners = sampler.sample(anchors)
        same = labels[partners] == labels[anchors]
        assert same.sum() == 20  # exactly round(0.2 * 100)
        assert not np.any(partners == anchors)  # never the same image


def test_pair_sampler_singleton_class_gets_other_class():
    labels = np.array([0, 1, 1, 1])
    partners = PairSampler(labels, 1.0, random_state=0).sample(np.array([0, 1]))
    assert partners[0] != 0 and labels[partners[0]] == 1
    assert partners[1] in (2, 3)


def test_transform_shape_norm_and_history(small_digits):
    X, y, Xt, _ = small_digits
    emb = SiameseEmbedder(embedding_dim=8, **FAST).fit(X, y)
    Z = emb.transform(Xt)
    assert Z.shape == (200, 8) and Z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, rtol=1e-5)
    assert list(emb.history_.columns[:5]) == ["epoch", "train_loss", "valid_loss", "lr", "dur"]
    assert emb.history_["valid_loss"].notna().all()
    assert emb.layer_names_[-2:] == ["embedding", "l2norm"]
    raw = SiameseEmbedder(embedding_dim=8, normalize=False, **FAST).fit(X, y).transform(Xt)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)


def test_training_lowers_the_pair_loss(small_digits):
    X, y, _, _ = small_digits
    h = SiameseEmbedder(max_epochs=4, verbose=0, random_state=0).fit(X, y).history_
    assert h["train_loss"].iloc[-1] < h["train_loss"].iloc[0]


def test_pipeline_beats_raw_pixels_on_digits(digits):
    X, y = digits.images, digits.target
    raw = cross_val_score(LinearSVC(), X.reshape(len(X), -1) / 255.0, y, cv=3).mean()
    pipe = Pipeline([("siamese", SiameseEmbedder(max_epochs=6, verbose=0, random_state=0)),
                     ("svm", LinearSVC())])
    ours = cross_val_score(pipe, X, y, cv=3).mean()
    assert ours > raw, (ours, raw)


def test_grid_search_with_retrieval_scorer(small_digits):
    X, y, _, _ = small_digits
    search = GridSearchCV(SiameseEmbedder(max_epochs=1, verbose=0, random_state=0),
                          {"margin": [0.2, 0.5]}, scoring=retrieval_scorer("precision_at_1"),
                          cv=2)
    search.fit(X[:200], y[:200])
    assert np.all((search.cv_results_["mean_test_score"] > 0.1))


@pytest.mark.parametrize("params,match", [
    (dict(loss="triplet"), "loss must be 'contrastive' or 'hinge'"),
    (dict(same_class_fraction=1.5), r"same_class_fraction must be a float in \[0, 1\]"),
    (dict(margin=-1), "margin must be a float >= 0"),
    (dict(embedding_dim=0), "embedding_dim must be a positive int"),
])
def test_bad_parameters(small_digits, params, match):
    X, y, _, _ = small_digits
    with pytest.raises(ValueError, match=match):
        SiameseEmbedder(**{**FAST, **params}).fit(X, y)


def test_fast_path_channels_last_trains_the_same_embedder(small_digits):
    X, y, Xt, _ = small_digits
    ref = SiameseEmbedder(**FAST).fit(X, y)
    fast = SiameseEmbedder(fast_path="channels_last", **FAST).fit(X, y)
    # Another memory layout, the same arithmetic: the same embedding up to rounding.
    np.testing.assert_allclose(fast.transform(Xt), ref.transform(Xt), atol=1e-3)
