"""Peak memory of feature extraction: the output array plus a constant independent of n.

Each n runs in a fresh process: random uint8 CIFAR-sized images (n, 32, 32, 3),
CifarResNetFeatures(20, layers="layer3", pooling=4) (1,024 float32 features per
image). RSS is sampled every 5 ms from /proc during ``transform``; the extra
memory (peak minus the RSS just before, with the images already in memory) is
compared with the size of the output array.

    python benchmarks/bench_memory.py [--sizes 10000 50000] [--out results.json]
        [--write-doc docs/benchmarks.md]
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_checkpoint import add_output_args, write_result  # noqa: E402

TITLE = "## Peak memory of feature extraction (`bench_memory.py`)"


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(n):
    import numpy as np

    from sklearn_cnn import CifarResNetFeatures

    images = np.random.RandomState(0).randint(0, 256, (n, 32, 32, 3)).astype(np.uint8)
    est = CifarResNetFeatures(20, layers="layer3", pooling=4, batch_size=256,
                              random_state=0).fit(images[:2])
    est.transform(images[:256])  # warm-up: libraries and allocator pools
    from sklearn_cnn.features._extract import TRANSFORM_CACHE

    TRANSFORM_CACHE.max_bytes = 0  # measure extraction, not the memo's copy
    peak, stop = [_rss()], threading.Event()
    baseline = peak[0]

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.005)

    t = threading.Thread(target=sample)
    t.start()
    start = time.perf_counter()
    out = est.transform(images)
    seconds = time.perf_counter() - start
    stop.set()
    t.join()
    peak[0] = max(peak[0], _rss())
    extra = peak[0] - baseline
    return {"n": n, "features": out.shape[1], "output_mb": out.nbytes / 2 ** 20,
            "extra_peak_mb": extra / 2 ** 20,
            "overhead_mb": (extra - out.nbytes) / 2 ** 20, "seconds": seconds}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10000, 50000])
    add_output_args(p)
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child is not None:
        print(json.dumps(measure(args.child)))
        return None
    results = []
    for n in args.sizes:
        res = subprocess.run([sys.executable, __file__, "--child", str(n)], check=True,
                             capture_output=True, text=True)
        row = json.loads(res.stdout.strip().splitlines()[-1])
        results.append(row)
        print(f"n={n:6d}: output {row['output_mb']:7.1f} MB, extra peak "
              f"{row['extra_peak_mb']:7.1f} MB, overhead {row['overhead_mb']:6.1f} MB "
              f"({row['seconds']:.0f} s)", flush=True)
    return write_result(results, args.out, args.write_doc, TITLE, section)


def section(memory):
    lines = [
        TITLE,
        "",
        "`CifarResNetFeatures(20, layers=\"layer3\", pooling=4).transform` on n uint8 CIFAR-"
        "sized images, each n in a fresh process; extra = peak RSS during `transform` minus "
        "the RSS before it (images already loaded). Inputs are converted batch by batch "
        "and written into a preallocated output, so the extra memory is the output plus a "
        "constant.",
        "",
        "| n | output (MB) | extra peak (MB) | extra minus output (MB) | seconds |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in memory:
        lines.append(f"| {r['n']} | {r['output_mb']:.1f} | {r['extra_peak_mb']:.1f} | "
                     f"{r['overhead_mb']:.1f} | {r['seconds']:.0f} |")
    lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
