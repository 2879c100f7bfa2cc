"""The ``sklearn-cnn`` command line.

* ``sklearn-cnn probe`` (the main job, also what a bare ``sklearn-cnn`` runs):
  train a preset, probe every layer with LinearSVC and KNN, write tables and
  figures;
* ``sklearn-cnn train``: train a preset and print its history and accuracy;
* ``sklearn-cnn list`` / ``sklearn-cnn reproduce NAME``: the reference experiments;
* ``sklearn-cnn presets``: the architectures with their parameter counts.

Errors in the user's input (options, ``--set`` values, ``--out``, a missing
data set, parameters checked before any work) are printed as one line with
exit status 2. Anything else is an internal error: its traceback is shown
(exit status 1). ``--debug`` shows the traceback of input errors too.
"""

import argparse
import ast
import sys
import tempfile
import time
import traceback
from pathlib import Path

from .experiments import COMPLETE, mark_complete

__all__ = ["main"]


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


def _user_errors():
    """Exception classes that mean "bad input", not "bug" (see the module docstring)."""
    from .datasets import DataNotFoundError
    from .experiments import ExperimentInputError

    return (CLIError, DataNotFoundError, ExperimentInputError)


def _prepare_out(path):
    """Create the output folder ``path`` and check it is writable, before any work."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {path}: is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):  # permission bits do not bind root: try it
            pass
    except OSError as exc:
        raise CLIError(f"--out {path}: cannot write there ({exc.strerror or exc})") from None
    return out


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise CLIError(f"{message} (see `{self.prog} --help`)")


def _csv(text):
    return [t.strip() for t in text.split(",") if t.strip()]


def _fast_path_arg(text):
    from ._fast_path import FAST_PATHS, check_fast_path

    value = None if text == "none" else text if text == "auto" else _csv(text)
    try:
        check_fast_path(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected none, auto or a comma-separated list of {', '.join(FAST_PATHS)}, got "
            f"{text!r}") from None
    return value


def _add_data_args(parser, preset, epochs):
    parser.add_argument("--dataset", default="digits",
                        help="digits (embedded, default), mnist, cifar10, or an image folder / "
                             "tar")
    parser.add_argument("--data-root", default=None,
                        help="torchvision data folder for mnist / cifar10 (default: the shared "
                             "copies named by SKLEARN_CNN_SHARED)")
    parser.add_argument("--preset", default=preset, help="architecture preset (see `presets`)")
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fast-path", type=_fast_path_arg, default="auto",
                        help="auto (default: channels_last where a short timing before "
                             "training finds it faster, printed), none, or a comma-separated "
                             "list of channels_last, compile, bf16 (see the user guide)")


def _parser():
    # --debug on the top-level parser and on every command, so either order works
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true",
                        help="print the traceback of every error, input errors included")
    p = _Parser(
        prog="sklearn-cnn", parents=[common],
        description="Train and study convolutional networks with scikit-learn estimators.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    def add(name, **kwargs):
        return sub.add_parser(name, parents=[common], **kwargs)

    pr = add("probe", help="train a CNN and probe every layer (the main job)")
    _add_data_args(pr, "cifar_3x3", 15)
    pr.add_argument("--layers", type=_csv, default=None,
                    help="comma-separated layer names (default: flatten and every layer after)")
    pr.add_argument("--probes", type=_csv, default=["linear_svc", "knn"],
                    help="comma-separated probes: linear_svc, logistic, knn")
    pr.add_argument("--quick", action="store_true",
                    help="a seconds-long run on a subset of the embedded digits (2 epochs)")
    pr.add_argument("--no-tsne", action="store_true", help="skip the t-SNE figures")
    pr.add_argument("--out", default=None,
                    help="output folder (default ./sklearn-cnn-results/<timestamp>)")

    ls = add("list", help="list the reference experiments")
    _add_table_args(ls)
    rp = add("reproduce", help="run one reference experiment")
    rp.add_argument("name")
    rp.add_argument("--quick", action="store_true",
                    help="a seconds-long run on a subset of the embedded digits (1-2 epochs)")
    rp.add_argument("--out", default=None)
    rp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override an experiment parameter, e.g. --set epochs=3")

    t = add("train", help="train a preset and print its learning curve and accuracy")
    _add_data_args(t, "default", 10)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--out", default=None, help="folder for history.csv and results.md")

    ps = add("presets", help="list architecture presets")
    _add_table_args(ps)
    return p


def _add_table_args(parser):
    parser.add_argument("--format", choices=["text", "markdown", "csv"], default="text",
                        help="text (default): wrapped to the terminal width; markdown or csv: "
                             "the full table")
    parser.add_argument("--wide", action="store_true",
                        help="the full markdown table, however wide (same as --format markdown)")


def _print_table(df, args, key_cols):
    """Print ``df`` as the user asked: wrapped text (``key_cols`` on the first line of an
    entry, every other column wrapped below it), markdown or CSV."""
    import shutil
    import textwrap

    fmt = "markdown" if args.wide else args.format
    if fmt == "csv":
        print(df.to_csv(index=False), end="")
        return
    if fmt == "markdown":
        print(df.to_markdown(index=False))
        return
    width = max(40, min(shutil.get_terminal_size((100, 24)).columns, 100))
    keys = df[key_cols].astype(str)
    pads = [keys[c].str.len().max() for c in key_cols]
    for i, row in df.iterrows():
        print("  ".join(keys.at[i, c].ljust(pad) for c, pad in zip(key_cols, pads)).rstrip())
        for col in df.columns:
            if col in key_cols or row[col] is None or row[col] != row[col]:  # None / NaN
                continue
            print(textwrap.fill(f"{col}: {row[col]}", width=width, initial_indent="    ",
                                subsequent_indent="      "))


def _train(args):
    import pandas as pd

    from .architectures import list_architectures
    from .classifier import CNNClassifier
    from .datasets import load_train_test

    if args.preset not in list_architectures():
        raise CLIError(f"unknown preset {args.preset!r}; choose one of {list_architectures()}")
    if args.epochs < 1:
        raise CLIError("--epochs must be at least 1")
    out = _prepare_out(args.out) if args.out else None
    clf = CNNClassifier(args.preset, max_epochs=args.epochs, batch_size=args.batch_size,
                        lr=args.lr, random_state=args.seed, verbose=1,
                        fast_path=args.fast_path)
    try:  # --batch-size, --lr: the checks fit makes first, made before loading the data
        clf._check_training_params()
    except (TypeError, ValueError) as exc:
        raise CLIError(str(exc).replace("batch_size", "--batch-size")) from None
    try:
        X_tr, y_tr, X_te, y_te, names = load_train_test(args.dataset, root=args.data_root,
                                                        random_state=args.seed)
    except (FileNotFoundError, ValueError) as exc:  # about the --dataset the user named
        raise CLIError(str(exc)) from None
    start = time.perf_counter()
    clf.fit(X_tr, y_tr)
    seconds = time.perf_counter() - start
    result = pd.DataFrame([{
        "dataset": args.dataset, "preset": args.preset, "epochs": len(clf.history_),
        "n_train": len(y_tr), "n_test": len(y_te),
        "params": clf.summary().attrs["trainable_params"],
        "train_acc": clf.score(X_tr, y_tr), "test_acc": clf.score(X_te, y_te),
        "fit_seconds": round(seconds, 1),
    }])
    print()
    print(markdown(result))
    if out is not None:
        from .experiments import write_table

        write_table(clf.history_, out, "history")
        write_table(result, out, "results")
        print(f"wrote history.csv/.md and results.csv/.md to {out}")


def markdown(table):
    from .experiments import markdown as to_markdown

    return to_markdown(table)


def _out_dir(args, name):
    if args.out:
        return Path(args.out)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("sklearn-cnn-results") / f"{stamp}-{name}"


def _probe(args):
    from .architectures import list_architectures
    from .experiments.probing import run_probe

    if args.preset not in list_architectures():
        raise CLIError(f"unknown preset {args.preset!r}; choose one of {list_architectures()}")
    if args.epochs < 1:
        raise CLIError("--epochs must be at least 1")
    if args.quick and args.dataset != "digits":  # one meaning of --quick, as in reproduce
        raise CLIError(f"--quick is a seconds-long run on the embedded digits; it does not "
                       f"combine with --dataset {args.dataset} (drop one of them)")
    out = _prepare_out(_out_dir(args, "probe"))
    (out / COMPLETE).unlink(missing_ok=True)
    _say_where(args, out)
    # run_probe raises DataNotFoundError / ExperimentInputError for bad input before training
    table = run_probe(out, dataset=args.dataset, preset=args.preset, epochs=args.epochs,
                      layers=args.layers, probes=args.probes, seed=args.seed,
                      quick=args.quick, tsne=not args.no_tsne, data_root=args.data_root,
                      fast_path=args.fast_path)
    mark_complete(out, {"command": "probe", **vars(args)})
    print()
    print(markdown(table))
    print(f"wrote {', '.join(sorted(p.name for p in out.iterdir()))} to {out}")


def _say_where(args, out):
    """Tell where the results go and how to continue the run if it is stopped."""
    if args.out is None:
        print(f"writing to {out}; if stopped, run the same command with --out {out} to "
              "continue")


def _list(args):
    from .experiments import list_experiments

    _print_table(list_experiments(), args, ["name"])


def _parse_set(item):
    """``KEY=VALUE`` -> (key, [candidate values]): the Python literal, then the raw text."""
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise CLIError(f"--set expects KEY=VALUE, got {item!r}")
    try:
        return key, [ast.literal_eval(text), text]
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return key, [text]  # a plain string such as a dataset name


def _reproduce(args):
    from .experiments import ExperimentInputError, check_experiment_params, run_experiment

    params = {}
    for item in args.set:
        key, candidates = _parse_set(item)
        error = None
        for value in candidates:  # "dataset=123" is the str '123' where a str is expected
            try:
                params.update(check_experiment_params(args.name, {key: value}))
                break
            except ExperimentInputError as exc:
                error = error or exc  # the literal's error says more than the text's
        else:
            raise CLIError(f"--set {item}: {error}")
    check_experiment_params(args.name, params, quick=args.quick)  # also with no --set
    out = _prepare_out(_out_dir(args, args.name))
    _say_where(args, out)
    table = run_experiment(args.name, out, quick=args.quick, **params)
    print(markdown(table))
    print(f"wrote results to {out}")


def _presets(args):
    import pandas as pd

    from .architectures import architecture_info, list_architectures

    rows = [{"preset": n, **architecture_info(n)} for n in list_architectures()]
    table = pd.DataFrame(rows)
    table["params"] = table["params"].map(
        lambda v: "depends on the input" if v != v else f"{int(v):,}")
    _print_table(table[["preset", "params", "doc", "source"]], args, ["preset", "params"])


def main(argv=None):
    """Entry point of the ``sklearn-cnn`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"probe": _probe, "train": _train, "list": _list, "reproduce": _reproduce,
                "presets": _presets}
    debug = "--debug" in argv
    try:
        rest = argv[1:] if argv[:1] == ["--debug"] else argv
        if not rest or rest[0].startswith("-") and rest[0] not in ("-h", "--help"):
            argv = ["probe"] + argv  # a bare `sklearn-cnn` runs the main job
        args = _parser().parse_args(argv)
        commands[args.command](args)
    except Exception as exc:
        if not isinstance(exc, _user_errors()):
            raise  # a bug, or a failure while working: keep the traceback
        if debug:
            traceback.print_exc()
        print(f"sklearn-cnn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Nothing is recorded as finished: no COMPLETE marker, no result of the
        # interrupted fit; its checkpoint holds the last completed epoch.
        print("\nsklearn-cnn: interrupted. The last completed epoch is saved: run the same "
              "command (same --out) again to continue.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
