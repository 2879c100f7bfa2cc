"""The linear probe at report scale: LinearProbe vs liblinear on tf_cifar10 flatten features.

Features: the 4,096 ``flatten`` activations of a ``tf_cifar10`` CNNClassifier
(``--model cnn.joblib``, e.g. a layer_probes run's, or else one trained here for
``--epochs`` epochs with report 000's settings) on the shared CIFAR-10 copy,
standardised. Measured in one run:

1. on a training subsample of ``--subsample`` images, where liblinear's
   ``LinearSVC`` (C=1) converges: its objective, test accuracy and time against
   ``LinearProbe("squared_hinge", C=1)`` (targets: same objective within 1e-4
   relative, test accuracy within 0.5 points), and likewise scikit-learn's
   ``LogisticRegression`` against ``LinearProbe("log_loss")``;
2. on all 45,000 training images: LinearProbe's time and accuracy for both
   losses (target <= 2 min).

Every LinearProbe runs with both preconditioners of its conjugate gradients
(the Cholesky factor that ``"auto"`` picks here, and the diagonal) side by side
on the subsample, with the number of Hessian products each needed
(``n_hessian_products_``, machine-independent); on all 45,000 images the
diagonal runs only with ``--full-jacobi`` (the squared hinge's ran for over 17
minutes without finishing).

Prints the CPU model and ISA flags. Needs SKLEARN_CNN_SHARED. Usage:

    python benchmarks/bench_linear_probe.py [--model PATH | --checkpoint PATH] [--epochs 1]
        [--subsample 2000]
        [--out results.json] [--write-doc docs/benchmarks.md]
"""

import argparse
import ast
import json
import shlex
import sys
import time
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from sklearn_cnn import CNNClassifier, LinearProbe
from sklearn_cnn.datasets import load_train_test, shared_path
from sklearn_cnn.probing import layer_features

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_checkpoint import add_output_args, announce_cpu, cpu_text, write_result  # noqa: E402


def ovr_squared_hinge(coef, intercept, X, y, C, classes):
    """liblinear's primal objective (intercept regularised, intercept_scaling=1)."""
    total = 0.0
    for k, c in enumerate(classes):
        yk = np.where(y == c, 1.0, -1.0)
        z = X.astype(np.float64) @ coef[k].astype(np.float64) + float(intercept[k])
        total += 0.5 * (float(coef[k] @ coef[k]) + float(intercept[k]) ** 2) + \
            C * float(np.sum(np.maximum(0.0, 1.0 - yk * z) ** 2))
    return total


def counted_fit(probe, X, y):
    """Fit; return the fitted probe, its seconds and its Hessian products."""
    fitted, seconds = timed(lambda: probe.fit(X, y))
    return fitted, seconds, int(fitted.n_hessian_products_)


def kernels(D=4097, rows=11_000, columns=10, repeats=3):
    """The solver's two kernel choices, each beside the obvious call, best of ``repeats``:
    a column's preconditioner solve (``_cholesky_solve``, two triangular solves, vs
    ``torch.cholesky_solve``) for ``columns`` factors of size D, and an active set's Gram
    matrix (``_gram``, BLAS ssyrk, vs ``rows.T @ rows``)."""
    import torch

    from sklearn_cnn.linear_probe import _cholesky_solve, _gram

    def best(fn):
        return min(timed(fn)[1] for _ in range(repeats))

    g = torch.Generator().manual_seed(0)
    A = torch.randn(rows, D, generator=g)
    M = _gram(A)
    M.diagonal().add_(float(rows))
    L = torch.linalg.cholesky(M)
    R = torch.randn(D, 1, generator=g)
    return {
        "D": D, "rows": rows, "columns": columns,
        "cholesky_solve_s": best(lambda: [torch.cholesky_solve(R, L) for _ in range(columns)]),
        "triangular_solves_s": best(lambda: [_cholesky_solve(R, L) for _ in range(columns)]),
        "matmul_gram_s": best(lambda: A.T @ A),
        "ssyrk_gram_s": best(lambda: _gram(A)),
    }


