"""The main job end to end: ``sklearn-cnn probe --dataset cifar10`` (defaults), per stage.

Runs the command in a fresh process (so its peak memory is its own) with an empty
``--out`` folder, then reads the ``stages.csv`` it writes: seconds of loading,
training, extraction, each probe's fitting and t-SNE, the total, and the peak
resident memory. Also records the test accuracy of the CNN and of each probe
(``probe.csv``). Absolute seconds need a quiet machine. Needs SKLEARN_CNN_SHARED
(data/cifar10-jpg.tar.gz). Usage:

    python benchmarks/bench_end_to_end.py [--extra "--fast-path none"] [--out results.json]
        [--write-doc docs/benchmarks.md] [--context TEXT] [--keep DIR]
        [--previous earlier.json --previous-label "at 3e880bd"]

``--keep DIR`` runs into ``DIR`` (new or empty) instead of a temporary folder and keeps it:
its ``cnn.ckpt/checkpoint.pt`` is what ``bench_linear_probe.py --checkpoint`` probes.
``--previous`` puts an earlier run's JSON (this script's ``--out``) beside this one, stage
by stage, in the page section: before / after in one table.
"""

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_checkpoint import add_output_args, announce_cpu, cpu_text, write_result  # noqa: E402

TITLE = "## The main job end to end (`bench_end_to_end.py`)"

# Issue #17's "before": the figures measured before this round's speed work (the defaults
# then: cifar_3x3 15 epochs, liblinear LinearSVC and 5-NN probes, t-SNE).
BEFORE = {"total_s": "over 40 min", "peak_rss_gb": 7.6}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--extra", default="", help="more options for sklearn-cnn probe")
    p.add_argument("--previous", default=None,
                   help="an earlier run's JSON (--out) to show beside this one")
    p.add_argument("--previous-label", default="before",
                   help="the earlier run's column heading, e.g. the commit it ran")
    p.add_argument("--keep", default=None,
                   help="run into this new or empty folder and keep it (default: a temporary "
                        "one)")
    add_output_args(p, context=True)
    args = p.parse_args(argv)
    if args.keep and Path(args.keep).exists() and (not Path(args.keep).is_dir()
                                                   or any(Path(args.keep).iterdir())):
        # a folder with a finished run would be resumed, not timed
        p.error(f"--keep {args.keep}: must be a new or empty folder")
    previous = None
    if args.previous:
        previous = json.loads(Path(args.previous).read_text())
        previous.pop("previous", None)
        previous["label"] = args.previous_label
    info = announce_cpu()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(args.keep) if args.keep else Path(tmp) / "probe"
        command = [sys.executable, "-m", "sklearn_cnn.cli", "probe", "--dataset", "cifar10",
                   "--out", str(run_dir), *shlex.split(args.extra)]
        print(" ".join(command), flush=True)
        start = time.perf_counter()
        subprocess.run(command, check=True)
        wall = time.perf_counter() - start
        stages = pd.read_csv(run_dir / "stages.csv")
        probes = pd.read_csv(run_dir / "probe.csv")
    peak = float(stages["peak_rss_gb"].dropna().iloc[-1])
    result = {"cpu": info, "extra": args.extra, "wall_s": wall, "peak_rss_gb": peak,
              "stages": stages.drop(columns="peak_rss_gb").to_dict("records"),
              "accuracy": probes[["layer", "probe", "test_acc"]].to_dict("records"),
              "context": args.context, "previous": previous}
    print(stages.to_string(index=False), flush=True)
    return write_result(result, args.out, args.write_doc, TITLE, section)


def _table(heads, key, value, rows, prev_rows, label, fmt):
    """Markdown rows ``key | value`` (and the earlier run's value beside it, when given)."""
    earlier = {row[key]: row[value] for row in prev_rows or []}
    cols = heads[:-1] + ([f"{heads[-1]} ({label})", f"{heads[-1]} (now)"] if prev_rows
                         else heads[-1:])
    n_key = heads[0].count("|") + 1
    lines = ["| " + " | ".join(cols) + " |",
             "| " + " | ".join(["---"] * n_key + ["---:"] * (len(cols) - len(heads) + 1)) + " |"]
    for row in rows:
        then = earlier.get(row[key])
        cells = ([fmt.format(then) if then is not None else "–"] if prev_rows else [])
        lines.append(f"| {row[key]} | " + " | ".join(cells + [fmt.format(row[value])]) + " |")
    return lines


def section(r):
    cpu = r["cpu"]
    prev = r.get("previous")
    label = prev["label"] if prev else None
    command = "sklearn-cnn probe --dataset cifar10" + (f" {r['extra']}" if r["extra"] else "")
    lines = [
        TITLE,
        "",
        f"`{command}` in a fresh process: seconds per stage (the run's `stages.csv`) and its peak "
        "resident memory. `python benchmarks/bench_end_to_end.py --write-doc docs/benchmarks.md`. "
        f"CPU: {cpu_text(cpu)}.",
        "",
        *_table(["stage", "seconds"], "stage", "seconds", r["stages"], prev and prev["stages"],
                 label, "{:.1f}"),
        "",
    ]
    lines += [f"Wall time of the command {r['wall_s']:.1f} s"
              + (f" ({label}: {prev['wall_s']:.1f} s)" if prev else "")
              + f"; peak memory {r['peak_rss_gb']:.2f} GB"
              + (f" ({label}: {prev['peak_rss_gb']:.2f} GB)" if prev else "")
              + f". Before this round's speed work (issue #17): {BEFORE['total_s']} and "
              f"{BEFORE['peak_rss_gb']} GB (goal: 10 min, 4 GB).", ""]
    rows = [{**a, "key": f"{a['layer']} | {a['probe']}"} for a in r["accuracy"]]
    prev_rows = prev and [{**a, "key": f"{a['layer']} | {a['probe']}"}
                          for a in prev["accuracy"]]
    lines += _table(["layer | probe", "test accuracy"], "key", "test_acc", rows, prev_rows,
                    label, "{:.4f}")
    context = (lambda run: (run["context"] or "a quiet machine (no other job)").rstrip(".") + ".")
    lines += ["", "A probe's stage is its fitting; scoring (foremost the kNN probe's predictions "
              "for 10,000 test and 10,000 training images) counts in the total only. "
              "Absolute seconds: " + context(r)
              + (f" {label}: " + context(prev) if prev else ""), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
