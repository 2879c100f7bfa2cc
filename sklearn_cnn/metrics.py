"""Retrieval metrics for embeddings, as functions and scikit-learn scorers.

Each query is every sample in turn, retrieving from all the others
(leave-one-out), ranked by cosine similarity (or negative Euclidean distance).
Two rules hold for every metric here:

* **Lone queries are dropped.** A query whose class has no other sample can
  retrieve nothing relevant; it is left out of the average of every metric
  (precision@1, precision@k and MAP@R alike), as pytorch-metric-learning's
  ``AccuracyCalculator`` does. It still stays in the pool that the other
  queries retrieve from. With no class of 2 samples or more there is no query
  left, and the metrics raise ValueError.
* **Ties are broken by index.** Neighbours with exactly the same similarity are
  ranked in the order of their rows (lower index first), a stable sort, so a
  score never depends on the sorting algorithm.
"""

import numpy as np

from ._input import check_positive_int

__all__ = ["precision_at_k", "precision_at_1", "mean_average_precision_at_r", "retrieval_scorer"]


def _ranked_matches(embeddings, labels, k, metric):
    """Whether each of the k nearest neighbours of each kept query shares its label.

    Returns ``(matches, r)``: ``matches`` of shape (n_kept, k) and ``r``, per
    kept query, the number of other samples of its class (>= 1). Queries whose
    class has no other member are dropped (see the module docstring).
    """
    E = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
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
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    r = counts[inverse] - 1
    kept = r >= 1
    if not kept.any():
        raise ValueError("retrieval metrics need at least one class with 2 samples: every "
                         "query's class has no other member")
    np.fill_diagonal(sim, -np.inf)  # a query never retrieves itself
    sim = sim[kept]
    k = min(k, len(E) - 1)
    # stable: equal similarities keep the order of the rows (lower index first)
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return labels[order] == labels[kept][:, None], r[kept]


def precision_at_k(embeddings, labels, k=5, metric="cosine"):
    """Mean fraction of the k nearest neighbours that share the query's label.

    Parameters
    ----------
    embeddings : array-like of shape (n_samples, n_features)
    labels : array-like of shape (n_samples,)
    k : int, default=5
        Neighbours per query; at most ``n_samples - 1`` are used.
    metric : {"cosine", "euclidean"}, default="cosine"

    Returns
    -------
    score : float
        Averaged over the queries whose class has another sample; ties are
        broken by index (see the module docstring).
    """
    check_positive_int(k, "k")
    matches, _ = _ranked_matches(embeddings, labels, k, metric)
    return float(matches.mean())


def precision_at_1(embeddings, labels, metric="cosine"):
    """Fraction of queries whose nearest neighbour shares their label.

    Queries whose class has no other sample are left out; see
    :func:`precision_at_k`.
    """
    return precision_at_k(embeddings, labels, 1, metric)


def mean_average_precision_at_r(embeddings, labels, metric="cosine"):
    """MAP@R (Musgrave et al. 2020): R = number of other samples of the query's class.

    For each query, the average over the first R retrieved of the precision at
    each correct position (wrong positions count 0), divided by R. Queries
    whose class has no other sample (R = 0) are left out, as in
    :func:`precision_at_k`; ties are broken by index.
    """
    labels = np.asarray(labels)
    max_r = int(np.unique(labels, return_counts=True)[1].max()) - 1 if labels.size else 0
    matches, r = _ranked_matches(embeddings, labels, max(max_r, 1), metric)
    scores = []
    for row, r_i in zip(matches, r):
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

