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
  by hand).
* ``loss="log_loss"``: multinomial logistic regression,
  ``0.5 * ||W||^2 + C * sum_i -log softmax(W x_i + b)_{y_i}``
  (``LogisticRegression``'s objective; the intercept is not regularised),
  solved by L-BFGS with a strong-Wolfe line search.

Both stop when the gradient norm has fallen below ``tol`` times its value at
the start (liblinear's rule), or after ``max_iter`` iterations with a
ConvergenceWarning.
"""

import numbers
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._input import check_positive_int

__all__ = ["LinearProbe"]

LOSSES = ("squared_hinge", "log_loss")
PRECONDITIONERS = ("auto", "cholesky", "jacobi")
# "auto" factors the D x D matrix up to this many features (with the intercept's): float64
# 8,192^2 is 0.5 GB and ~0.2 TFLOP to factor, still small beside the Hessian products saved.
CHOLESKY_MAX_FEATURES = 8192


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
        Newton (squared hinge) or L-BFGS (log loss) iterations at most.
    fit_intercept : bool, default=True
    intercept_scaling : float, default=1.0
        Value of the extra feature that carries the (regularised) intercept of
        the squared hinge loss, as in liblinear.
    preconditioner : {"auto", "cholesky", "jacobi"}, default="auto"
        Of the squared hinge's conjugate gradients: the Cholesky factor of
        ``I + 2C a X^T X`` or the Hessian's diagonal; ``"auto"`` takes the
        Cholesky factor up to 8,192 features. The solution is the same (to
        ``tol``); only the time differs.
    verbose : int, default=0
        1 prints the objective per iteration.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1 or n_classes, n_features), float32
    intercept_ : ndarray of shape (1 or n_classes,), float32
    n_iter_ : int
    objective_ : float
        The final objective value (sum over the one-vs-rest problems for the
        squared hinge).
    n_features_in_ : int

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_cnn.linear_probe import LinearProbe
    >>> X, y = load_digits(return_X_y=True)
    >>> probe = LinearProbe(C=0.01).fit(X[:1500] / 16, y[:1500])
    >>> round(probe.score(X[1500:] / 16, y[1500:]), 2)
    0.87
    """

    def __init__(self, loss="squared_hinge", *, C=1.0, tol=1e-4, max_iter=1000,
                 fit_intercept=True, intercept_scaling=1.0, preconditioner="auto",
                 verbose=0):
        self.loss = loss
        self.C = C
        self.tol = tol
        self.max_iter = max_iter
        self.fit_intercept = fit_intercept
        self.intercept_scaling = intercept_scaling
        self.preconditioner = preconditioner
        self.verbose = verbose

    def _check_params(self):
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.preconditioner not in PRECONDITIONERS:
            raise ValueError(f"preconditioner must be one of {PRECONDITIONERS}, "
                             f"got {self.preconditioner!r}")
        for name in ("C", "tol", "intercept_scaling"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or value <= 0:
                raise ValueError(f"{name} must be a float > 0, got {value!r}")
        check_positive_int(self.max_iter, "max_iter")

    def fit(self, X, y):
        """Fit on dense features ``X`` (n, n_features) and labels ``y``."""
        self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float32, order="C")
        check_classification_targets(y)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"LinearProbe needs samples of at least 2 classes; got 1 class "
                             f"({self.classes_[0]!r})")
        Xt = torch.from_numpy(X)
        # The intercept's feature: liblinear's intercept_scaling for the squared hinge;
        # 1 for the log loss, whose intercept is not regularised.
        scale = float(self.intercept_scaling) if self.loss == "squared_hinge" else 1.0
        if self.fit_intercept:
            Xt = torch.cat([Xt, torch.full((len(Xt), 1), scale)], dim=1)
        yt = torch.from_numpy(y_enc.astype(np.int64))
        with torch.no_grad() if self.loss == "squared_hinge" else torch.enable_grad():
            solve = _squared_hinge_newton if self.loss == "squared_hinge" else _log_loss_lbfgs
            extra = {}
            if self.loss == "squared_hinge":
                extra["cholesky"] = (self.preconditioner == "cholesky" or (
                    self.preconditioner == "auto" and Xt.shape[1] <= CHOLESKY_MAX_FEATURES))
            W, self.n_iter_, self.objective_, converged = solve(
                Xt, yt, len(self.classes_), float(self.C), float(self.tol), int(self.max_iter),
                self.fit_intercept, self.verbose, **extra)
        if not converged:
            warnings.warn(f"LinearProbe({self.loss!r}) did not converge in {self.max_iter} "
                          "iterations; raise max_iter", ConvergenceWarning, stacklevel=2)
        W = W.T.numpy().astype(np.float32)  # (K, D)
        if self.fit_intercept:
            self.coef_, self.intercept_ = W[:, :-1].copy(), W[:, -1] * np.float32(scale)
        else:
            self.coef_, self.intercept_ = W, np.zeros(len(W), dtype=np.float32)
        if len(self.classes_) == 2:
            # scikit-learn's binary layout: one row of scores for the positive class
            # classes_[1]: its one-vs-rest problem, or the difference of the two
            # multinomial rows (softmax of two scores = sigmoid of their difference).
            if self.loss == "squared_hinge":
                self.coef_, self.intercept_ = self.coef_[1:], self.intercept_[1:]
            else:
                self.coef_ = self.coef_[1:] - self.coef_[:1]
                self.intercept_ = self.intercept_[1:] - self.intercept_[:1]
        return self

    def decision_function(self, X):
        """Scores ``X @ coef_.T + intercept_``: (n,) for two classes, else (n, n_classes)."""
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, dtype=np.float32, order="C", reset=False)
        scores = torch.from_numpy(X) @ torch.from_numpy(self.coef_).T \
            + torch.from_numpy(self.intercept_)
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


