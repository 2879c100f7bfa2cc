"""LinearProbe: linear classifiers solved with torch on dense features, both cores.

The probes of the reports are one-vs-rest ``LinearSVC`` (liblinear) and
multinomial logistic regression. On the 4,096-d ``flatten`` features of
45,000 CIFAR-10 images liblinear's single-threaded solvers do not converge
in an hour. The objectives are the same here, solved on all classes at once
with dense matrix products (which use every core):

* ``loss="squared_hinge"``: for each class k (labels +1 / -1, one vs rest),
  ``0.5 * ||w_k||^2 + C * sum_i max(0, 1 - y_ik * (w_k . x_i + b_k))^2``,
  liblinear's L2-regularised L2-loss SVC in the primal (``LinearSVC`` with
  its defaults). As in liblinear, the intercept is a weight on an extra
  feature of value ``intercept_scaling`` and is regularised with the rest.
  Solved by a truncated Newton method with conjugate gradients on the
  generalised Hessian ``I + 2C X_A^T X_A`` (``A``: the samples inside the
  margin), the method of liblinear's TRON, with a backtracking line search;
  the classes are solved as the columns of one matrix. The conjugate gradients
  are preconditioned by the Cholesky factor of ``I + 2C a X^T X`` (``a``: the
  fraction of samples inside the margin), formed once from ``X^T X`` and
  refactored when ``a`` moves. On badly conditioned features (the 4,096
  ``flatten`` features of CIFAR-10) it needs many times fewer Hessian products
  than the diagonal (Jacobi) preconditioner (``benchmarks/bench_linear_probe.py``
  counts both); the diagonal stays the choice above 8,192 features, where the
  ``D x D`` factor costs too much memory and time (``preconditioner`` chooses
  by hand). On well separated features (a trained network's: few samples inside
  each class's margin) the mean is a poor stand-in, and a class whose margin
  holds at most 15 % of the samples (or any, from the eighth Newton step)
  gets the exact ``I + 2C X_A^T X_A`` of its own active set, kept up to date by
  the rows that enter or leave ``A``.
* ``loss="log_loss"``: multinomial logistic regression,
  ``0.5 * ||W||^2 + C * sum_i -log softmax(W x_i + b)_{y_i}``
  (``LogisticRegression``'s objective; the intercept is not regularised),
  solved by the same truncated Newton method on all of ``W`` at once (the
  classes are coupled through the softmax), with the same preconditioners: the
  Cholesky factor of ``diag(ridge) + C a X^T X``, ``a`` the mean of
  ``p_ik (1 - p_ik)``. ``benchmarks/bench_linear_probe.py`` compares it with
  ``LogisticRegression`` on a subsample of CIFAR-10 ``flatten`` features and
  times it on all 45,000 images.

Both stop when the gradient norm has fallen below ``tol`` times its value at
the start (per class for the one-vs-rest squared hinge), or after ``max_iter``
Newton iterations with a ConvergenceWarning. That is liblinear's primal rule
without its class-balance factor: liblinear stops at ``tol * min(pos, neg) / n``
(``LinearSVC``'s primal solver, which it picks for more samples than features),
ten times stricter for ten balanced classes; pass ``tol=1e-5`` for that.
"""

import functools
import time
import warnings

import numpy as np
import torch
from scipy.linalg import blas
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from ._input import check_positive_float, check_positive_int

__all__ = ["LinearProbe"]

LOSSES = ("squared_hinge", "log_loss")
PRECONDITIONERS = ("auto", "cholesky", "jacobi")
# "auto" factors the D x D matrix up to this many features (with the intercept's): float64
# 8,192^2 is 0.5 GB and ~0.2 TFLOP to factor, still small beside the Hessian products saved.
CHOLESKY_MAX_FEATURES = 8192
# The squared hinge's per-column factors (see _CholeskyPreconditioner): a column gets its own
# once at most this fraction of the samples is inside its margin (its first Gram matrix then
# costs at most 0.15 of X^T X's) ...
ACTIVE_SET_FRACTION = 0.15
# ... and every column from this Newton step on, whatever its active set's size; their memory
# (one D x D float32 matrix per column: its Gram and its factor packed together) at most
# ACTIVE_SET_MAX_BYTES. Chosen by measuring
# the time to converge on two trained networks' features (benchmarks/bench_linear_probe.py,
# docs/benchmarks.md): 0.25 / 6 took 85 s and 254 s, 0.15 / 8 76 s and 235 s, 1.0 (from the
# start) 145 s on the first; refactoring only when a tenth of the active set had changed
# 134 s on the first (more Hessian products than factorizations saved).
ACTIVE_SET_AFTER_STEPS = 8
ACTIVE_SET_MAX_BYTES = 2 * 2**30


