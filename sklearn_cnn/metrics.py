"""Retrieval metrics for embeddings, as functions and scikit-learn scorers.

Each query is every sample in turn, retrieving from all the others
(leave-one-out), ranked by cosine similarity (or Euclidean distance).
"""

import numpy as np

__all__ = ["precision_at_k", "precision_at_1", "mean_average_precision_at_r",
           "retrieval_scorer", "RETRIEVAL_SCORERS"]


def _ranked_matches(embeddings, labels, k, metric):
    E = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels)
    if E.ndim != 2 or len(E) != len(labels):
        raise ValueError(f"embeddings must be 2-D with one row per label; got shape {E.shape} "
                         f"for {len(labels)} labels")
    if len(E) < 2:
        raise ValueError("retrieval metrics need at least 2 samples")
    if metric == "cosine":
        n = np.linalg.norm(E, axis=1, keepdims=True)
        E = E / np.where(n > 0, n, 1)
        sim = E @ E.T
    elif metric == "euclidean":
        sq = (E ** 2).sum(1)
        sim = -(sq[:, None] - 2 * E @ E.T + sq[None, :])
    else:
        raise ValueError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
    np.fill_diagonal(sim, -np.inf)  # a query never retrieves itself
    k = min(k, len(E) - 1)
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return labels[order] == labels[:, None], labels


def precision_at_k(embeddings, labels, k=5, metric="cosine"):
    """Mean fraction of the k nearest neighbours that share the query's label."""
    matches, _ = _ranked_matches(embeddings, labels, k, metric)
    return float(matches.mean())


def precision_at_1(embeddings, labels, metric="cosine"):
    """Fraction of queries whose nearest neighbour shares their label."""
    return precision_at_k(embeddings, labels, 1, metric)


def mean_average_precision_at_r(embeddings, labels, metric="cosine"):
    """MAP@R (Musgrave et al. 2020): R = number of other samples of the query's class.

    For each query, the average over the first R retrieved of the precision at
    each correct position (wrong positions count 0), divided by R.
    """
    labels = np.asarray(labels)
    _, counts = np.unique(labels, return_counts=True)
    max_r = int(counts.max()) - 1
    if max_r < 1:
        raise ValueError("MAP@R needs at least one class with 2 samples")
    matches, labels = _ranked_matches(embeddings, labels, max_r, metric)
    r = np.array([np.sum(labels == lab) - 1 for lab in labels])
    scores = []
    for row, r_i in zip(matches, r):
        if r_i < 1:
            continue
        hits = row[:r_i]
        precision = np.cumsum(hits) / np.arange(1, r_i + 1)
        scores.append(float((precision * hits).sum() / r_i))
    return float(np.mean(scores))


class _RetrievalScorer:
    """scorer(estimator, X, y): ``metric(estimator.transform(X), y)``; picklable."""

    def __init__(self, metric, **kwargs):
        self.metric, self.kwargs = metric, kwargs

    def __call__(self, estimator, X, y):
        return self.metric(estimator.transform(X), y, **self.kwargs)

    def __repr__(self):
        return f"retrieval_scorer({self.metric.__name__}, {self.kwargs})"


def retrieval_scorer(metric="precision_at_1", **kwargs):
    """A scorer for GridSearchCV / cross_val_score over embedders (anything with transform).

    ``metric`` is a name ("precision_at_1", "precision_at_k", "map_at_r") or a
    function ``(embeddings, labels, **kwargs) -> float``.
    """
    fn = {"precision_at_1": precision_at_1, "precision_at_k": precision_at_k,
          "map_at_r": mean_average_precision_at_r}.get(metric, metric)
    if not callable(fn):
        raise ValueError(f"unknown retrieval metric {metric!r}; use precision_at_1, "
                         "precision_at_k, map_at_r or a function")
    return _RetrievalScorer(fn, **kwargs)


RETRIEVAL_SCORERS = {name: retrieval_scorer(name)
                     for name in ("precision_at_1", "precision_at_k", "map_at_r")}
