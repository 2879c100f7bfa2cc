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
        [--bf16]
        [--out results.json] [--write-doc docs/benchmarks.md] [--context TEXT]
"""

import argparse
import json
import re
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


def case(net, steps, repeats, bf16=False):
    _, params = REPORT_NETS[net]
    batch = params.get("batch_size", 32)
    shape = (28, 28, 1) if net == "mnist_5x5" else (32, 32, 3)
    n = batch * (steps + 2)
    X = np.random.RandomState(0).randint(0, 256, (n,) + shape, dtype=np.uint8)
    y = np.arange(n) % 10
    kw = {k: v for k, v in params.items() if k in ("optimizer", "lr", "momentum", "init",
                                                     "init_std", "batch_size")}
    # fast_path settings by name; bf16's are timed too with --bf16
    settings = {"none": None, "channels_last": "channels_last"}
    if bf16:
        settings.update({"bf16": "bf16", "channels_last+bf16": ["channels_last", "bf16"]})
    times = {name: [] for name in settings}
    for _ in range(repeats):  # interleaved: drift hits every setting alike
        for name, fp in settings.items():
            seconds, clf = step_seconds(net, X, y, kw, fp)
            times[name].append(seconds)
            if fp is None:
                plain = clf  # the auto trial below times this (contiguous) network
    median = {name: statistics.median(t) for name, t in times.items()}
    contiguous, nhwc = median["none"], median["channels_last"]
    speedup = contiguous / nhwc
    clf = plain
    xb = torch.from_numpy(X[:batch]).permute(0, 3, 1, 2).float().div(255).contiguous()
    _fast_path._CHOICES.clear()  # a fresh trial, as in a new process
    start = time.perf_counter()
    # verbose: on a CPU with native bf16 the trial's word says how much faster bf16 was
    # (the trial then also times bf16, which "trial (s)" includes)
    choice = _fast_path.choose_fast_path(clf.module_, xb, batch, verbose=1)
    trial_s = time.perf_counter() - start
    how = next(iter(_fast_path._CHOICES.values()), (None, ""))[1]  # (none: the trial failed)
    word = re.search(r"([0-9.]+)x as fast", how)
    chose_nhwc = "channels_last" in choice
    tie = abs(speedup - 1) < _fast_path.MIN_SPEEDUP - 1
    right = tie or chose_nhwc == (speedup > 1)
    return {"net": net, "batch": batch, "contiguous_ms": contiguous * 1e3,
            "channels_last_ms": nhwc * 1e3, "speedup": speedup,
            "auto": "channels_last" if chose_nhwc else "none", "trial_s": trial_s,
            "right": bool(right), "tie": bool(tie),
            **({"bf16_ms": median["bf16"] * 1e3,
                "channels_last_bf16_ms": median["channels_last+bf16"] * 1e3,
                # what bf16 adds on top of the better float32 layout
                "bf16_speedup": min(contiguous, nhwc) / min(median["bf16"],
                                                             median["channels_last+bf16"]),
                "trial_bf16_speedup": float(word.group(1)) if word else None}
               if bf16 else {})}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--nets", nargs="*", default=list(REPORT_NETS))
    p.add_argument("--bf16", action="store_true",
                   help="also time fast_path='bf16' and ['channels_last', 'bf16'] (for CPUs "
                        "with native bf16)")
    add_output_args(p, context=True)
    args = p.parse_args(argv)
    info = announce_cpu()
    rows = []
    for net in args.nets:
        rows.append(case(net, args.steps, args.repeats, args.bf16))
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
        "(a tie). `python benchmarks/bench_auto_fast_path.py"
        + (" --bf16" if all("bf16_speedup" in row for row in rows) else "")
        + " --write-doc docs/benchmarks.md`. "
        f"CPU: {cpu['model']}, {cpu['threads']} torch thread(s), ISA {', '.join(cpu['isa'])} "
        f"(torch kernels: {cpu['torch_capability']}).",
        "",
        "| net | batch | ms / step NCHW | ms / step NHWC | NHWC speed-up | auto chose | "
        "trial (s) | right |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    bf16 = all("bf16_speedup" in row for row in rows)
    if bf16:
        lines[-2] += (" ms / step NCHW+bf16 | ms / step NHWC+bf16 | bf16 speed-up | "
                      "auto's bf16 word |")
        lines[-1] += " ---: | ---: | ---: | ---: |"
    for row in rows:
        lines.append(
            f"| {row['net']} | {row['batch']} | {row['contiguous_ms']:.1f} | "
            f"{row['channels_last_ms']:.1f} | {row['speedup']:.2f}× | {row['auto']} | "
            f"{row['trial_s']:.1f} | {'yes (tie)' if row['tie'] else 'yes' if row['right'] else 'no'} |"
            + (f" {row['bf16_ms']:.1f} | {row['channels_last_bf16_ms']:.1f} | "
               f"{row['bf16_speedup']:.2f}× | "
               + (f"{row['trial_bf16_speedup']:.2f}× |" if row["trial_bf16_speedup"]
                  else "– |") if bf16 else ""))
    if bf16:
        lines += ["", "With `--bf16`: the same steps with `fast_path=\"bf16\"` and "
                  "`[\"channels_last\", \"bf16\"]`; \"bf16 speed-up\" is the faster float32 "
                  "layout's step over the faster bf16 step (what bf16 adds to what auto already "
                  "gives). auto never chooses bf16; on a CPU with native bf16 its verbose output "
                  "says how much faster a bf16 step was in the layout it chose (\"auto's bf16 "
                  "word\", from its short trial)."]
    right = sum(row["right"] for row in rows)
    lines += ["", f"auto chose the faster layout (or a tie) for {right} of {len(rows)} "
              "networks. Speed-ups are ratios measured side by side; absolute step times need "
              "a quiet machine." + (f" {r['context']}" if r.get("context") else ""), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