def _squared_hinge_newton(X, y, K, C, tol, max_iter, fit_intercept, verbose, cholesky=False):
    """One-vs-rest L2-loss SVC, all classes as the columns of W (D, K)."""
    n, D = X.shape
    Y = -torch.ones(n, K)
    Y[torch.arange(n), y] = 1.0
    W = torch.zeros(D, K)
    Z = torch.zeros(n, K)
    # X^T @ M through a transposed view is ~4x slower than through a contiguous copy.
    XT = X.T.contiguous()
    precondition = _CholeskyPreconditioner(XT @ X, C) if cholesky else _JacobiPreconditioner(X, C)

    def objective(W, Z):
        margin = torch.clamp(1.0 - Y * Z, min=0.0).double()
        return 0.5 * (W.double() ** 2).sum(0) + C * (margin ** 2).sum(0)

    def gradient(W, Z):
        active = (Y * Z < 1.0).float()
        return W + 2.0 * C * (XT @ (active * (Z - Y))), active

    f = objective(W, Z)
    G, active = gradient(W, Z)
    g0 = G.norm(dim=0)
    done = torch.zeros(K, dtype=torch.bool)
    for it in range(1, max_iter + 1):
        gnorm = G.norm(dim=0)
        done = gnorm <= tol * g0
        if bool(done.all()):
            return W, it - 1, float(f.sum()), True
        precondition.update(active, done)
        P = _cg(lambda V: V + 2.0 * C * (XT @ (active * (X @ V))), -G, done, precondition)
        XP = X @ P
        slope = (G.double() * P.double()).sum(0)
        step = torch.ones(K, dtype=torch.float64)
        for _ in range(30):  # backtracking (Armijo) per class, on the cheap Z + s XP
            Z_try = Z + step.float() * XP
            W_try = W + step.float() * P
            f_try = objective(W_try, Z_try)
            ok = (f_try <= f + 1e-4 * step * slope) | done
            if bool(ok.all()):
                break
            step = torch.where(ok, step, step * 0.5)
        keep = done.float()
        W = keep * W + (1 - keep) * W_try
        Z = keep * Z + (1 - keep) * Z_try
        f = objective(W, Z)
        G, active = gradient(W, Z)
        if verbose:
            print(f"iter {it}: objective {float(f.sum()):.6f}, "
                  f"max relative gradient {float((G.norm(dim=0) / g0).max()):.2e}")
    return W, max_iter, float(f.sum()), bool((G.norm(dim=0) <= tol * g0).all())


class _JacobiPreconditioner:
    """``R -> R / diag(H)``, the generalised Hessian's diagonal ``1 + 2C X_A^2``, per class."""

    def __init__(self, X, C):
        self.X2T = (X * X).T.contiguous()
        self.C = C

    def update(self, active, done):
        self.inv_diag = 1.0 / (1.0 + 2.0 * self.C * (self.X2T @ active))

    def __call__(self, R):
        return self.inv_diag * R


