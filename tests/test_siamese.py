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


def test_report_000_and_hadsell_formulas_differ_as_cited():
    # d = 0.5 (d^2 = 0.25) for both pairs; margin 1
    x1, x2 = torch.zeros(2, 2), torch.tensor([[0.3, 0.4], [0.3, 0.4]])
    same, other = torch.tensor([1]), torch.tensor([0])
    report = ContrastiveLoss("contrastive", margin=1.0)
    hadsell = ContrastiveLoss("hadsell", margin=1.0)
    # report 000: Y d^2 + (1 - Y) max(m - d^2, 0)
    assert report(x1[:1], x2[:1], same).item() == pytest.approx(0.25)
    assert report(x1[:1], x2[:1], other).item() == pytest.approx(0.75)
    # Hadsell et al. 2006: Y d^2 / 2 + (1 - Y) max(m - d, 0)^2 / 2
    assert hadsell(x1[:1], x2[:1], same).item() == pytest.approx(0.125)
    assert hadsell(x1[:1], x2[:1], other).item() == pytest.approx(0.125)
    # beyond the margin a different-class pair costs nothing; same-class at d = 0 neither
    far = torch.tensor([[3.0, 4.0]])  # d = 5
    assert hadsell(torch.zeros(1, 2), far, other).item() == 0.0
    assert hadsell(far, far, same).item() == 0.0
    # the mean over pairs
    both = hadsell(x1, x2, torch.tensor([1, 0])).item()
    assert both == pytest.approx((0.125 + 0.125) / 2)


def _pml_contrastive_pair_terms(e1, e2, same, pos_margin=0.0, neg_margin=1.0):
    """pytorch-metric-learning's ContrastiveLoss per pair, written out by hand:
    LpDistance(p=2, normalize_embeddings=True), relu(d - pos_margin) for positive
    pairs and relu(neg_margin - d) for negative ones."""
    e1 = e1 / np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = e2 / np.linalg.norm(e2, axis=1, keepdims=True)
    d = np.linalg.norm(e1 - e2, axis=1)
    return np.where(same, np.maximum(d - pos_margin, 0), np.maximum(neg_margin - d, 0))


def test_hinge_equals_pml_pair_terms_on_normalised_embeddings():
    rng = np.random.RandomState(0)
    e1, e2 = rng.randn(6, 4), rng.randn(6, 4)
    same = np.array([1, 0, 1, 0, 0, 1], dtype=bool)
    n1 = torch.nn.functional.normalize(torch.from_numpy(e1), dim=1)
    n2 = torch.nn.functional.normalize(torch.from_numpy(e2), dim=1)
    for pos_margin, neg_margin in ((0.0, 1.0), (0.2, 1.5)):
        expected = _pml_contrastive_pair_terms(e1, e2, same, pos_margin, neg_margin)
        loss = ContrastiveLoss("hinge", pos_margin=pos_margin, neg_margin=neg_margin)
        ours = [loss(n1[i:i + 1], n2[i:i + 1], torch.from_numpy(same[i:i + 1])).item()
                for i in range(6)]
        np.testing.assert_allclose(ours, expected, atol=1e-6)
        # the batch loss is the plain mean over pairs (PML reduces differently)
        batch = loss(n1, n2, torch.from_numpy(same)).item()
        assert batch == pytest.approx(expected.mean(), abs=1e-6)


def test_contrastive_loss_rejects_unknown_kind():
    with pytest.raises(ValueError, match="kind must be one of"):
        ContrastiveLoss("triplet")


def test_embedder_trains_with_hadsell_loss(small_digits):
    X, y, Xt, yt = small_digits
    emb = SiameseEmbedder(loss="hadsell", margin=1.0, embedding_dim=8, **FAST).fit(X, y)
    assert np.isfinite(emb.history_["train_loss"]).all()
    assert np.isfinite(emb.pair_loss(Xt, yt))


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
    raw = SiameseEmbedder(embedding_dim=8, normalize_embeddings=False, **FAST).fit(X, y)
    assert not np.allclose(np.linalg.norm(raw.transform(Xt), axis=1), 1.0)
    assert raw.layer_names_[-1] == "embedding"


def test_old_name_normalize_still_works_with_a_future_warning(small_digits, tmp_path):
    X, y, Xt, _ = small_digits
    with pytest.warns(FutureWarning, match="use normalize_embeddings"):
        old = SiameseEmbedder(embedding_dim=8, normalize=False, **FAST).fit(X, y)
    new = SiameseEmbedder(embedding_dim=8, normalize_embeddings=False, **FAST).fit(X, y)
    np.testing.assert_array_equal(old.transform(Xt), new.transform(Xt))


def test_checkpoint_written_under_the_old_name_is_the_same_run(small_digits, tmp_path):
    import torch

    X, y, _, _ = small_digits
    SiameseEmbedder(embedding_dim=8, checkpoint_dir=tmp_path, **FAST).fit(X, y)
    path = tmp_path / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    params = dict(state["params"])  # as a release before the rename wrote it
    params["normalize"] = params.pop("normalize_embeddings")
    torch.save(dict(state, params=params), path)
    again = SiameseEmbedder(embedding_dim=8, checkpoint_dir=tmp_path, **FAST).fit(X, y)
    assert again.net_.resumed_at_epoch_ == 2  # loaded as the finished run, not retrained
    params["normalize"] = "False"
    torch.save(dict(state, params=params), path)
    with pytest.raises(ValueError, match="normalize_embeddings=False there, True now"):
        SiameseEmbedder(embedding_dim=8, checkpoint_dir=tmp_path, **FAST).fit(X, y)


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
    # chance is 0.1 for 10 classes; 1 epoch on 100 digits per fold reaches ~0.8
    assert np.all(search.cv_results_["mean_test_score"] > 0.6)


@pytest.mark.parametrize("params,match", [
    (dict(loss="triplet"), "'loss' parameter of SiameseEmbedder must be a str among"),
    (dict(same_class_fraction=1.5), r"'same_class_fraction' parameter of SiameseEmbedder must be a float in the range \[0.0, 1.0\]"),
    (dict(margin=-1), r"'margin' parameter of SiameseEmbedder must be a float in the range \[0.0, inf\)"),
    (dict(embedding_dim=0), r"'embedding_dim' parameter of SiameseEmbedder must be an int in the range \[1, inf\)"),
])
def test_bad_parameters(small_digits, params, match):
    X, y, _, _ = small_digits
    with pytest.raises(ValueError, match=match):
        SiameseEmbedder(**{**FAST, **params}).fit(X, y)


def test_fast_path_channels_last_trains_the_same_embedder(small_digits):
    from sklearn_cnn.metrics import precision_at_1

    X, y, Xt, yt = small_digits
    # Another memory layout, the same arithmetic: the same network computes the same
    # embedding up to float rounding ...
    untrained = {fp: SiameseEmbedder(fast_path=fp, **{**FAST, "max_epochs": 0}).fit(X, y)
                 for fp in (None, "channels_last")}
    np.testing.assert_allclose(untrained["channels_last"].transform(Xt),
                               untrained[None].transform(Xt), atol=1e-5)
    # ... and training, where the rounding differences grow step by step (how much depends
    # on the convolution kernels oneDNN picks, which the full test suite's earlier tests
    # were seen to change), reaches the same retrieval quality.
    ref = SiameseEmbedder(**FAST).fit(X, y)
    fast = SiameseEmbedder(fast_path="channels_last", **FAST).fit(X, y)
    assert abs(precision_at_1(fast.transform(Xt), yt) - precision_at_1(ref.transform(Xt), yt)) < 0.1