class LinearProbe(ClassifierMixin, BaseEstimator):
    """Linear classifier (one-vs-rest squared hinge or multinomial logistic) solved in torch.

    The same objective as ``LinearSVC()`` (``loss="squared_hinge"``) or
    ``LogisticRegression()`` (``loss="log_loss"``), converged in seconds to
    minutes on dense features where liblinear takes hours: see the module
    docstring for the objectives and solvers.

    Parameters
    ----------
    loss : {"squared_hinge", "log_loss"}, default="squared_hinge"
    C : float, default=1.0
        Inverse regularisation strength, as in scikit-learn.
    tol : float, default=1e-4
        Stop when ``||gradient|| <= tol * ||gradient at the start||``.
    max_iter : int, default=1000
        Newton iterations at most.
    fit_intercept : bool, default=True
    intercept_scaling : float, default=1.0
        Value of the extra feature that carries the (regularised) intercept of
        the squared hinge loss, as in liblinear.
    preconditioner : {"auto", "cholesky", "jacobi"}, default="auto"
        Of the conjugate gradients: the Cholesky factor of the Hessian with the
        per-sample curvature replaced by its mean (``I + 2C a X^T X`` for the
        squared hinge; for a class whose margin holds few samples, the exact
        Hessian of those) or the Hessian's diagonal; ``"auto"`` takes the
        Cholesky factors up to 8,192 features. The solution is the same (to
        ``tol``); only the time differs.
    standardize : bool, default=False
        Standardise every feature (zero mean and unit variance over the training
        samples, as ``StandardScaler``; a constant feature is only centred) inside
        the solver, without the standardised copy of the features that a
        ``StandardScaler`` in front makes (737 MB for 45,000 x 4,096 float32).
        The objective is that of the standardised features, as with the scaler;
        ``coef_`` and ``intercept_`` are mapped back to the raw features, which
        ``predict`` takes as given.
    verbose : int, default=0
        1 prints the objective, gradient, work and seconds per Newton iteration.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1 or n_classes, n_features), float32
    intercept_ : ndarray of shape (1 or n_classes,), float32
    n_iter_ : int
        Newton iterations.
    n_hessian_products_ : int
        Hessian-vector products of the conjugate gradients, the bulk of the
        work (two ``n x D x K`` matrix products each): a measure of the
        solver's cost that does not depend on the machine.
    objective_ : float
        The final objective value (sum over the one-vs-rest problems for the
        squared hinge).
    n_features_in_ : int
    mean_, scale_ : ndarray of shape (n_features,), float64
        With ``standardize``: the features' means and standard deviations (1 for a
        constant feature), as ``StandardScaler``'s.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_cnn.linear_probe import LinearProbe
    >>> X, y = load_digits(return_X_y=True)
    >>> probe = LinearProbe(C=0.01).fit(X[:1500] / 16, y[:1500])
    >>> round(probe.score(X[1500:] / 16, y[1500:]), 2)
    0.87
    >>> scaled = LinearProbe(C=0.01, standardize=True).fit(X[:1500], y[:1500])
    >>> round(scaled.score(X[1500:], y[1500:]), 2)  # raw features in, as StandardScaler + probe
    0.88
    """

    def __init__(self, loss="squared_hinge", *, C=1.0, tol=1e-4, max_iter=1000,
                 fit_intercept=True, intercept_scaling=1.0, preconditioner="auto",
                 standardize=False, verbose=0):
        self.loss = loss
        self.C = C
        self.tol = tol
        self.max_iter = max_iter
        self.fit_intercept = fit_intercept
        self.intercept_scaling = intercept_scaling
        self.preconditioner = preconditioner
        self.standardize = standardize
        self.verbose = verbose

    def _check_params(self):
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.preconditioner not in PRECONDITIONERS:
            raise ValueError(f"preconditioner must be one of {PRECONDITIONERS}, "
                             f"got {self.preconditioner!r}")
        for name in ("C", "tol", "intercept_scaling"):
            check_positive_float(getattr(self, name), name)
        check_positive_int(self.max_iter, "max_iter")
        if not isinstance(self.standardize, (bool, np.bool_)):
            raise TypeError(f"standardize must be a bool, got {self.standardize!r}")

    def fit(self, X, y):
        """Fit on dense features ``X`` (n, n_features) and labels ``y``."""
        self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float32)
        X = _unit_stride_rows(X)
        check_classification_targets(y)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"LinearProbe needs samples of at least 2 classes; got 1 class "
                             f"({self.classes_[0]!r})")
        # The intercept's feature: liblinear's intercept_scaling for the squared hinge;
        # 1 for the log loss, whose intercept is not regularised.
        scale = float(self.intercept_scaling) if self.loss == "squared_hinge" else 1.0
        Xt = torch.from_numpy(X)
        mean = inv_std = None
        for stale in ("mean_", "scale_"):  # of an earlier fit with standardize=True
            self.__dict__.pop(stale, None)
        if self.standardize:
            self.mean_, self.scale_ = _mean_and_std(Xt)
            mean, inv_std = (torch.from_numpy(v).float() for v in (self.mean_, 1 / self.scale_))
        design = _Design(Xt, scale if self.fit_intercept else None, mean, inv_std)
        yt = torch.from_numpy(y_enc.astype(np.int64))
        K, D = len(self.classes_), design.shape[1]
        if self.loss == "squared_hinge":
            loss = _SquaredHinge(yt, K, float(self.C), D)
        else:
            # Two classes: the two softmax rows w0, w1 end at w0 = -w1, so their penalty is
            # half that of the difference d = w1 - w0 that scikit-learn's binary layout
            # keeps: C / 2 here is LogisticRegression(C)'s binomial objective, halved.
            binary = 0.5 if K == 2 else 1.0
            loss = _LogLoss(yt, K, float(self.C) * binary, D, self.fit_intercept)
        cholesky = self.preconditioner == "cholesky" or (
            self.preconditioner == "auto" and D <= CHOLESKY_MAX_FEATURES)
        # scipy's BLAS (the Gram matrices) with as many threads as torch's
        with torch.no_grad(), threadpool_limits(torch.get_num_threads(), user_api="blas"):
            W, self.n_iter_, self.objective_, converged, self.n_hessian_products_ = _newton(
                design, loss, float(self.tol), int(self.max_iter), self.verbose, cholesky)
        if self.loss == "log_loss" and K == 2:
            self.objective_ *= 2.0  # the binomial objective (see above)
        if not converged:
            warnings.warn(f"LinearProbe({self.loss!r}) did not converge in {self.max_iter} "
                          "iterations; raise max_iter", ConvergenceWarning, stacklevel=2)
        W = W.T.numpy().astype(np.float64)  # (K, D)
        if self.fit_intercept:
            coef, intercept = W[:, :-1], W[:, -1] * scale
        else:
            coef, intercept = W, np.zeros(len(W))
        if self.standardize:
            # w . (x - m) * r + b = (w r) . x + (b - (w r) . m), with the float32 m and r
            # the design used; b is kept for the scores of decision_function, which
            # centres before its product (no cancellation of two large terms)
            center = mean.double().numpy()
            coef = coef * inv_std.double().numpy()
        if len(self.classes_) == 2:
            # scikit-learn's binary layout: one row of scores for the positive class
            # classes_[1]: its one-vs-rest problem, or the difference of the two
            # multinomial rows (softmax of two scores = sigmoid of their difference).
            if self.loss == "squared_hinge":
                coef, intercept = coef[1:], intercept[1:]
            else:
                coef, intercept = coef[1:] - coef[:1], intercept[1:] - intercept[:1]
        self._centred_intercept = None
        if self.standardize:
            self._centred_intercept = intercept.astype(np.float32)
            intercept = intercept - coef @ center
        self.coef_, self.intercept_ = coef.astype(np.float32), intercept.astype(np.float32)
        return self

    def decision_function(self, X):
        """Scores ``X @ coef_.T + intercept_``: (n,) for two classes, else (n, n_classes)."""
        check_is_fitted(self, "coef_")
        X = _unit_stride_rows(validate_data(self, X, dtype=np.float32, reset=False))
        Xt, coef = torch.from_numpy(X), torch.from_numpy(self.coef_).T
        if getattr(self, "_centred_intercept", None) is None:
            scores = Xt @ coef + torch.from_numpy(self.intercept_)
        else:
            # standardize: (x - mean) . coef_ + b, centred block by block before the
            # product, as the solver saw the features (X @ coef_ + intercept_ is the same
            # number, but cancels two large terms when a feature's mean is far from 0)
            center = torch.from_numpy(self.mean_).float()
            scores = torch.cat([(rows - center) @ coef for rows in _row_blocks(Xt)]) \
                + torch.from_numpy(self._centred_intercept)
        scores = scores.numpy()
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict(self, X):
        """Class labels, shape (n,)."""
        scores = self.decision_function(X)
        idx = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[idx]

    @available_if(lambda self: self.loss == "log_loss")
    def predict_proba(self, X):
        """Softmax of the multinomial scores (``loss="log_loss"`` only: the squared hinge
        gives scores, not probabilities)."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            scores = np.stack([np.zeros_like(scores), scores], axis=1)
        return torch.softmax(torch.from_numpy(scores).double(), dim=1).numpy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags


def _unit_stride_rows(X):
    """``X`` itself when its rows are unit-stride (a C-ordered array, or a column slice of
    one, such as one layer's block of several layers' features: matrix products read it
    with a leading dimension), else a C-ordered copy."""
    if X.strides[1] == X.itemsize and X.strides[0] >= X.shape[1] * X.itemsize \
            and X.strides[0] % X.itemsize == 0 and X.flags.aligned:
        return X
    return np.ascontiguousarray(X)


# rows per block wherever ``X`` is read a block at a time: a block's copy (masked rows, a
# float64 or standardised block) stays small (32 MB at D = 4,096), never one of all of X
_BLOCK_ROWS = 2048


def _row_blocks(X, index=None):
    """``X``'s rows (or the rows ``index`` selects, copied) ``_BLOCK_ROWS`` at a time."""
    n = len(X) if index is None else len(index)
    for start in range(0, n, _BLOCK_ROWS):
        if index is None:
            yield X[start:start + _BLOCK_ROWS]
        else:
            yield X.index_select(0, index[start:start + _BLOCK_ROWS])