class _CholeskyPreconditioner:
    """``R -> M^-1 R`` with ``M = I + 2C a X^T X`` for all classes, ``a`` the mean fraction
    of samples inside the margin of the classes not yet converged: the generalised
    Hessian ``I + 2C X_A^T X_A`` with ``X_A^T X_A`` approximated by ``a X^T X``. Factored
    in float64 (``M``'s condition number reaches ~1e7 on CIFAR features), refactored only
    when ``a`` moves by more than a quarter (a factorization costs ~D^3 / 3)."""

    def __init__(self, gram, C):
        self.gram = gram.double()
        self.C = C
        self.fraction = None

    def update(self, active, done):
        # called only while some class still runs (the Newton loop returns once all are done)
        fraction = max(float(active[:, ~done].mean()), 1e-3)
        if self.fraction is not None and 0.8 <= fraction / self.fraction <= 1.25:
            return
        self.fraction = fraction
        M = self.gram * (2.0 * self.C * fraction)
        M.diagonal().add_(1.0)
        L, info = torch.linalg.cholesky_ex(M)
        shift = 1.0
        while int(info) != 0:  # rounding in the float32 X^T X: a larger ridge still preconditions
            shift *= 10.0
            M.diagonal().add_(shift)
            L, info = torch.linalg.cholesky_ex(M)
        self.L = L.float()

    def __call__(self, R):
        return torch.cholesky_solve(R, self.L)


def _cg(hess_vec, B, frozen, precondition, max_iter=250, rel_tol=0.1):
    """Solve H p = b column by column: batched preconditioned conjugate gradients
    (``precondition(R)`` applies the inverse of an approximation of H), stopped at
    ``rel_tol * ||b||`` (inexact Newton, as liblinear's TRON)."""
    P = torch.zeros_like(B)
    R = B.clone()
    Zp = precondition(R)
    Dir = Zp.clone()
    rz = (R * Zp).sum(0)
    stop = rel_tol * B.norm(dim=0)
    active = ~frozen
    for _ in range(max_iter):
        active = active & (R.norm(dim=0) > stop)
        if not bool(active.any()):
            break
        HD = hess_vec(Dir)
        alpha = torch.where(active, rz / (Dir * HD).sum(0).clamp_min(1e-30),
                            torch.zeros_like(rz))
        P = P + alpha * Dir
        R = R - alpha * HD
        Zp = precondition(R)
        rz_new = (R * Zp).sum(0)
        beta = torch.where(active, rz_new / rz.clamp_min(1e-30), torch.zeros_like(rz))
        Dir = Zp + beta * Dir
        rz = rz_new
    return P


def _log_loss_lbfgs(X, y, K, C, tol, max_iter, fit_intercept, verbose):
    """Multinomial logistic regression with L-BFGS; the intercept row is not regularised."""
    n, D = X.shape
    W = torch.zeros(D, K, dtype=torch.float32, requires_grad=True)
    reg = torch.ones(D, 1)
    if fit_intercept:
        reg[-1] = 0.0
    opt = torch.optim.LBFGS([W], lr=1.0, max_iter=max_iter, tolerance_grad=0.0,
                            tolerance_change=0.0, history_size=20,
                            line_search_fn="strong_wolfe")
    state = {"g0": None, "calls": 0, "converged": False, "f": None}

    def closure():
        opt.zero_grad()
        logits = (X @ W).double()
        loss = C * torch.nn.functional.cross_entropy(logits, y, reduction="sum") \
            + 0.5 * ((W.double() ** 2) * reg.double()).sum()
        loss.backward()
        g = W.grad.norm()
        if state["g0"] is None:
            state["g0"] = g.item()
        state["calls"] += 1
        state["f"] = loss.item()
        if g.item() <= tol * state["g0"]:
            state["converged"] = True
            W.grad.zero_()  # L-BFGS stops on a zero gradient
        if verbose:
            print(f"evaluation {state['calls']}: objective {loss.item():.6f}, "
                  f"relative gradient {g.item() / state['g0']:.2e}")
        return loss

    opt.step(closure)
    n_iter = opt.state[opt._params[0]].get("n_iter", max_iter)
    return W.detach(), int(n_iter), float(state["f"]), bool(state["converged"])
