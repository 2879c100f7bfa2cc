"""LinearProbe: liblinear's and LogisticRegression's objectives, solved in torch."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from sklearn_cnn import LinearProbe


@pytest.fixture(scope="module")
def digits_features():
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return X[:1200], y[:1200], X[1200:], y[1200:]


def ovr_squared_hinge(coef, intercept, X, y, C, classes):
    """liblinear's primal objective, intercept regularised (intercept_scaling=1)."""
    total = 0.0
    for k, c in enumerate(classes):
        yk = np.where(y == c, 1.0, -1.0)
        z = X @ coef[k] + intercept[k]
        total += 0.5 * (coef[k] @ coef[k] + intercept[k] ** 2) + \
            C * np.sum(np.maximum(0.0, 1.0 - yk * z) ** 2)
    return total


def multinomial_log_loss(coef, intercept, X, y, C):
    Z = X @ coef.T + intercept
    Z = Z - Z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(Z).sum(axis=1))
    return C * np.sum(lse - Z[np.arange(len(y)), y]) + 0.5 * np.sum(coef ** 2)


@pytest.mark.parametrize("preconditioner", ["cholesky", "jacobi"])
@pytest.mark.parametrize("C", [0.01, 1.0])
def test_squared_hinge_reaches_liblinears_optimum(digits_features, C, preconditioner):
    X, y, Xt, yt = digits_features
    ref = LinearSVC(C=C, tol=1e-8, max_iter=100_000, dual=False).fit(X, y)
    ours = LinearProbe(C=C, tol=1e-6, preconditioner=preconditioner).fit(X, y)
    f_ref = ovr_squared_hinge(ref.coef_, ref.intercept_, X, y, C, ref.classes_)
    f_ours = ovr_squared_hinge(ours.coef_.astype(float), ours.intercept_.astype(float), X, y,
                               C, ours.classes_)
    assert f_ours == pytest.approx(f_ref, rel=1e-6)
    assert ours.objective_ == pytest.approx(f_ref, rel=1e-5)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=2e-3)
    assert (ours.predict(Xt) == ref.predict(Xt)).mean() == 1.0


@pytest.mark.parametrize("C", [0.01, 1.0])
def test_log_loss_reaches_logistic_regressions_optimum(digits_features, C):
    X, y, Xt, yt = digits_features
    ref = LogisticRegression(C=C, tol=1e-10, max_iter=10_000).fit(X, y)
    ours = LinearProbe("log_loss", C=C, tol=1e-5).fit(X, y)
    f_ref = multinomial_log_loss(ref.coef_, ref.intercept_, X, y, C)
    f_ours = multinomial_log_loss(ours.coef_.astype(float), ours.intercept_.astype(float), X,
                                  y, C)
    assert f_ours == pytest.approx(f_ref, rel=1e-5)
    assert (ours.predict(Xt) == ref.predict(Xt)).mean() >= 0.995
    np.testing.assert_allclose(ours.predict_proba(Xt), ref.predict_proba(Xt), atol=1e-2)


def test_binary_problem_has_scikit_learns_layout(digits_features):
    X, y = digits_features[0], digits_features[1]
    mask = y < 2
    ref = LinearSVC(dual=False, tol=1e-8).fit(X[mask], y[mask])
    ours = LinearProbe(tol=1e-6).fit(X[mask], y[mask])
    assert ours.coef_.shape == ref.coef_.shape == (1, 64)
    np.testing.assert_allclose(ours.decision_function(X[mask][:20]),
                               ref.decision_function(X[mask][:20]), atol=5e-3)
    assert list(ours.classes_) == [0, 1]


@pytest.mark.parametrize("C", [0.01, 1.0])
def test_binary_log_loss_is_logistic_regressions_objective(digits_features, C):
    """Two classes: one row, the binomial LogisticRegression(C) (not 2C: the two softmax
    rows share the penalty)."""
    X, y = digits_features[0], digits_features[1]
    mask = y < 2
    ref = LogisticRegression(C=C, tol=1e-10, max_iter=10_000).fit(X[mask], y[mask])
    ours = LinearProbe("log_loss", C=C, tol=1e-6).fit(X[mask], y[mask])
    assert ours.coef_.shape == ref.coef_.shape == (1, 64)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=2e-3)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=2e-3)
    z = X[mask] @ ref.coef_[0] + ref.intercept_[0]
    f_ref = C * np.sum(np.logaddexp(0, -np.where(y[mask] == 1, 1, -1) * z)) \
        + 0.5 * ref.coef_[0] @ ref.coef_[0]
    assert ours.objective_ == pytest.approx(f_ref, rel=1e-5)