def _mean_and_std(X):
    """Per-feature mean and standard deviation of ``X`` (n, D) as float64 arrays, summed
    block by block in float64 (no float64 copy of ``X``); a zero deviation is 1, as in
    ``StandardScaler``."""
    n = X.shape[0]
    total = torch.zeros(X.shape[1], dtype=torch.float64)
    for rows in _row_blocks(X):
        total += rows.double().sum(0)
    mean = total / n
    squares = torch.zeros_like(total)
    for rows in _row_blocks(X):
        squares += (rows.double() - mean).square().sum(0)
    var = squares / n
    # StandardScaler's rule for a constant feature (its variance is rounding): scale 1
    eps = torch.finfo(torch.float64).eps
    constant = var <= n * eps * var + (n * mean * eps) ** 2
    std = torch.where(constant, torch.ones_like(var), var.sqrt())
    return mean.numpy(), std.numpy()


class _Design:
    """The design matrix ``[(X - mean) * inv_std, scale]`` (the standardisation when
    ``mean`` / ``inv_std`` are given; the intercept's constant column when ``scale`` is
    not None) without building it: a copy of 45,000 x 4,096 float32 features is 737 MB.
    Its products and Gram matrices are those of the bordered, standardised matrix."""

    # Centring after the product (X @ rV - (m r) @ V) loses float32 precision in
    # proportion to a feature's |mean| / std; above this ratio the products standardise
    # each block of rows first, as the Gram matrices always do (slower: a block copy per
    # product). ReLU features stay far below it.
    max_mean_over_std = 30.0

    def __init__(self, X, scale=None, mean=None, inv_std=None):
        self.X, self.scale, self.mean, self.inv_std = X, scale, mean, inv_std
        self.shape = (X.shape[0], X.shape[1] + (scale is not None))
        self.blockwise = mean is not None and bool(
            (mean.abs() * inv_std).max() > self.max_mean_over_std)

    def _standardized(self, rows):
        return rows if self.mean is None else (rows - self.mean) * self.inv_std

    def squared(self):
        """The design of the standardised ``X`` squared (the Jacobi preconditioner's
        diagonal; a copy of ``X``'s size)."""
        return _Design(self._standardized(self.X).square(),
                       None if self.scale is None else self.scale ** 2)

    def xv(self, V):
        """``[X, s] @ V`` for a thin ``V`` (D', K), in one fused matrix product (the
        intercept's column and the centring as the bias). ``V``'s transpose is made
        contiguous because MKL's skinny GEMM reads a row-major ``V`` ~2x slower
        (``benchmarks/bench_linear_probe.py``)."""
        Vx = V if self.scale is None else V[:-1]
        bias = None if self.scale is None else self.scale * V[-1]
        if self.blockwise:
            weight = Vx.T.contiguous()
            return torch.cat([torch.nn.functional.linear(self._standardized(rows), weight, bias)
                              for rows in _row_blocks(self.X)])
        if self.mean is not None:
            # ((X - m) * r) @ Vx = X @ (r Vx) - (m * r) @ Vx
            Vx = self.inv_std[:, None] * Vx
            shift = -(self.mean @ Vx)
            bias = shift if bias is None else bias + shift
        return torch.nn.functional.linear(self.X, Vx.T.contiguous(), bias)

    def xtu(self, U):
        """``[X, s]^T @ U`` for a thin ``U`` (n, K), as ``(U^T X)^T``: no transposed copy of
        ``X`` (``X.T @ U`` would make one, as large as ``X``) and ~3x faster than through
        ``X.T``."""
        if self.blockwise:
            Ut, top = U.T.contiguous(), 0
            for i, rows in zip(range(0, len(U), _BLOCK_ROWS), _row_blocks(self.X)):
                top = top + Ut[:, i:i + _BLOCK_ROWS] @ self._standardized(rows)
            top = top.T
        else:
            top = (U.T.contiguous() @ self.X).T
        if self.mean is not None and not self.blockwise:
            top = self.inv_std[:, None] * (top - self.mean[:, None] * U.sum(0))
        if self.scale is None:
            return top
        return torch.cat([top, self.scale * U.sum(0, keepdim=True)])

    def gram(self, mask=None, alpha=1.0, into=None):
        """``alpha * A^T A`` of the rows ``A`` of the design selected by ``mask`` (all:
        None), added to ``into`` in place when given (:func:`_gram`, lower triangle)."""
        D = self.shape[1]
        if into is None:
            into = _fortran(torch.zeros(D, D))
        index = None if mask is None else mask.nonzero()[:, 0]
        for rows in _row_blocks(self.X, index):
            rows = self._standardized(rows)
            if self.scale is not None:
                rows = torch.cat([rows, rows.new_full((len(rows), 1), self.scale)], dim=1)
            _gram(rows, alpha=alpha, into=into)
        return into


