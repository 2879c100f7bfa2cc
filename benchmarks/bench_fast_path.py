"""The opt-in fast path (``fast_path=``) of CNNClassifier vs the default, on CIFAR-10.

Measures, in one run:
1. seconds per training epoch of CNNClassifier("cifar_3x3", batch_size=128) on
   ``--timing-images`` CIFAR-10 images for each fast-path setting (None,
   channels_last, bf16, channels_last + bf16, compile, compile + channels_last):
   each fit runs 2 epochs and the second epoch's duration is taken (the first
   one of the first fit includes torch.compile's compilation, reported separately); settings
   interleaved, ``--repeats`` times, median; speed-up = default / setting;
2. the accuracy difference each setting causes: the same seed trained
   ``--epochs`` epochs on all 50,000 training images, test accuracy on the
   10,000 test images, minus the default's; and, as the yardstick for those
   differences, the default trained with another seed.

Also prints whether the CPU has native bf16 instructions (AVX512-BF16 / AMX):
without them bf16 is emulated and slower. Needs SKLEARN_CNN_SHARED
(data/cifar10-jpg.tar.gz). Usage:

    python benchmarks/bench_fast_path.py [--timing-images 10000] [--repeats 3]
        [--epochs 3] [--skip-accuracy] [--out results.json] [--write-doc docs/benchmarks.md]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from sklearn_cnn import CNNClassifier
from sklearn_cnn.datasets import load_image_folder_splits, shared_path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_checkpoint import add_output_args, write_result  # noqa: E402

TITLE = "## Opt-in fast path (`bench_fast_path.py`)"

SETTINGS = {
    "default": None,
    "channels_last": "channels_last",
    "bf16": "bf16",
    "channels_last+bf16": ["channels_last", "bf16"],
    "compile": "compile",
    "compile+channels_last": ["compile", "channels_last"],
}


def native_bf16():
    """True when the CPU has bf16 arithmetic instructions (else oneDNN emulates them)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: unknown
        return None
    return any(f in flags for f in ("avx512_bf16", "amx_bf16"))


def fit(setting, X, y, epochs, seed, batch_size=128):
    return CNNClassifier("cifar_3x3", max_epochs=epochs, batch_size=batch_size,
                         validation_fraction=None, fast_path=SETTINGS[setting], verbose=0,
                         random_state=seed).fit(X, y)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--timing-images", type=int, default=10000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--settings", nargs="*", choices=sorted(SETTINGS), default=list(SETTINGS))
    p.add_argument("--skip-accuracy", action="store_true")
    add_output_args(p)
    args = p.parse_args(argv)

    archive = shared_path("data", "cifar10-jpg.tar.gz")
    if archive is None:
        sys.exit("set SKLEARN_CNN_SHARED to the folder holding data/cifar10-jpg.tar.gz")
    data = load_image_folder_splits(archive)
    train, test = data["train"], data["test"]
    idx = np.random.RandomState(0).choice(len(train.target), args.timing_images, replace=False)
    Xs, ys = train.images[idx], train.target[idx]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, native bf16: {native_bf16()}",
          flush=True)

    settings = ["default"] + [s for s in args.settings if s != "default"]
    epoch_s = {s: [] for s in settings}
    first_epoch_s = {s: [] for s in settings}
    for r in range(args.repeats):  # interleaved, so drift hits every setting alike
        for s in settings:
            dur = fit(s, Xs, ys, 2, r).history_["dur"].tolist()
            first_epoch_s[s].append(dur[0])
            epoch_s[s].append(dur[1])
            print(f"repeat {r} {s}: epoch 1 {dur[0]:.2f} s, epoch 2 {dur[1]:.2f} s", flush=True)
    rows = []
    base = statistics.median(epoch_s["default"])
    for s in settings:
        med = statistics.median(epoch_s[s])
        # Repeat 0's first epoch: torch.compile's compilation with a cold cache; later
        # repeats hit inductor's on-disk cache.
        rows.append({"setting": s, "epoch_s": med, "first_epoch_s": first_epoch_s[s][0],
                     "speedup": base / med})
        print(f"{s:>22}: {med:.2f} s per epoch -> speed-up {base / med:.3f} "
              f"(first epoch of the first fit {rows[-1]['first_epoch_s']:.1f} s)", flush=True)

    if not args.skip_accuracy:
        for row in rows:
            t = time.perf_counter()
            clf = fit(row["setting"], train.images, train.target, args.epochs, 0)
            row["test_accuracy"] = float(clf.score(test.images, test.target))
            row["fit_s"] = time.perf_counter() - t
            print(f"{row['setting']:>22}: {args.epochs} epochs on 50,000 images -> test "
                  f"accuracy {row['test_accuracy']:.4f} ({row['fit_s']:.0f} s)", flush=True)
        ref = rows[0]["test_accuracy"]
        for row in rows:
            row["accuracy_difference"] = row["test_accuracy"] - ref
        # The yardstick: how much the default itself moves with another seed.
        other = fit("default", train.images, train.target, args.epochs, 1)
        result_seed = float(other.score(test.images, test.target))
        print(f"default, random_state=1: test accuracy {result_seed:.4f} "
              f"({result_seed - ref:+.4f})", flush=True)
    result = {"timing_images": args.timing_images, "batch_size": 128, "repeats": args.repeats,
              "epochs": None if args.skip_accuracy else args.epochs,
              "native_bf16": native_bf16(),
              "cpu_capability": torch.backends.cpu.get_cpu_capability(), "settings": rows}
    if not args.skip_accuracy:
        result["default_other_seed_accuracy"] = result_seed
        result["seed_difference"] = result_seed - rows[0]["test_accuracy"]
    return write_result(result, args.out, args.write_doc, TITLE, section)


def section(fast):
    lines = [
        TITLE,
        "",
        "`CNNClassifier(\"cifar_3x3\", batch_size=128, fast_path=...)` against the default "
        f"(`fast_path=None`) in the same run: seconds per training epoch on "
        f"{fast['timing_images']} CIFAR-10 images (second epoch of each fit; the first "
        "epoch of the first fit includes `torch.compile`'s compilation), median of "
        f"{fast['repeats']} interleaved repeats, and the test accuracy after "
        f"{fast['epochs']} epochs on all 50,000 training images with the same seed. "
        f"CPU capability {fast['cpu_capability']}; native bf16 instructions: "
        f"{'yes' if fast['native_bf16'] else 'no (bf16 is emulated)'}.",
        "",
        "| fast_path | s / epoch | speed-up | first epoch (s) | test accuracy | Δ accuracy |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in fast["settings"]:
        acc = (f"{r['test_accuracy']:.4f} | {r['accuracy_difference']:+.4f}"
               if "test_accuracy" in r else "– | –")
        lines.append(f"| {r['setting']} | {r['epoch_s']:.2f} | {r['speedup']:.2f}× | "
                     f"{r['first_epoch_s']:.1f} | {acc} |")
    if "seed_difference" in fast:
        lines += ["", "The default trained with another seed (`random_state=1`) moves by "
                  f"{fast['seed_difference']:+.4f} ({fast['default_other_seed_accuracy']:.4f}):"
                  " accuracy differences of that size are seed noise, not the fast path."]
    lines += ["", "\"first epoch\" of compile is measured with inductor's on-disk cache "
              "(`/tmp/torchinductor_<user>`) filled by earlier runs; with an empty cache "
              "the first compiled epoch took about 45 s longer on this machine. On this "
              "CPU only `channels_last` pays off for training; bf16 and compile are for "
              "CPUs with native bf16 (AVX512-BF16 / AMX) and for GPUs."]
    lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
