"""Does ``fast_path="auto"`` pick the faster layout? Per report network, side by side.

For every report network at its report's batch size (random 32x32x3 images;
28x28x1 for mnist_5x5), in one run:

* the median training step of ``CNNClassifier.fit`` with ``fast_path=None``
  (contiguous NCHW) and with ``fast_path="channels_last"`` (NHWC), interleaved,
  ``--repeats`` fits each, and the measured speed-up;
* what ``fast_path="auto"``'s trial (:func:`sklearn_cnn._fast_path.choose_fast_path`)
  chooses for the same network and batch, how long the trial takes, and whether
  the choice is the faster layout (a measured speed-up within 5 % of 1 is a tie:
  either choice is right).

Usage (``OMP_NUM_THREADS`` as the runs it stands for, e.g. 1 for the background jobs):

    python benchmarks/bench_auto_fast_path.py [--steps 12] [--repeats 2] [--nets NAME ...]
        [--out results.json] [--write-doc docs/benchmarks.md] [--context TEXT]
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from sklearn_cnn import CNNClassifier, _fast_path
from sklearn_cnn.experiments.architectures import REPORT_NETS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_checkpoint import StepTimer, add_output_args, announce_cpu, write_result  # noqa: E402

TITLE = "## What `fast_path=\"auto\"` chooses (`bench_auto_fast_path.py`)"


def step_seconds(net, X, y, kw, fast_path):
    timer = StepTimer()
    clf = CNNClassifier(net, max_epochs=1, validation_fraction=None, random_state=0,
                        verbose=0, fast_path=fast_path, callbacks=[("timer", timer)], **kw)
    clf.fit(X, y)
    return statistics.median(dict(clf.net_.callbacks_)["timer"].times_[2:]), clf


def case(net, steps, repeats):
    _, params = REPORT_NETS[net]
    batch = params.get("batch_size", 32)
    shape = (28, 28, 1) if net == "mnist_5x5" else (32, 32, 3)
    n = batch * (steps + 2)
    X = np.random.RandomState(0).randint(0, 256, (n,) + shape, dtype=np.uint8)
    y = np.arange(n) % 10
    kw = {k: v for k, v in params.items() if k in ("optimizer", "lr", "momentum", "init",
                                                     "init_std", "batch_size")}
    times = {None: [], "channels_last": []}
    for _ in range(repeats):  # interleaved: drift hits both layouts alike
        for fp in times:
            seconds, clf = step_seconds(net, X, y, kw, fp)
            times[fp].append(seconds)
    contiguous, nhwc = (statistics.median(times[fp]) for fp in times)
    speedup = contiguous / nhwc
    xb = torch.from_numpy(X[:batch]).permute(0, 3, 1, 2).float().div(255).contiguous()
    _fast_path._CHOICES.clear()  # a fresh trial, as in a new process
    start = time.perf_counter()
    choice = _fast_path.choose_fast_path(clf.module_, xb, batch)
    trial_s = time.perf_counter() - start
    chose_nhwc = "channels_last" in choice
    tie = abs(speedup - 1) < _fast_path.MIN_SPEEDUP - 1
    right = tie or chose_nhwc == (speedup > 1)
    return {"net": net, "batch": batch, "contiguous_ms": contiguous * 1e3,
            "channels_last_ms": nhwc * 1e3, "speedup": speedup,
            "auto": "channels_last" if chose_nhwc else "none", "trial_s": trial_s,
            "right": bool(right), "tie": bool(tie)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--nets", nargs="*", default=list(REPORT_NETS))
    add_output_args(p, context=True)
    args = p.parse_args(argv)
    info = announce_cpu()
    rows = []
    for net in args.nets:
        rows.append(case(net, args.steps, args.repeats))
        print(json.dumps(rows[-1]), flush=True)
    result = {"cpu": info, "steps": args.steps, "repeats": args.repeats, "rows": rows,
              "context": args.context}
    return write_result(result, args.out, args.write_doc, TITLE, section)


def section(r):
    cpu = r["cpu"]
    rows = r["rows"]
    lines = [
        TITLE,
        "",
        "Per report network at its report's batch size: the median training step of "
        "`CNNClassifier.fit` in the contiguous (NCHW) and the channels_last (NHWC) layout, "
        f"interleaved, {r['repeats']} fits of {r['steps']} steps each; beside it what "
        "`fast_path=\"auto\"`'s trial chose for the same network and batch, and the trial's "
        "seconds. \"right\": the choice is the faster layout, or the two are within 5 % "
        "(a tie). `python benchmarks/bench_auto_fast_path.py --write-doc docs/benchmarks.md`. "
        f"CPU: {cpu['model']}, {cpu['threads']} torch thread(s), ISA {', '.join(cpu['isa'])} "
        f"(torch kernels: {cpu['torch_capability']}).",
        "",
        "| net | batch | ms / step NCHW | ms / step NHWC | NHWC speed-up | auto chose | "
        "trial (s) | right |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['net']} | {row['batch']} | {row['contiguous_ms']:.1f} | "
            f"{row['channels_last_ms']:.1f} | {row['speedup']:.2f}× | {row['auto']} | "
            f"{row['trial_s']:.1f} | {'yes (tie)' if row['tie'] else 'yes' if row['right'] else 'no'} |")
    right = sum(row["right"] for row in rows)
    lines += ["", f"auto chose the faster layout (or a tie) for {right} of {len(rows)} "
              "networks. Speed-ups are ratios measured side by side; absolute step times need "
              "a quiet machine." + (f" {r['context']}" if r.get("context") else ""), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