def _newton(X, loss, tol, max_iter, verbose, cholesky):
    """Truncated Newton with preconditioned conjugate gradients and a backtracking line
    search, for a loss on the scores ``Z = X W`` (``W``: (D, K)) plus ``0.5 * ridge * W^2``.

    ``loss.joint`` False: the K columns are independent problems (one vs rest), each with
    its own CG, step and stopping test; True: one problem over all of ``W`` (multinomial).
    ``X`` is a :class:`_Design`. Returns ``(W, n_iter, objective, converged,
    n_hessian_products)``."""
    n, D = X.shape
    K = loss.n_outputs
    W = torch.zeros(D, K)
    Z = torch.zeros(n, K)
    if cholesky:
        precondition = _CholeskyPreconditioner(X, loss)
    else:
        precondition = _JacobiPreconditioner(X, loss.ridge)
    # per problem: a column each (one vs rest) or one for all of W (multinomial)
    reduce = (lambda A: A.sum().reshape(1)) if loss.joint else (lambda A: A.sum(0))
    per_column = (lambda mask: mask.expand(K)) if loss.joint else (lambda mask: mask)
    products = [0]
    start = time.perf_counter()

    def hess_vec(V):
        products[0] += 1
        return loss.ridge * V + X.xtu(loss.curvature(X.xv(V)))

    f = loss.objective(W, Z)
    G = loss.ridge * W + X.xtu(loss.score_gradient(Z))
    g0 = reduce(G * G).sqrt()
    for it in range(1, max_iter + 1):
        done = reduce(G * G).sqrt() <= tol * g0
        if bool(done.all()):
            return W, it - 1, float(f.sum()), True, products[0]
        precondition.update(loss.weights, per_column(done))
        P = _cg(hess_vec, -G, done, precondition, reduce)
        XP = X.xv(P)
        slope = reduce(G.double() * P.double())
        step = torch.ones_like(slope)
        for _ in range(30):  # backtracking (Armijo) per problem, on the cheap Z + s XP
            s = per_column(step).float()
            Z_try, W_try = Z + s * XP, W + s * P
            f_try = loss.objective(W_try, Z_try)
            ok = (f_try <= f + 1e-4 * step * slope) | done
            if bool(ok.all()):
                break
            step = torch.where(ok, step, step * 0.5)
        keep = per_column(done).float()
        W = keep * W + (1 - keep) * W_try
        Z = keep * Z + (1 - keep) * Z_try
        f = loss.objective(W, Z)
        G = loss.ridge * W + X.xtu(loss.score_gradient(Z))
        if verbose:
            print(f"iter {it}: objective {float(f.sum()):.6f}, max relative gradient "
                  f"{float((reduce(G * G).sqrt() / g0).max()):.2e}, "
                  f"{products[0]} Hessian products, {precondition.describe()}, "
                  f"{time.perf_counter() - start:.0f} s")
    converged = bool((reduce(G * G).sqrt() <= tol * g0).all())
    return W, max_iter, float(f.sum()), converged, products[0]