def test_string_labels_and_max_iter_warning(digits_features):
    X, y = digits_features[0], digits_features[1]
    labels = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven",
                       "eight", "nine"])[y]
    with pytest.warns(ConvergenceWarning, match="did not converge in 1 iterations"):
        probe = LinearProbe(max_iter=1).fit(X, labels)
    assert set(probe.predict(X[:50])) <= set(labels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LinearProbe().fit(X, labels)


@pytest.mark.parametrize("kw, match", [
    (dict(loss="hinge"), "loss must be one of"),
    (dict(C=0), "C must be a float > 0"),
    (dict(tol=-1.0), "tol must be a float > 0"),
    (dict(max_iter=0), "max_iter must be an int >= 1"),
    (dict(preconditioner="ilu"), "preconditioner must be one of"),
])
def test_bad_parameters_are_clear_errors(digits_features, kw, match):
    with pytest.raises(ValueError, match=match):
        LinearProbe(**kw).fit(*digits_features[:2])
    with pytest.raises(TypeError, match="standardize must be a bool, got 'yes'"):
        LinearProbe(standardize="yes").fit(*digits_features[:2])


@pytest.mark.parametrize("preconditioner", ["cholesky", "jacobi"])
@pytest.mark.parametrize("loss", ["squared_hinge", "log_loss"])
def test_standardize_is_a_standard_scaler_in_front_without_its_copy(loss, preconditioner,
                                                                    monkeypatch):
    """standardize=True solves the problem of StandardScaler + LinearProbe (same objective
    and scores, a constant feature included) on the raw features, given as one layer's
    column block of a wider array, and copies neither them nor their standardised
    version."""
    from sklearn.pipeline import make_pipeline

    from sklearn_cnn import linear_probe

    X, y = load_digits(return_X_y=True)  # raw pixels 0..16, column 0 constant
    wide = np.hstack([np.ones((len(X), 3)), X, np.ones((len(X), 2))]).astype(np.float32)
    block = wide[:, 3:3 + X.shape[1]]  # not C-contiguous: unit-stride rows of a wider array
    kw = dict(loss=loss, C=0.05, tol=1e-6, preconditioner=preconditioner)
    scaled = make_pipeline(StandardScaler(), LinearProbe(**kw)).fit(block[:1200], y[:1200])
    seen = []
    design = linear_probe._Design
    monkeypatch.setattr(linear_probe, "_Design", lambda X, *a: seen.append(X) or design(X, *a))
    probe = LinearProbe(standardize=True, **kw).fit(block[:1200], y[:1200])
    assert np.shares_memory(seen[0].numpy(), wide)  # the caller's array, read in place
    np.testing.assert_allclose(probe.objective_, scaled[-1].objective_, rtol=1e-5)
    np.testing.assert_allclose(probe.decision_function(block[1200:]),
                               scaled.decision_function(block[1200:]), rtol=1e-3, atol=1e-3)
    assert (probe.predict(block[1200:]) == scaled.predict(block[1200:])).mean() > 0.995
    np.testing.assert_allclose(probe.mean_, scaled[0].mean_, rtol=1e-6)
    np.testing.assert_allclose(probe.scale_, scaled[0].scale_, rtol=1e-5)
    assert probe.scale_[0] == 1.0  # the constant pixel: centred only, as StandardScaler


def test_predict_proba_only_for_log_loss(digits_features):
    probe = LinearProbe().fit(*digits_features[:2])
    assert not hasattr(probe, "predict_proba")
    with pytest.raises(AttributeError, match="has no attribute 'predict_proba'"):
        probe.predict_proba(digits_features[2])


@pytest.mark.parametrize("loss, C", [("squared_hinge", 1.0), ("log_loss", 10.0)])
def test_cholesky_preconditioner_cuts_hessian_products(digits_features, loss, C):
    """The Cholesky factor of diag(ridge) + c X^T X makes the conjugate gradients cheaper
    than the diagonal on correlated features (the same optimum either way), for both
    losses, and "auto" picks it for few features."""
    X, y = digits_features[0], digits_features[1]
    # Correlated features (random mixtures of the pixels): a badly conditioned Hessian.
    X = X @ np.random.RandomState(0).normal(size=(64, 256)) / 8.0
    fits = {key: LinearProbe(loss, C=C, tol=1e-6, preconditioner=key).fit(X, y)
            for key in ("cholesky", "jacobi", "auto")}
    products = {key: fit.n_hessian_products_ for key, fit in fits.items()}
    # when written: squared hinge 1,019 vs 1,852; log loss 183 vs 337
    assert products["cholesky"] * 1.5 < products["jacobi"]
    assert products["auto"] == products["cholesky"]
    assert fits["cholesky"].objective_ == pytest.approx(fits["jacobi"].objective_, rel=1e-5)


def test_own_factors_of_the_active_sets_cut_hessian_products(digits_features, monkeypatch):
    """Well separated one-vs-rest columns (few samples inside each margin) get the exact
    Hessian of their own active set as preconditioner: the same optimum as with the shared
    mean-curvature factor only (no memory for own factors), in fewer Hessian products."""
    from sklearn_cnn import linear_probe

    X, y = digits_features[0], digits_features[1]
    X = X @ np.random.RandomState(0).normal(size=(64, 256)) / 8.0  # correlated features
    own = LinearProbe(C=1.0, tol=1e-6, preconditioner="cholesky").fit(X, y)
    monkeypatch.setattr(linear_probe, "ACTIVE_SET_MAX_BYTES", 0)
    shared = LinearProbe(C=1.0, tol=1e-6, preconditioner="cholesky").fit(X, y)
    assert own.objective_ == pytest.approx(shared.objective_, rel=1e-6)
    np.testing.assert_allclose(own.coef_, shared.coef_, atol=1e-3)
    # when written: 97 vs 977 (17 and 20 Newton steps); refactored on every change: 48 vs 977
    assert own.n_hessian_products_ * 3 < shared.n_hessian_products_


def test_gram_lower_triangle_updates_in_place_and_is_what_cholesky_reads():
    """The own Gram matrices are BLAS ssyrk's lower triangle, updated in place by the rows
    that enter or leave; the factorizations read only that triangle (torch's LAPACK
    ``potrf`` with ``uplo="L"``): a torch that read the other would fail here."""
    import torch

    from sklearn_cnn.linear_probe import _cholesky_solve, _fortran, _gram

    rng = np.random.RandomState(0)
    X = torch.from_numpy(rng.normal(size=(300, 40)).astype(np.float32))
    enter, leave = X[:30] * 0.5, X[200:260]
    gram = _gram(X)
    assert gram.shape == (40, 40)
    same = _gram(leave, alpha=-1.0, into=_gram(enter, into=gram))
    assert same is gram  # in place
    want = X.T @ X + enter.T @ enter - leave.T @ leave
    np.testing.assert_allclose(torch.tril(gram), torch.tril(want), rtol=1e-4, atol=1e-3)
    assert _gram(X[:0]).abs().max() == 0  # no rows: zeros
    M = _fortran(gram + torch.triu(torch.full((40, 40), 7.0), 1))  # garbage above
    M.diagonal().add_(1.0)
    L = torch.linalg.cholesky(M)
    full = want + torch.eye(40)
    np.testing.assert_allclose(L, torch.linalg.cholesky(full), rtol=1e-3, atol=1e-4)
    R = torch.from_numpy(rng.normal(size=(40, 3)).astype(np.float32))
    np.testing.assert_allclose(_cholesky_solve(R, L), torch.cholesky_solve(R, L),
                               rtol=1e-4, atol=1e-5)


def test_standardize_keeps_its_precision_far_from_the_origin():
    """Features whose mean is 1,000 standard deviations from 0: centring after a float32
    product would cancel away the signal, so the solver standardises each block of rows
    first and decision_function centres before its product; the result is the pipeline's.
    Unaligned / odd-strided input is copied, not read in place; a refit without
    standardize drops the scaler's attributes."""
    import warnings as _warnings

    from sklearn.pipeline import make_pipeline

    from sklearn_cnn.linear_probe import _Design, _unit_stride_rows

    rng = np.random.RandomState(0)
    X, y = load_digits(return_X_y=True)
    X = (X[:, 1:] + rng.normal(size=(len(X), 63)) * 0.1).astype(np.float32) * 0.01 + 1000.0
    kw = dict(C=0.05, tol=1e-5)
    scaled = make_pipeline(StandardScaler(), LinearProbe(**kw)).fit(X[:1200], y[:1200])
    with _warnings.catch_warnings():
        _warnings.simplefilter("error", ConvergenceWarning)
        probe = LinearProbe(standardize=True, **kw).fit(X[:1200], y[:1200])
    np.testing.assert_allclose(probe.objective_, scaled[-1].objective_, rtol=1e-4)
    assert (probe.predict(X[1200:]) == scaled.predict(X[1200:])).mean() > 0.99
    import torch
    mean, std = probe.mean_, probe.scale_
    design = _Design(torch.from_numpy(X[:1200]), 1.0, torch.from_numpy(mean).float(),
                     torch.from_numpy(1 / std).float())
    assert design.blockwise
    # (centred at the float32 mean the design holds: the intercept absorbs its rounding)
    exact = np.hstack([(X[:1200].astype(np.float64) - mean.astype(np.float32)) / std,
                       np.ones((1200, 1))])
    U = rng.normal(size=(1200, 3))
    np.testing.assert_allclose(design.xtu(torch.from_numpy(U).float()), exact.T @ U,
                               rtol=1e-4, atol=1e-3)
    packed = np.zeros(20, dtype=[("a", "u1"), ("f", "f4", (5,))])["f"]  # strides (21, 4)
    assert not np.shares_memory(_unit_stride_rows(packed), packed)
    probe.set_params(standardize=False).fit(X[:1200], y[:1200])
    assert not hasattr(probe, "mean_") and not hasattr(probe, "scale_")


@pytest.mark.parametrize("standardized", [False, True])
@pytest.mark.parametrize("scale", [None, 2.5])
def test_design_is_the_bordered_matrix_without_building_it(scale, standardized, monkeypatch):
    """``[(X - mean) * inv_std, scale]``'s products and masked Gram matrices, block by
    block: no copy of X (737 MB at 45,000 x 4,096) nor of X[mask] is made whole."""
    import torch

    from sklearn_cnn import linear_probe
    from sklearn_cnn.linear_probe import _Design

    rng = np.random.RandomState(0)
    X = torch.from_numpy(rng.normal(3.0, 2.0, size=(300, 7)).astype(np.float32))
    mean = inv_std = None
    if standardized:
        mean, inv_std = X.mean(0), 1 / X.std(0)
    Xs = X if mean is None else (X - mean) * inv_std
    full = Xs if scale is None else torch.cat([Xs, torch.full((300, 1), scale)], dim=1)
    design = _Design(X, scale, mean, inv_std)
    assert design.shape == tuple(full.shape)
    V = torch.from_numpy(rng.normal(size=(full.shape[1], 3)).astype(np.float32))
    U = torch.from_numpy(rng.normal(size=(300, 3)).astype(np.float32))
    np.testing.assert_allclose(design.xv(V), full @ V, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(design.xtu(U), full.T @ U, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(design.squared().xtu(U), (full * full).T @ U, rtol=1e-5,
                               atol=1e-4)
    blocks = []
    gram = linear_probe._gram
    monkeypatch.setattr(linear_probe, "_gram", lambda rows, **kw: blocks.append(len(rows))
                        or gram(rows, **kw))
    monkeypatch.setattr(linear_probe, "_BLOCK_ROWS", 64)
    mask = torch.from_numpy(rng.rand(300) < 0.6)
    got = design.gram(mask)
    want = full[mask].T @ full[mask]
    np.testing.assert_allclose(torch.tril(got), torch.tril(want), rtol=1e-4, atol=1e-3)
    assert max(blocks) == 64 and sum(blocks) == int(mask.sum())
    less = design.gram(mask[:300].logical_not(), alpha=-1.0, into=design.gram())
    np.testing.assert_allclose(torch.tril(less), torch.tril(want), rtol=1e-4, atol=1e-3)


def test_packed_factor_solves_like_cholesky_and_leaves_the_gram_as_it_was():
    """A column's own Gram (lower triangle, diagonal) and its factor (strict upper triangle,
    unit-scaled) share one matrix: the solve equals ``cholesky_solve`` and the Gram updates
    of BLAS ssyrk, which touch only the lower triangle, keep the factor intact."""
    import torch

    from sklearn_cnn.linear_probe import _Design, _packed_solve, _pack_factor, _gram

    rng = np.random.RandomState(0)
    X = torch.from_numpy(rng.normal(size=(300, 40)).astype(np.float32))
    S = _Design(X).gram()
    gram = torch.tril(S).clone()
    M = S * 0.5
    M.diagonal().add_(1.0)
    L = torch.linalg.cholesky(M)
    d = _pack_factor(L.clone(), S)  # it scales the factor it is given in place
    assert torch.equal(torch.tril(S), gram)  # the Gram untouched
    R = torch.from_numpy(rng.normal(size=(40, 2)).astype(np.float32))
    want = torch.cholesky_solve(R, L)
    np.testing.assert_allclose(_packed_solve(R, S, d), want, rtol=1e-4, atol=1e-5)
    _gram(X[:30], into=S)  # an update: the factor in the strict upper triangle survives
    np.testing.assert_allclose(_packed_solve(R, S, d), want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(torch.tril(S), torch.tril(gram + X[:30].T @ X[:30]),
                               rtol=1e-4, atol=1e-3)
