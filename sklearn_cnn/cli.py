"""The ``sklearn-cnn`` command line.

``sklearn-cnn train`` trains a preset on a dataset (the embedded digits by
default) and prints its per-epoch history and test accuracy;
``sklearn-cnn presets`` lists the architectures with their parameter counts.
"""

import argparse
import sys
import time
from pathlib import Path

__all__ = ["main"]


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


def _parser():
    p = argparse.ArgumentParser(
        prog="sklearn-cnn",
        description="Train and study convolutional networks with scikit-learn estimators.")
    sub = p.add_subparsers(dest="command")

    t = sub.add_parser("train", help="train a preset and print its learning curve and accuracy")
    t.add_argument("--dataset", default="digits",
                   help="digits (embedded, default), mnist, cifar10, or an image folder / tar")
    t.add_argument("--data-root", default=None,
                   help="torchvision data folder for mnist / cifar10 (default: the shared "
                        "copies named by SKLEARN_CNN_SHARED)")
    t.add_argument("--preset", default="default", help="architecture preset (see `presets`)")
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", default=None, help="folder for history.csv and results.md")

    sub.add_parser("presets", help="list architecture presets")
    return p


def _train(args):
    import pandas as pd

    from .architectures import list_architectures
    from .classifier import CNNClassifier
    from .datasets import load_train_test

    if args.preset not in list_architectures():
        raise CLIError(f"unknown preset {args.preset!r}; choose one of {list_architectures()}")
    if args.epochs < 1:
        raise CLIError("--epochs must be at least 1")
    try:
        X_tr, y_tr, X_te, y_te, names = load_train_test(args.dataset, root=args.data_root,
                                                        random_state=args.seed)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    clf = CNNClassifier(args.preset, max_epochs=args.epochs, batch_size=args.batch_size,
                        lr=args.lr, random_state=args.seed, verbose=1)
    start = time.perf_counter()
    try:
        clf.fit(X_tr, y_tr)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    seconds = time.perf_counter() - start
    result = pd.DataFrame([{
        "dataset": args.dataset, "preset": args.preset, "epochs": len(clf.history_),
        "n_train": len(y_tr), "n_test": len(y_te),
        "params": clf.summary().attrs["trainable_params"],
        "train_acc": clf.score(X_tr, y_tr), "test_acc": clf.score(X_te, y_te),
        "fit_seconds": round(seconds, 1),
    }])
    print()
    print(result.to_markdown(index=False, floatfmt=".4f"))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        clf.history_.to_csv(out / "history.csv", index=False)
        (out / "results.md").write_text(result.to_markdown(index=False, floatfmt=".4f") + "\n")
        print(f"\nwrote {out / 'history.csv'} and {out / 'results.md'}")


def _presets(args):
    import pandas as pd

    from .architectures import architecture_info, list_architectures

    rows = [{"preset": n, **architecture_info(n)} for n in list_architectures()]
    print(pd.DataFrame(rows).to_markdown(index=False))


def main(argv=None):
    """Entry point of the ``sklearn-cnn`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    command = args.command or "train"
    if args.command is None:
        args = _parser().parse_args(["train"] + list(argv or []))
    try:
        {"train": _train, "presets": _presets}[command](args)
    except CLIError as exc:
        print(f"sklearn-cnn: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