class _SquaredHinge:
    """One vs rest ``C * sum_i max(0, 1 - y_ik z_ik)^2`` per class k; the generalised
    Hessian's curvature is ``2C`` on the samples inside the margin, 0 elsewhere."""

    joint = False

    def __init__(self, y, K, C, D):
        self.n_outputs = K
        self.Y = -torch.ones(len(y), K)
        self.Y[torch.arange(len(y)), y] = 1.0
        self.C = C
        self.ridge = torch.ones(D, 1)  # the intercept is regularised, as in liblinear
        self.min_curvature = 2.0 * C * 1e-3
        self.active_curvature = 2.0 * C  # every sample inside the margin, 0 outside

    def objective(self, W, Z):
        margin = torch.clamp(1.0 - self.Y * Z, min=0.0).double()
        return 0.5 * (W.double() ** 2).sum(0) + self.C * (margin ** 2).sum(0)

    def score_gradient(self, Z):
        """d loss / dZ; also sets the curvature at Z (the Hessian's, in ``curvature``)."""
        self.weights = 2.0 * self.C * (self.Y * Z < 1.0).float()
        return self.weights * (Z - self.Y)

    def curvature(self, U):
        return self.weights * U


class _LogLoss:
    """Multinomial ``C * sum_i -log softmax(z_i)_{y_i}``; its Hessian in the scores is
    ``C (diag(p_i) - p_i p_i^T)`` per sample. The intercept is not regularised."""

    joint = True

    def __init__(self, y, K, C, D, fit_intercept):
        self.n_outputs = K
        self.y = y
        self.C = C
        self.ridge = torch.ones(D, 1)
        if fit_intercept:
            self.ridge[-1] = 0.0
        self.min_curvature = C * 0.25 * 1e-3

    def objective(self, W, Z):
        nll = -torch.log_softmax(Z.double(), dim=1).gather(1, self.y[:, None]).sum()
        return (0.5 * (self.ridge.double() * W.double() ** 2).sum() + self.C * nll).reshape(1)

    def score_gradient(self, Z):
        self.P = torch.softmax(Z, dim=1)
        # the diagonal of the per-sample Hessian: what the preconditioners approximate
        self.weights = self.C * self.P * (1.0 - self.P)
        G = self.P.clone()
        G[torch.arange(len(self.y)), self.y] -= 1.0
        return self.C * G

    def curvature(self, U):
        PU = self.P * U
        return self.C * (PU - self.P * PU.sum(1, keepdim=True))