def multinomial_log_loss(coef, intercept, X, y, C):
    """LogisticRegression's objective (intercept not regularised); y as 0..K-1."""
    Z = X.astype(np.float64) @ coef.T.astype(np.float64) + intercept.astype(np.float64)
    Z = Z - Z.max(axis=1, keepdims=True)
    nll = np.log(np.exp(Z).sum(axis=1)) - Z[np.arange(len(y)), y]
    return float(C * nll.sum() + 0.5 * np.sum(coef.astype(np.float64) ** 2))


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="a fitted tf_cifar10 CNNClassifier (joblib)")
    p.add_argument("--checkpoint", default=None,
                   help="a run's checkpoint.pt (finished or not): its network and weights")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--subsample", type=int, default=2000)
    add_output_args(p)
    p.add_argument("--skip-full", action="store_true",
                   help="only the subsample comparison, not the 45,000-image fits")
    p.add_argument("--skip-subsample", action="store_true",
                   help="only the fits on all 45,000 images (their own docs section: for a "
                        "second network's features, e.g. --checkpoint of a cifar_3x3 run)")
    p.add_argument("--full-jacobi", action="store_true",
                   help="also the diagonal preconditioner on all 45,000 images (slow)")
    p.add_argument("--features", default=None,
                   help="cache the standardised features in this .npz (reused when present)")
    args = p.parse_args(argv)
    # the page states the command that produced it (paths under $HOME shortened to ~)
    args.command = " ".join(["python benchmarks/bench_linear_probe.py"] + [
        shlex.quote(a).replace(str(Path.home()), "~") for a in
        (sys.argv[1:] if argv is None else argv)])
    if shared_path("data", "cifar10-jpg.tar.gz") is None:
        sys.exit("set SKLEARN_CNN_SHARED to the folder holding data/cifar10-jpg.tar.gz")
    info = announce_cpu()
    if args.features and Path(args.features).exists():
        cached = np.load(args.features, allow_pickle=False)
        return run(args, info, str(cached["source"]), cached["F_tr"], cached["y_fit"],
                   cached["F_te"], cached["y_te"])
    X_tr, y_tr, X_te, y_te, _ = load_train_test("cifar10", random_state=0)
    if args.model:
        clf = joblib.load(args.model)  # your own trusted file
        source = f"the network in {args.model}"
    elif args.checkpoint:
        import torch

        state = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
        # the run's own network (the saved parameters are reprs: read, never evaluated)
        net = ast.literal_eval(state["params"]["architecture"])
        few = np.random.RandomState(0).choice(len(y_tr), 64, replace=False)
        clf = CNNClassifier(net, max_epochs=0, verbose=0).fit(X_tr[few], y_tr[few])
        clf.module_.load_state_dict(state["module"])  # input standardisation included
        source = f"{net} after {len(state['history'])} epochs (a run's checkpoint)"
    else:
        clf = CNNClassifier("tf_cifar10", max_epochs=args.epochs, lr=1e-4, batch_size=128,
                            init="gaussian", init_std=0.01, random_state=0, verbose=1)
        clf.fit(X_tr, y_tr)
        source = f"tf_cifar10 trained {args.epochs} epoch(s) here (report 000's settings)"
    # The scale: 45,000 training images (the size of the network's training split),
    # a seeded random subset (the training split is stored class by class).
    n_train = 45_000
    keep = np.random.RandomState(0).permutation(len(y_tr))[:n_train]
    F_tr = layer_features(clf, X_tr[keep], ["flatten"])["flatten"]
    F_te = layer_features(clf, X_te, ["flatten"])["flatten"]
    y_fit = y_tr[keep]
    scaler = StandardScaler().fit(F_tr)
    F_tr, F_te = scaler.transform(F_tr).astype(np.float32), scaler.transform(F_te)
    F_te = F_te.astype(np.float32)
    if args.features:
        np.savez(args.features, F_tr=F_tr, y_fit=y_fit, F_te=F_te, y_te=y_te, source=source)
    return run(args, info, source, F_tr, y_fit, F_te, y_te)


