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


def test_weighted_knn_bad_params():
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