class _JacobiPreconditioner:
    """``R -> R / diag(H)``, the diagonal ``ridge + X^2^T weights`` per column."""

    def __init__(self, X, ridge):
        self.X2 = X.squared()
        self.ridge = ridge

    def update(self, weights, done):
        self.inv_diag = 1.0 / (self.ridge + self.X2.xtu(weights)).clamp_min(1e-12)

    def __call__(self, R):
        return self.inv_diag * R

    def describe(self):
        return "diagonal preconditioner"


class _CholeskyPreconditioner:
    """``R -> M^-1 R`` with ``M = diag(ridge) + c X^T X`` for all columns, ``c`` the mean
    per-sample curvature of the columns not yet converged: the Hessian
    ``diag(ridge) + X^T diag(weights) X`` with the weights replaced by their mean. (For
    the multinomial loss this also drops the coupling of the classes, ``-p_k p_l``: with
    this preconditioner W's columns sum to zero along the whole Newton path, and there the
    coupled curvature at uniform probabilities, ``C / K``, differs from the mean of
    ``C p (1 - p)`` only by the factor ``(K - 1) / K``.) Factored in float64 (``M``'s
    condition number reaches ~1e7 on CIFAR features), refactored only when ``c`` moves by
    more than a quarter (a factorization costs ~D^3 / 3).

    The mean is a poor stand-in once a one-vs-rest column's margin holds a small, particular
    subset of the samples (well separated features: the 4,096 ``flatten`` features of a
    trained CIFAR-10 network, where its conjugate gradients needed over 100 products per
    Newton step and the solver did not converge in 27 minutes). For a loss with 0 / c
    curvature (``loss.active_curvature``: the squared hinge), a column whose active set
    ``A`` has shrunk to at most ``ACTIVE_SET_FRACTION`` of the samples gets the exact
    Hessian of its own, ``diag(ridge) + c X_A^T X_A``: its Gram matrix is kept and updated
    by the rows that entered or left ``A`` (cheap once ``A`` settles), and refactored
    whenever ``A`` has changed: an exact preconditioner leaves the conjugate gradients one
    or two products, and a product over all of X costs about what a factorization of one
    column does at D = 4,096 (the triangular solves and the Gram updates are cheap beside
    both: ``_cholesky_solve``, ``_gram``). Columns get one while ``ACTIVE_SET_MAX_BYTES``
    allows (one D^2 float32 matrix each, the Gram and the factor packed in it:
    :func:`_pack_factor`); the others keep the shared factor."""

    def __init__(self, X, loss):
        self.X = X
        self.gram = X.gram().double()  # lower triangle (all the factorizations read)
        self.ridge = loss.ridge.double()[:, 0]
        self.min_curvature = loss.min_curvature
        self.active_curvature = getattr(loss, "active_curvature", None)
        self.curvature = None
        self.L = None  # the shared factor
        self.done = None
        # column -> [active mask of its Gram, its packed matrix, its factor's diagonal]: one
        # D x D float32 matrix per column holds both its Gram (lower triangle and diagonal,
        # what ssyrk updates) and its factor (strict upper triangle; _pack_factor)
        self.own = {}
        self.factorizations = 0
        self.updates = 0

    def update(self, weights, done):
        self.updates += 1
        if self.active_curvature is not None:
            self._update_own(weights, done)
        self.done = done
        shared = [k for k in range(weights.shape[1]) if k not in self.own and not done[k]]
        if not shared and self.L is not None:
            return
        shared = shared or list(range(weights.shape[1]))
        # mean over the columns still running on the shared factor
        curvature = max(float(weights[:, shared].mean()), self.min_curvature)
        if self.L is not None and 0.8 <= curvature / self.curvature <= 1.25:
            return
        self.curvature = curvature
        self.L = self._factor(self.gram * curvature)

    def _update_own(self, weights, done):
        n, D = self.X.shape
        budget = ACTIVE_SET_MAX_BYTES // (4 * D * D)
        for k in range(weights.shape[1]):
            if done[k]:
                continue
            active = weights[:, k] > 0
            size = int(active.sum())
            if k not in self.own:
                late = self.updates >= ACTIVE_SET_AFTER_STEPS
                if (size > ACTIVE_SET_FRACTION * n and not late) or len(self.own) >= budget:
                    continue
                # X_A^T X_A, or X^T X less the rows outside A where those are fewer
                if size <= n // 2:
                    gram = self.X.gram(active)
                else:
                    gram = self.X.gram(~active, alpha=-1.0, into=_fortran(self.gram.float()))
                self.own[k] = [active, gram, None]
            else:
                old, gram, _ = self.own[k]
                changed = active ^ old
                if not bool(changed.any()):
                    continue
                self.X.gram(changed & active, into=gram)
                self.X.gram(changed & old, alpha=-1.0, into=gram)
                self.own[k][0] = active
            S = self.own[k][1]
            M = S * self.active_curvature  # _factor reads the lower triangle: the Gram's
            if not bool(torch.isfinite(M).all()):  # a huge C: its product overflows float32
                M = S.double() * self.active_curvature
            self.own[k][2] = _pack_factor(self._factor(M), S)

    def _factor(self, M):
        """Cholesky factor (float32) of ``M + diag(ridge)``: factored in float32 when that
        succeeds for a float32 ``M`` (a column's own Hessian: half the time of float64),
        else in float64."""
        self.factorizations += 1
        if M.dtype == torch.float32:
            M.diagonal().add_(self.ridge.float())
            L, info = torch.linalg.cholesky_ex(M)
            if int(info) == 0:
                return L
            M = M.double()
        else:
            M.diagonal().add_(self.ridge)
        if not bool(torch.isfinite(M).all()):
            raise ValueError("X^T X overflows float32: X has values too large for a linear "
                             "probe; standardise the features (StandardScaler) first")
        L, info = torch.linalg.cholesky_ex(M)
        shift = 1e-6 * float(M.diagonal().mean())
        for _ in range(30):  # rounding in the float32 X^T X: a larger ridge still preconditions
            if int(info) == 0:
                break
            M.diagonal().add_(shift)
            shift *= 10.0
            L, info = torch.linalg.cholesky_ex(M)
        return L.float()

    def __call__(self, R):
        if not self.own:
            return _cholesky_solve(R, self.L)
        out = torch.empty_like(R)
        shared = [k for k in range(R.shape[1]) if k not in self.own]
        if shared:
            out[:, shared] = _cholesky_solve(R[:, shared], self.L)
        for k, (_, S, diag) in self.own.items():
            # a converged column's step is 0 whatever its preconditioner: skip its solves
            out[:, k:k + 1] = R[:, k:k + 1] if self.done[k] else \
                _packed_solve(R[:, k:k + 1], S, diag)
        return out

    def describe(self):
        return (f"{len(self.own)} of the columns with their own factor, "
                f"{self.factorizations} factorizations")


