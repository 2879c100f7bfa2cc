"""glibc's allocator and small-network training: page faults vs a heap that keeps its memory.

By default glibc serves large blocks (from 128 KiB, a threshold that adapts
upwards only as far as a block once freed) with ``mmap`` and gives them back
with ``munmap``, and it trims the heap's free top: a training step's
temporaries (activations, gradients) are then fresh pages every step, each
first touch a page fault that the kernel answers with a zeroed page. The
background jobs of the reproduction runs spent about a third of their CPU time
in the kernel that way. ``GLIBC_TUNABLES`` with ``mmap_max=0`` (no block of its
own mapping: tf_cifar10's activations exceed the largest mmap threshold glibc
accepts, 32 MiB) and a 4 GiB trim threshold keeps the freed blocks in the heap
for the next step; nothing else changes (the same kernels, the same numbers).
The process keeps its peak memory until it exits.

Measured side by side: ``CNNClassifier.fit`` of each net, one epoch of random
32x32x3 images at its report's batch size, in fresh processes with and without
the setting, interleaved ``--repeats`` times (medians): images/s (wall), CPU
seconds of user and kernel time, and minor page faults (the count does not
depend on the machine's load). Prints the CPU model and ISA flags. Usage:

    python benchmarks/bench_allocator.py [--nets cifar_3x3 tf_cifar10] [--images 6400]
        [--repeats 3] [--threads 1] [--out results.json] [--write-doc docs/benchmarks.md]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_checkpoint import add_output_args, cpu_info, write_result  # noqa: E402

# The setting scripts/run_background.sh runs the long jobs with.
TUNED = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967296"
TITLE = "## glibc's allocator and small-network training (`bench_allocator.py`)"

CHILD = r"""
import json, resource, sys, time
import numpy as np
from sklearn_cnn import CNNClassifier
from sklearn_cnn.experiments.architectures import REPORT_NETS
net, n = sys.argv[1], int(sys.argv[2])
batch = REPORT_NETS[net][1].get("batch_size", 32) if net in REPORT_NETS else 32
X = np.random.RandomState(0).randint(0, 256, (n, 32, 32, 3), dtype=np.uint8)
y = np.arange(n) % 10
clf = CNNClassifier(net, max_epochs=1, batch_size=batch, validation_fraction=None, verbose=0,
                    random_state=0)
clf.fit(X[:4 * batch], y[:4 * batch])  # imports, first-call costs
r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
clf.fit(X, y)
wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"batch": batch, "img_s": n / wall, "user_s": r1.ru_utime - r0.ru_utime,
                  "sys_s": r1.ru_stime - r0.ru_stime, "minflt": r1.ru_minflt - r0.ru_minflt}))
"""


def run_child(net, images, threads, tuned):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env.pop("GLIBC_TUNABLES", None)
    if tuned:
        env["GLIBC_TUNABLES"] = TUNED
    out = subprocess.run([sys.executable, "-c", CHILD, net, str(images)], env=env,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nets", nargs="+", default=["cifar_3x3", "tf_cifar10"])
    p.add_argument("--images", type=int, default=6400)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    add_output_args(p, context=True)
    args = p.parse_args(argv)
    info = cpu_info()
    print(f"CPU {info['model']}, {' '.join(info['isa'])}", flush=True)
    rows = []
    for net in args.nets:
        runs = {False: [], True: []}
        for _ in range(args.repeats):
            for tuned in (False, True):  # interleaved: a load change hits both alike
                runs[tuned].append(run_child(net, args.images, args.threads, tuned))
                print(net, "tuned" if tuned else "default", json.dumps(runs[tuned][-1]),
                      flush=True)
        med = {t: {k: statistics.median(r[k] for r in v) for k in v[0]} for t, v in runs.items()}
        rows.append({"net": net, "batch": int(med[False]["batch"]), "default": med[False],
                     "tuned": med[True]})
    result = {"cpu": info, "threads": args.threads, "images": args.images,
              "repeats": args.repeats, "rows": rows, "context": args.context}
    return write_result(result, args.out, args.write_doc, TITLE, section)


def section(r):
    cpu = r["cpu"]
    lines = [
        TITLE, "",
        f"`CNNClassifier.fit`, one epoch of {r['images']:,} random 32x32x3 images at the "
        f"report's batch size, {r['threads']} torch thread(s), in fresh processes with glibc's "
        f"default allocator settings and with `GLIBC_TUNABLES={TUNED}` (what "
        "`scripts/run_background.sh` runs the long jobs with), interleaved, median of "
        f"{r['repeats']}. `python benchmarks/bench_allocator.py --write-doc docs/benchmarks.md`. "
        f"CPU: {cpu['model']}, ISA {', '.join(cpu['isa'])}.", "",
        "| net | batch | img/s default | img/s tuned | speed-up | CPU s default (user + kernel) "
        "| CPU s tuned | page faults default | page faults tuned |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in r["rows"]:
        d, t = row["default"], row["tuned"]
        lines.append(
            f"| {row['net']} | {row['batch']} | {d['img_s']:.0f} | {t['img_s']:.0f} | "
            f"{t['img_s'] / d['img_s']:.2f}× | {d['user_s']:.1f} + {d['sys_s']:.1f} | "
            f"{t['user_s']:.1f} + {t['sys_s']:.1f} | {d['minflt']:,.0f} | {t['minflt']:,.0f} |")
    lines += ["", "Speed-ups are ratios measured side by side; the page-fault counts do not "
              "depend on the load. The numbers a run computes are the same either way (same "
              "kernels, same order)." + (f" {r['context']}" if r.get("context") else ""),
              "", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