def run(args, info, source, F_tr, y_fit, F_te, y_te):
    n_train = len(y_fit)
    idx = np.random.RandomState(0).choice(n_train, args.subsample, replace=False)
    Fs, ys = F_tr[idx], y_fit[idx]

    objectives = {"squared_hinge": lambda m: ovr_squared_hinge(m.coef_, m.intercept_, Fs, ys,
                                                               1.0, m.classes_),
                  "log_loss": lambda m: multinomial_log_loss(m.coef_, m.intercept_, Fs, ys,
                                                             1.0)}
    sub = {"n": args.subsample}
    for loss in () if args.skip_subsample else LOSSES:
        reference = REFERENCES[loss][1]()
        fitted, seconds = timed(lambda: reference.fit(Fs, ys))
        sub[loss] = {"reference": {"seconds": seconds, "objective": objectives[loss](fitted),
                                   "test_acc": float(fitted.score(F_te, y_te))}}
        for pre in PRECONDITIONERS:
            ours, ours_s, products = counted_fit(
                LinearProbe(loss, C=1.0, tol=1e-5, preconditioner=pre), Fs, ys)
            sub[loss][pre] = {"seconds": ours_s, "products": products,
                              "objective": objectives[loss](ours),
                              "test_acc": float(ours.score(F_te, y_te))}
            print(loss, pre, json.dumps(sub[loss][pre]), flush=True)
    print(json.dumps(sub, indent=1), flush=True)
    full = {"n": int(n_train), "features": int(F_tr.shape[1])}
    cases = [(loss, pre) for loss in LOSSES
             for pre in PRECONDITIONERS[:2 if args.full_jacobi else 1]]
    for loss, pre in () if args.skip_full else cases:
        probe, seconds, products = counted_fit(LinearProbe(loss, C=1.0, preconditioner=pre),
                                               F_tr, y_fit)
        key = f"{loss} ({pre})"
        full[key] = {"seconds": seconds, "n_iter": int(probe.n_iter_), "products": products,
                     "train_acc": float(probe.score(F_tr, y_fit)),
                     "test_acc": float(probe.score(F_te, y_te))}
        print(key, json.dumps(full[key]), flush=True)
    k = kernels()
    print("kernels", json.dumps(k), flush=True)
    result = {"cpu": info, "command": args.command, "source": source, "subsample": sub,
              "full": full, "kernels": k}
    if args.skip_subsample:
        return write_result(result, args.out, args.write_doc, FULL_ONLY_TITLE, full_section)
    return write_result(result, args.out, args.write_doc, TITLE, section)


LOSSES = ("squared_hinge", "log_loss")
# the converged scikit-learn solver each loss is checked against (on the subsample)
REFERENCES = {
    "squared_hinge": ("liblinear `LinearSVC` (tol 1e-5)",
                      lambda: LinearSVC(C=1.0, tol=1e-5, max_iter=100_000)),
    "log_loss": ("scikit-learn `LogisticRegression` (lbfgs, tol 1e-8)",
                 lambda: LogisticRegression(C=1.0, tol=1e-8, max_iter=20_000)),
}
TITLES = {"squared_hinge": "One-vs-rest squared hinge", "log_loss": "Multinomial log loss"}
PRECONDITIONERS = ("cholesky", "jacobi")
TITLE = "## Linear probe at report scale (`bench_linear_probe.py`)"
FULL_ONLY_TITLE = "## Linear probe on a second network's features (`bench_linear_probe.py --skip-subsample`)"