def _fortran(A):
    """``A`` in column-major layout (what BLAS updates in place)."""
    return A.mT.contiguous().mT


def _gram(rows, alpha=1.0, into=None):
    """``alpha * rows^T rows``, or that added to ``into`` in place (a column-major float32
    (D, D) tensor): the lower triangle only (BLAS ``ssyrk``: half the work of a matrix
    product; its time beside ``rows.T @ rows``: ``benchmarks/bench_linear_probe.py``, in
    docs/benchmarks.md); the Cholesky factorizations read no other (LAPACK ``potrf``,
    lower; pinned by a test)."""
    a = rows.numpy().T  # (D, m), column-major: no copy
    if into is None:
        return torch.from_numpy(blas.ssyrk(alpha, a, trans=0, lower=1))
    if len(rows):
        c = into.numpy()
        out = blas.ssyrk(alpha, a, beta=1.0, c=c, trans=0, lower=1, overwrite_c=1)
        if not np.shares_memory(out, c):
            raise RuntimeError("BLAS ssyrk did not update the Gram matrix in place")
    return into


def _cholesky_solve(R, L):
    """``(L L^T)^-1 R`` by two triangular solves: the same numbers as
    ``torch.cholesky_solve``, several times faster on CPU at D = 4,096 (the ratio measured
    by ``benchmarks/bench_linear_probe.py``, in docs/benchmarks.md)."""
    return torch.linalg.solve_triangular(
        L.mT, torch.linalg.solve_triangular(L, R, upper=False), upper=True)


