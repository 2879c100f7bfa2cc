"""The main job end to end: ``sklearn-cnn probe --dataset cifar10`` (defaults), per stage.

Runs the command in a fresh process (so its peak memory is its own) with an empty
``--out`` folder, then reads the ``stages.csv`` it writes: seconds of loading,
training, extraction, each probe's fitting and t-SNE, the total, and the peak
resident memory. Also records the test accuracy of the CNN and of each probe
(``probe.csv``). Absolute seconds need a quiet machine. Needs SKLEARN_CNN_SHARED
(data/cifar10-jpg.tar.gz). Usage:

    python benchmarks/bench_end_to_end.py [--extra "--fast-path none"] [--out results.json]
        [--write-doc docs/benchmarks.md] [--context TEXT]
"""

import argparse
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
    add_output_args(p, context=True)
    args = p.parse_args(argv)
    info = announce_cpu()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "probe"
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
              "context": args.context}
    print(stages.to_string(index=False), flush=True)
    return write_result(result, args.out, args.write_doc, TITLE, section)


def section(r):
    cpu = r["cpu"]
    command = "sklearn-cnn probe --dataset cifar10" + (f" {r['extra']}" if r["extra"] else "")
    lines = [
        TITLE,
        "",
        f"`{command}` in a fresh process: seconds per stage (the run's `stages.csv`) and its peak "
        "resident memory. `python benchmarks/bench_end_to_end.py --write-doc docs/benchmarks.md`. "
        f"CPU: {cpu_text(cpu)}.",
        "",
        "| stage | seconds |",
        "| --- | ---: |",
    ]
    lines += [f"| {s['stage']} | {s['seconds']:.1f} |" for s in r["stages"]]
    lines += [
        f"| wall time of the command | {r['wall_s']:.1f} |",
        "",
        f"Peak memory {r['peak_rss_gb']:.2f} GB. Before this round's speed work (issue #17): "
        f"{BEFORE['total_s']} and {BEFORE['peak_rss_gb']} GB (goal: 10 min, 4 GB).",
        "",
        "| layer | probe | test accuracy |",
        "| --- | --- | ---: |",
    ]
    lines += [f"| {a['layer']} | {a['probe']} | {a['test_acc']:.4f} |" for a in r["accuracy"]]
    lines += ["", "Absolute seconds: " + (r["context"] or "a quiet machine (no other job)."), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
