"""WeightedKNNClassifier: the kNN evaluation protocol of self-supervised learning."""

import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["WeightedKNNClassifier"]


class WeightedKNNClassifier(ClassifierMixin, BaseEstimator):
    """k nearest neighbours voting with weights ``exp(similarity / temperature)``.

    The protocol of Wu et al. (2018) and DINO's ``eval_knn``: cosine similarity
    to the training features, the ``n_neighbors`` most similar vote for their
    class with weight ``exp(sim / T)``; ``predict_proba`` is the normalised vote.

    Parameters
    ----------
    n_neighbors : int, default=20
    temperature : float, default=0.07
    metric : {"cosine", "euclidean"}, default="cosine"
        "euclidean" uses the negative distance as the similarity.
    batch_size : int, default=1024
        Query rows per similarity block (bounds memory).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> WeightedKNNClassifier(n_neighbors=2).fit(X, [0, 0, 1, 1]).predict([[1.0, 0.2]])
    array([0])
    """

    def __init__(self, n_neighbors=20, temperature=0.07, metric="cosine", batch_size=1024):
        self.n_neighbors = n_neighbors
        self.temperature = temperature
        self.metric = metric
        self.batch_size = batch_size

    def fit(self, X, y):
        """Store the (normalised) training features and labels."""
        if isinstance(self.n_neighbors, bool) or not isinstance(
                self.n_neighbors, numbers.Integral) or self.n_neighbors < 1:
            raise ValueError(f"n_neighbors must be a positive int, got {self.n_neighbors!r}")
        if isinstance(self.temperature, bool) or not isinstance(
                self.temperature, numbers.Real) or self.temperature <= 0:
            raise ValueError(f"temperature must be a float > 0, got {self.temperature!r}")
        if self.metric not in ("cosine", "euclidean"):
            raise ValueError(f"metric must be 'cosine' or 'euclidean', got {self.metric!r}")
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        self.classes_, self.y_ = np.unique(y, return_inverse=True)
        self.X_ = self._prepare(X)
        return self

    def _prepare(self, X):
        if self.metric == "cosine":
            norms = np.linalg.norm(X, axis=1, keepdims=True)
            return X / np.where(norms > 0, norms, 1.0)
        return X

    def _similarity(self, Q):
        if self.metric == "cosine":
            return Q @ self.X_.T
        d2 = (Q ** 2).sum(1)[:, None] - 2 * Q @ self.X_.T + (self.X_ ** 2).sum(1)[None, :]
        return -np.sqrt(np.maximum(d2, 0))

    def predict_proba(self, X):
        """Normalised, similarity-weighted class votes of the nearest neighbours."""
        check_is_fitted(self, "X_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        Q = self._prepare(X)
        k = min(self.n_neighbors, len(self.X_))
        proba = np.zeros((len(Q), len(self.classes_)))
        rows = np.arange(len(Q))
        for start in range(0, len(Q), self.batch_size):
            sim = self._similarity(Q[start:start + self.batch_size])
            top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
            top_sim = np.take_along_axis(sim, top, axis=1)
            # subtract the row max before exp: same normalised votes, no overflow
            w = np.exp((top_sim - top_sim.max(axis=1, keepdims=True)) / self.temperature)
            block = rows[start:start + len(sim)] - start
            np.add.at(proba[start:start + len(sim)], (block[:, None], self.y_[top]), w)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Class with the largest weighted vote."""
        proba = self.predict_proba(X)  # checks fitted-ness before classes_ is read
        return self.classes_[np.argmax(proba, axis=1)]