def _pack_factor(L, S):
    """Store the Cholesky factor ``L`` in the strict upper triangle of ``S`` (whose lower
    triangle and diagonal, a Gram matrix, stay as they are): ``L = L1 diag(d)`` with ``L1``
    unit lower triangular; ``L1^T``'s strict upper triangle goes into ``S``, ``d`` is
    returned. Halves the memory of the per-column factors (10 x 67 MB at D = 4,097)."""
    d = L.diagonal().clone()
    L1 = L.div_(d)  # in place: L is the factorization's own new tensor
    # one pass: S^T's strict lower triangle (S's strict upper) := L1's
    np.copyto(S.mT.numpy(), L1.numpy(), where=_strict_lower(len(d)))
    return d


@functools.lru_cache(maxsize=2)
def _strict_lower(D):
    """The (D, D) mask of the strict lower triangle (cached: 17 MB at D = 4,097)."""
    return np.tri(D, D, -1, dtype=bool)


def _packed_solve(R, S, d):
    """``(L L^T)^-1 R`` for the factor packed by :func:`_pack_factor`:
    ``L1^-T diag(d)^-2 L1^-1 R`` by two unit-triangular solves, which read only the strict
    triangles (the Gram's diagonal and lower triangle in ``S`` are never read)."""
    t = torch.linalg.solve_triangular(S.mT, R, upper=False, unitriangular=True)
    return torch.linalg.solve_triangular(S, t / (d * d)[:, None], upper=True,
                                         unitriangular=True)


def _cg(hess_vec, B, frozen, precondition, reduce, max_iter=250, rel_tol=0.1):
    """Solve H p = b for each problem (``reduce`` sums a product over one problem's
    entries: a column, or all): batched preconditioned conjugate gradients
    (``precondition(R)`` applies the inverse of an approximation of H), stopped at
    ``rel_tol * ||b||`` (inexact Newton, as liblinear's TRON)."""
    P = torch.zeros_like(B)
    R = B.clone()
    Zp = precondition(R)
    Dir = Zp.clone()
    rz = reduce(R * Zp)
    stop = rel_tol * reduce(B * B).sqrt()
    active = ~frozen
    for _ in range(max_iter):
        active = active & (reduce(R * R).sqrt() > stop)
        if not bool(active.any()):
            break
        HD = hess_vec(Dir)
        alpha = torch.where(active, rz / reduce(Dir * HD).clamp_min(1e-30),
                            torch.zeros_like(rz))
        P = P + alpha * Dir
        R = R - alpha * HD
        Zp = precondition(R)
        rz_new = reduce(R * Zp)
        beta = torch.where(active, rz_new / rz.clamp_min(1e-30), torch.zeros_like(rz))
        Dir = Zp + beta * Dir
        rz = rz_new
    return P
