import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from sklearn_cnn import WeightedKNNClassifier
from sklearn_cnn.metrics import (mean_average_precision_at_r, precision_at_1, precision_at_k,
                                 retrieval_scorer)


def test_weighted_votes_by_hand():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    y = np.array([0, 1, 1])
    q = np.array([[1.0, 1.0]]) / np.sqrt(2)  # cosine 0.7071 to every training point
    proba = WeightedKNNClassifier(n_neighbors=3, temperature=0.1).fit(X, y).predict_proba(q)
    np.testing.assert_allclose(proba, [[1 / 3, 2 / 3]])
    q2 = np.array([[1.0, 0.5]])
    sims = np.array([1.0, 0.5, 0.5]) / np.sqrt(1.25)
    w = np.exp(sims / 0.1)
    expected = [w[0] / w.sum(), (w[1] + w[2]) / w.sum()]
    np.testing.assert_allclose(
        WeightedKNNClassifier(n_neighbors=3, temperature=0.1).fit(X, y).predict_proba(q2),
        [expected], rtol=1e-10)


def test_large_temperature_is_plain_knn(digits):
    X = digits.images.reshape(len(digits.images), -1).astype(float)
    y = digits.target
    ours = WeightedKNNClassifier(5, temperature=1e6, metric="euclidean").fit(X[:1000], y[:1000])
    plain = KNeighborsClassifier(5).fit(X[:1000], y[:1000])
    agree = (ours.predict(X[1000:]) == plain.predict(X[1000:])).mean()
    assert agree > 0.99


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_uniform_euclidean_is_kneighbors_classifier(digits, dtype):
    # the "knn" probe: the same votes as scikit-learn's 5-NN, not merely similar ones
    X = digits.images.reshape(len(digits.images), -1).astype(dtype)
    X += np.random.RandomState(0).normal(0, 1e-3, X.shape).astype(dtype)  # no distance ties
    y = digits.target
    ours = WeightedKNNClassifier(5, metric="euclidean", weights="uniform", batch_size=100)
    plain = KNeighborsClassifier(5).fit(X[:1000], y[:1000])
    proba = ours.fit(X[:1000], y[:1000]).predict_proba(X[1000:])
    np.testing.assert_array_equal(proba, plain.predict_proba(X[1000:]))
    np.testing.assert_array_equal(ours.predict(X[1000:]), plain.predict(X[1000:]))


def test_uniform_vote_ties_go_to_the_smallest_class():
    X, y = np.array([[0.0], [1.0], [3.0], [4.0]]), np.array([2, 0, 1, 1])
    knn = WeightedKNNClassifier(2, metric="euclidean", weights="uniform").fit(X, y)
    np.testing.assert_array_equal(knn.predict_proba([[0.4]]), [[0.5, 0.0, 0.5]])
    assert knn.predict([[0.4]])[0] == 0


def test_weighted_knn_bad_params():
    with pytest.raises(ValueError, match="weights must be 'exp' or 'uniform'"):
        WeightedKNNClassifier(weights="distance").fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
        WeightedKNNClassifier(batch_size=0).fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(TypeError, match="n_neighbors must be an int >= 1, got 2.5"):
        WeightedKNNClassifier(n_neighbors=2.5).fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(ValueError, match="temperature must be a float > 0"):
        WeightedKNNClassifier(temperature=0).fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(ValueError, match="metric must be"):
        WeightedKNNClassifier(metric="manhattan").fit([[0.0], [1.0]], [0, 1])


def test_retrieval_metrics_by_hand():
    E = np.array([[0.0], [0.1], [1.0], [1.2], [0.04]])
    labels = np.array([0, 0, 1, 1, 1])
    # euclidean neighbours: 0->4 (wrong), 1->4 (wrong), 2->3, 3->2, 4->0 (wrong)
    assert precision_at_1(E, labels, metric="euclidean") == pytest.approx(2 / 5)
    # k=2: 0:[4,1]->1/2, 1:[4,0]->1/2, 2:[3,1]->1/2, 3:[2,1]->1/2, 4:[0,1]->0
    assert precision_at_k(E, labels, 2, metric="euclidean") == pytest.approx(2 / 5)
    # MAP@R: R=1 for class 0, R=2 for class 1.
    # q0: [4] wrong -> 0; q1: [4] -> 0; q2: [3,1]: hit@1 -> (1/1)/2 = .5; q3: [2,1] -> .5;
    # q4: [0,1] -> 0
    assert mean_average_precision_at_r(E, labels, metric="euclidean") == pytest.approx(1 / 5)


def test_retrieval_scorer_calls_transform():
    class Identity:
        def transform(self, X):
            return X

    E = np.array([[0.0, 1.0], [0.0, 1.1], [1.0, 0.0], [1.1, 0.0]])
    assert retrieval_scorer("precision_at_1")(Identity(), E, [0, 0, 1, 1]) == 1.0
    with pytest.raises(ValueError, match="unknown retrieval metric"):
        retrieval_scorer("ndcg")


def test_lone_queries_are_dropped_from_every_metric():
    # class 2 has one sample: it retrieves nothing relevant and is left out of all three
    E = np.array([[0.0], [0.1], [1.0], [1.2], [5.0]])
    labels = np.array([0, 0, 1, 1, 2])
    for metric in (precision_at_1, mean_average_precision_at_r,
                   lambda E, y, **kw: precision_at_k(E, y, 1, **kw)):
        assert metric(E, labels, metric="euclidean") == pytest.approx(1.0)
    # it still is a neighbour the others can retrieve: 1's nearest is the lone 4 (wrong)
    E2 = np.array([[0.0], [1.0], [3.0], [3.1], [1.05]])
    assert precision_at_1(E2, labels, metric="euclidean") == pytest.approx(3 / 4)
    # k=2 over the 4 kept queries: 0:[1,4]->1/2, 1:[4,0]->1/2, 2:[3,4]->1/2, 3:[2,4]->1/2
    assert precision_at_k(E2, labels, 2, metric="euclidean") == pytest.approx(1 / 2)


def test_no_class_with_two_samples_is_an_error():
    E, labels = np.eye(3), np.array([0, 1, 2])
    for metric in (precision_at_1, precision_at_k, mean_average_precision_at_r):
        with pytest.raises(ValueError, match="at least one class with 2 samples"):
            metric(E, labels)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_ties_are_broken_by_index(metric):
    # every pair is equally similar, so each query ranks the others by index
    E = np.tile([[1.0, 0.0]], (5, 1))
    labels = np.array([0, 1, 0, 1, 0])
    # nearest: 0->1 miss, 1->0 miss, 2->0 hit, 3->0 miss, 4->0 hit
    assert precision_at_1(E, labels, metric=metric) == pytest.approx(2 / 5)
    # first two: 0:[1,2] 1/2, 1:[0,2] 0, 2:[0,1] 1/2, 3:[0,1] 1/2, 4:[0,1] 1/2
    assert precision_at_k(E, labels, 2, metric=metric) == pytest.approx(2 / 5)
    # R = 2 (class 0), 1 (class 1): 0:[1,2] -> (1/2)/2, 1:[0] -> 0, 2:[0,1] -> 1/2,
    # 3:[0] -> 0, 4:[0,1] -> 1/2
    assert mean_average_precision_at_r(E, labels, metric=metric) == pytest.approx(1.25 / 5)


def test_precision_at_k_checks_k():
    E, labels = np.eye(4), np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        precision_at_k(E, labels, 0)
    with pytest.raises(TypeError, match="k must be an int >= 1"):
        precision_at_k(E, labels, 1.5)