def comparison(loss, results):
    """The lines of one loss's subsample table: the reference beside both preconditioners."""
    ref = results["reference"]
    lines = [f"{TITLES[loss]}:", "",
             "| solver | objective | test accuracy | seconds | Hessian products |",
             "| --- | ---: | ---: | ---: | ---: |",
             f"| {REFERENCES[loss][0]} | {ref['objective']:.4f} | {ref['test_acc']:.4f} | "
             f"{ref['seconds']:.1f} | |"]
    for pre in PRECONDITIONERS:
        o = results[pre]
        lines.append(f"| `LinearProbe(\"{loss}\")` (tol 1e-5), {pre} preconditioner | "
                     f"{o['objective']:.4f} | {o['test_acc']:.4f} | {o['seconds']:.1f} | "
                     f"{o['products']:,} |")
    worst = max(abs(results[pre]["objective"] - ref["objective"]) for pre in PRECONDITIONERS)
    acc = max(abs(results[pre]["test_acc"] - ref["test_acc"]) for pre in PRECONDITIONERS)
    return lines + [
        "",
        f"Objectives differ from the reference's by at most {worst / ref['objective']:.1e} "
        f"(relative; a lower one is nearer the optimum); test accuracy by at most "
        f"{100 * acc:.2f} points (target ≤ 0.5).",
        ""]


def full_table(f):
    """The lines of the table of the fits on all training images."""
    lines = ["| probe | seconds | iterations | Hessian products | train accuracy | test accuracy |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    keys = [k for k in f if k not in ("n", "features")]
    lines += [f"| `LinearProbe` {k} | {f[k]['seconds']:.0f} | {f[k]['n_iter']} | "
              f"{f[k]['products'] or ''} | {f[k]['train_acc']:.4f} | {f[k]['test_acc']:.4f} |"
              for k in keys]
    if not keys:
        lines.append("| (not run: `--skip-full`) | | | | | |")
    return lines


def command(r):
    """The command that produced a result (results from before it was recorded: the
    default one)."""
    return r.get("command", "python benchmarks/bench_linear_probe.py "
                            "--write-doc docs/benchmarks.md")


def kernel_lines(r):
    """The kernel choices' line (results from before they were measured: none)."""
    k = r.get("kernels")
    if not k:
        return []
    return [f"Kernels, same run: {k['columns']} preconditioner solves with factors of size "
            f"{k['D']:,} take {k['triangular_solves_s']:.3f} s as two triangular solves vs "
            f"{k['cholesky_solve_s']:.3f} s with `torch.cholesky_solve` "
            f"({k['cholesky_solve_s'] / k['triangular_solves_s']:.1f}×); the Gram matrix of "
            f"{k['rows']:,} rows {k['ssyrk_gram_s']:.2f} s with BLAS ssyrk vs "
            f"{k['matmul_gram_s']:.2f} s as `rows.T @ rows` "
            f"({k['matmul_gram_s'] / k['ssyrk_gram_s']:.1f}×)."]


def full_section(r):
    f, cpu = r["full"], r["cpu"]
    return "\n".join([
        FULL_ONLY_TITLE, "",
        f"Standardised `flatten` features ({f['features']:,}) of {r['source']}, all "
        f"{f['n']:,} training images, C = 1, default tol 1e-4. `{command(r)}`. "
        f"CPU: {cpu_text(cpu)}.", ""] + full_table(f) + [""] + kernel_lines(r)
        + ["", ""])


def section(r):
    s, f, cpu = r["subsample"], r["full"], r["cpu"]
    lines = [
        TITLE,
        "",
        f"Standardised `flatten` features (4,096) of {r['source']}, CIFAR-10 (shared JPEG "
        f"copy). `{command(r)}`. CPU: {cpu_text(cpu)}.",
        "",
        f"On {s['n']:,} training images (where liblinear converges), C = 1. Hessian "
        "products: those of the conjugate gradients, all Newton steps.",
        "",
    ]
    for loss in LOSSES:
        lines += comparison(loss, s[loss])
    lines += [
        f"All {f['n']:,} training images × {f['features']:,} features (target ≤ 2 min; "
        "default tol 1e-4):",
        "",
    ] + full_table(f)
    lines += [""] + kernel_lines(r)
    lines += ["", "liblinear on all 45,000 images did not finish within an hour "
              "([layer_probes](experiments/layer_probes.md)). The diagonal preconditioner "
              "on all 45,000 images runs with `--full-jacobi` (one squared-hinge run was "
              "stopped unfinished after 17 minutes: compare the products on the subsample).",
              "", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
