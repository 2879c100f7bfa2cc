"""TransferClassifier's fast frozen mode vs running the frozen backbone every epoch.

Same backbone (CIFAR ResNet-20, random weights: speed does not depend on them),
same head, same data and epochs; the slow path is forced with
``unfreeze_after_steps`` larger than the run (the backbone never trains, but is
run on every batch of every epoch). Prints fit seconds and the speed-up.

    python benchmarks/bench_transfer.py [--n 4000] [--epochs 5] [--out r.json]
        [--write-doc docs/benchmarks.md]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from sklearn_cnn import CifarResNetFeatures, TransferClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_checkpoint import add_output_args, write_result  # noqa: E402

TITLE = "## TransferClassifier fast frozen mode (`bench_transfer.py`)"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--epochs", type=int, default=5)
    add_output_args(p)
    args = p.parse_args(argv)
    rng = np.random.RandomState(0)
    X = rng.randint(0, 256, (args.n, 32, 32, 3)).astype(np.uint8)
    y = rng.randint(0, 10, args.n)
    times = {}
    for label, extra in (("fast_frozen", {}), ("backbone_every_epoch",
                                               {"unfreeze_after_steps": 10 ** 9})):
        clf = TransferClassifier(CifarResNetFeatures(20, random_state=0), head=(256,),
                                 max_epochs=args.epochs, batch_size=128, verbose=0,
                                 random_state=0, validation_fraction=None, **extra)
        start = time.perf_counter()
        clf.fit(X, y)
        times[label] = time.perf_counter() - start
        assert clf.fast_frozen_ == (label == "fast_frozen")
    result = {"n": args.n, "epochs": args.epochs, **{f"{k}_s": v for k, v in times.items()}}
    result["speedup"] = times["backbone_every_epoch"] / times["fast_frozen"]
    print(f"{args.epochs} epochs on {args.n} images: fast frozen {times['fast_frozen']:.1f} s, "
          f"backbone every epoch {times['backbone_every_epoch']:.1f} s -> speed-up "
          f"{result['speedup']:.1f}x", flush=True)
    return write_result(result, args.out, args.write_doc, TITLE, section)


def section(transfer):
    lines = [
        TITLE,
        "",
        f"{transfer['epochs']} epochs on {transfer['n']} 32×32 images, CIFAR ResNet-20 "
        "backbone, fc(256) head: the frozen backbone's features computed once per fit vs "
        "the backbone run on every batch of every epoch.",
        "",
        "| fast frozen (s) | backbone every epoch (s) | speed-up |",
        "| ---: | ---: | ---: |",
        f"| {transfer['fast_frozen_s']:.1f} | {transfer['backbone_every_epoch_s']:.1f} | "
        f"{transfer['speedup']:.1f}× |",
        "",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
