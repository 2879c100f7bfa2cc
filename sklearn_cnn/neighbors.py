"""WeightedKNNClassifier: k nearest neighbours on torch's GEMM, weighted or uniform votes."""

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._input import check_positive_float, check_positive_int

__all__ = ["WeightedKNNClassifier"]


class WeightedKNNClassifier(ClassifierMixin, BaseEstimator):
    """k nearest neighbours voting with weights ``exp(similarity / temperature)``, or uniformly.

    ``weights="exp"`` is the protocol of Wu et al. (2018) and DINO's ``eval_knn``:
    cosine similarity to the training features, the ``n_neighbors`` most similar
    vote for their class with weight ``exp(sim / T)``; ``predict_proba`` is the
    normalised vote. ``weights="uniform"`` with ``metric="euclidean"`` is
    scikit-learn's ``KNeighborsClassifier(n_neighbors)``: one vote per neighbour,
    ties to the smallest class; it is the ``"knn"`` probe, because the float32
    similarity blocks run on torch's matrix product with every torch thread,
    about twice as fast as ``KNeighborsClassifier`` on 4,096 CNN features (it
    computes float32 distances in float64 blocks).

    Parameters
    ----------
    n_neighbors : int, default=20
    temperature : float, default=0.07
        Used by ``weights="exp"`` only.
    metric : {"cosine", "euclidean"}, default="cosine"
        "euclidean" uses the negative distance as the similarity.
    weights : {"exp", "uniform"}, default="exp"
    batch_size : int, default=1024
        Query rows per similarity block (bounds memory: ``batch_size`` x
        n_train values at a time).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> WeightedKNNClassifier(n_neighbors=2).fit(X, [0, 0, 1, 1]).predict([[1.0, 0.2]])
    array([0])
    >>> knn = WeightedKNNClassifier(3, metric="euclidean", weights="uniform").fit(X, [0, 0, 1, 1])
    >>> knn.predict_proba([[1.0, 0.2]]).round(3)
    array([[0.667, 0.333]])
    """

    def __init__(self, n_neighbors=20, temperature=0.07, metric="cosine", weights="exp",
                 batch_size=1024):
        self.n_neighbors = n_neighbors
        self.temperature = temperature
        self.metric = metric
        self.weights = weights
        self.batch_size = batch_size

    def fit(self, X, y):
        """Store the (normalised) training features and labels."""
        for name in ("n_neighbors", "batch_size"):
            check_positive_int(getattr(self, name), name)
        check_positive_float(self.temperature, "temperature")
        if self.metric not in ("cosine", "euclidean"):
            raise ValueError(f"metric must be 'cosine' or 'euclidean', got {self.metric!r}")
        if self.weights not in ("exp", "uniform"):
            raise ValueError(f"weights must be 'exp' or 'uniform', got {self.weights!r}")
        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64], order="C")
        check_classification_targets(y)
        self.classes_, self.y_ = np.unique(y, return_inverse=True)
        self.X_ = self._prepare(X)
        return self

    def _prepare(self, X):
        if self.metric == "cosine":
            # einsum: the norms without np.linalg.norm's squared copy of X
            norms = np.sqrt(np.einsum("ij,ij->i", X, X))[:, None]
            return np.ascontiguousarray(X / np.where(norms > 0, norms, 1.0), dtype=X.dtype)
        return X

    def _neighbours(self, Q):
        """(similarity, index) of the ``k`` most similar training rows, per query block."""
        train = torch.from_numpy(self.X_)
        k = min(self.n_neighbors, len(train))
        if self.metric == "euclidean":
            # row norms without a squared copy of the training features (as large as them)
            train_sq = torch.linalg.vector_norm(train, dim=1).square_()
        for start in range(0, len(Q), self.batch_size):
            q = torch.from_numpy(Q[start:start + self.batch_size]).to(train.dtype)
            if self.metric == "cosine":
                sim, top = (q @ train.T).topk(k, dim=1)
            else:
                # |x|^2 - 2 q.x orders the rows as the distance does (|q|^2 is the same for
                # all of a query's rows); the distances themselves only for the k kept
                # (the k smallest directly: negating the block first would copy it)
                partial = torch.addmm(train_sq[None, :], q, train.T, alpha=-2)
                nearest, top = partial.topk(k, dim=1, largest=False)
                del partial
                sim = -torch.sqrt(torch.clamp((q * q).sum(1, keepdim=True) + nearest, min=0))
            yield start, sim.numpy(), top.numpy()

    def predict_proba(self, X):
        """Normalised class votes of the nearest neighbours (weighted or uniform)."""
        check_is_fitted(self, "X_")
        X = validate_data(self, X, reset=False, dtype=[np.float32, np.float64], order="C")
        Q = self._prepare(X)
        proba = np.zeros((len(Q), len(self.classes_)))
        for start, sim, top in self._neighbours(Q):
            if self.weights == "uniform":
                w = np.ones_like(sim, dtype=np.float64)
            else:  # subtract the row max before exp: same normalised votes, no overflow
                w = np.exp((sim - sim.max(axis=1, keepdims=True)) / self.temperature)
            block = np.arange(len(sim))[:, None]
            np.add.at(proba[start:start + len(sim)], (block, self.y_[top]), w)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        """Class with the largest vote (ties: the smallest class)."""
        proba = self.predict_proba(X)  # checks fitted-ness before classes_ is read
        return self.classes_[np.argmax(proba, axis=1)]
