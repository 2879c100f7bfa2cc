"""The opt-in fast path (``fast_path=``) of CNNClassifier vs the default, on CIFAR-10.

Measures, in one run:
1. seconds per training epoch of CNNClassifier("cifar_3x3", batch_size=``--batch-size``)
   on ``--timing-images`` CIFAR-10 images for each fast-path setting (None,
   channels_last, bf16, channels_last + bf16, compile, compile + channels_last):
   each fit runs 2 epochs and the second epoch's duration is taken (the first
   one of the first fit includes torch.compile's compilation, reported separately); settings
   interleaved, ``--repeats`` times, median; speed-up = default / setting;
2. the accuracy each setting reaches: trained ``--epochs`` epochs on all 50,000
   training images with each of the seeds 0 .. ``--seeds`` - 1, test accuracy on
   the 10,000 test images; the difference of its mean from the default's mean, beside
   the default's own spread over the seeds (the yardstick: a difference inside it is
   seed noise, not the fast path). ``--accuracy-settings`` picks which settings train.

Also prints the CPU model, its ISA flags and whether it has native bf16 instructions
(AVX512-BF16 / AMX): without them bf16 is emulated and slower. Needs SKLEARN_CNN_SHARED
(data/cifar10-jpg.tar.gz). Usage:

    python benchmarks/bench_fast_path.py [--timing-images 10000] [--repeats 3]
        [--batch-size 32] [--epochs 3] [--seeds 2] [--settings NAME ...]
        [--accuracy-settings NAME ...] [--skip-accuracy] [--out results.json]
        [--write-doc docs/benchmarks.md]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from sklearn_cnn import CNNClassifier
from sklearn_cnn._fast_path import native_bf16
from sklearn_cnn.datasets import load_image_folder_splits, shared_path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_checkpoint import add_output_args, announce_cpu, write_result  # noqa: E402

TITLE = "## Opt-in fast path (`bench_fast_path.py`)"

SETTINGS = {
    "default": None,
    "channels_last": "channels_last",
    "bf16": "bf16",
    "channels_last+bf16": ["channels_last", "bf16"],
    "compile": "compile",
    "compile+channels_last": ["compile", "channels_last"],
}


def fit(setting, X, y, epochs, seed, batch_size):
    return CNNClassifier("cifar_3x3", max_epochs=epochs, batch_size=batch_size,
                         validation_fraction=None, fast_path=SETTINGS[setting], verbose=0,
                         random_state=seed).fit(X, y)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--timing-images", type=int, default=10000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32,
                   help="the training batch (default 32: CNNClassifier's and the main job's)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seeds", type=int, default=2,
                   help="accuracy: each setting trained with seeds 0 .. SEEDS-1")
    p.add_argument("--settings", nargs="*", choices=sorted(SETTINGS), default=list(SETTINGS))
    p.add_argument("--accuracy-settings", nargs="*", choices=sorted(SETTINGS), default=None,
                   help="the settings trained for accuracy (default: all of --settings)")
    p.add_argument("--skip-accuracy", action="store_true")
    add_output_args(p, context=True)
    args = p.parse_args(argv)

    archive = shared_path("data", "cifar10-jpg.tar.gz")
    if archive is None:
        sys.exit("set SKLEARN_CNN_SHARED to the folder holding data/cifar10-jpg.tar.gz")
    cpu = announce_cpu()
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
            dur = fit(s, Xs, ys, 2, r, args.batch_size).history_["dur"].tolist()
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

    result = {"timing_images": args.timing_images, "batch_size": args.batch_size,
              "repeats": args.repeats, "epochs": None if args.skip_accuracy else args.epochs,
              "seeds": args.seeds, "context": args.context, "accuracy_settings": args.accuracy_settings,
              "native_bf16": native_bf16(), "cpu": cpu,
              "cpu_capability": torch.backends.cpu.get_cpu_capability(), "settings": rows}
    if not args.skip_accuracy:
        trained = ["default"] + [s for s in (args.accuracy_settings or settings)
                                 if s != "default" and s in settings]
        accuracies = {s: [] for s in trained}
        for seed in range(args.seeds):  # seed-major: drift hits every setting alike
            for s in trained:
                t = time.perf_counter()
                clf = fit(s, train.images, train.target, args.epochs, seed, args.batch_size)
                accuracies[s].append(float(clf.score(test.images, test.target)))
                print(f"{s:>22}, seed {seed}: {args.epochs} epochs on 50,000 images -> test "
                      f"accuracy {accuracies[s][-1]:.4f} ({time.perf_counter() - t:.0f} s)",
                      flush=True)
        ref = statistics.mean(accuracies["default"])
        for row in rows:
            if row["setting"] in accuracies:
                row["test_accuracies"] = accuracies[row["setting"]]
                row["test_accuracy"] = statistics.mean(accuracies[row["setting"]])
                row["accuracy_difference"] = row["test_accuracy"] - ref
    return write_result(result, args.out, args.write_doc, TITLE, section)


def section(fast):
    cpu = fast["cpu"]
    bf16 = "yes" if fast["native_bf16"] else "no (bf16 is emulated)"
    lines = [
        TITLE,
        "",
        f"`CNNClassifier(\"cifar_3x3\", batch_size={fast['batch_size']}, fast_path=...)` "
        "against the default (`fast_path=None`) in the same run: seconds per training epoch "
        f"on {fast['timing_images']} CIFAR-10 images (second epoch of each fit; the first "
        "epoch of the first fit includes `torch.compile`'s compilation), median of "
        f"{fast['repeats']} interleaved repeats"
        + ("." if fast["epochs"] is None else
           f", and the mean test accuracy after {fast['epochs']} epochs on all 50,000 "
           f"training images over the seeds 0 .. {fast['seeds'] - 1}.")
        + f" `python benchmarks/bench_fast_path.py --batch-size {fast['batch_size']}"
        + ("" if fast["epochs"] is None else
           f" --epochs {fast['epochs']} --seeds {fast['seeds']}")
        + ("" if not fast.get("accuracy_settings") else
           " --accuracy-settings " + " ".join(fast["accuracy_settings"]))
        + " --write-doc docs/benchmarks.md`. "
        f"CPU: {cpu['model']}, {cpu['threads']} torch thread(s), ISA {', '.join(cpu['isa'])} "
        f"(torch kernels: {fast['cpu_capability']}); native bf16 instructions: {bf16}.",
        "",
        "| fast_path | s / epoch | speed-up | first epoch (s) | test accuracy (per seed) "
        "| mean | Δ mean |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for r in fast["settings"]:
        acc = (f"{' / '.join(f'{a:.4f}' for a in r['test_accuracies'])} | "
               f"{r['test_accuracy']:.4f} | {r['accuracy_difference']:+.4f}"
               if "test_accuracy" in r else "– | – | –")
        lines.append(f"| {r['setting']} | {r['epoch_s']:.2f} | {r['speedup']:.2f}× | "
                     f"{r['first_epoch_s']:.1f} | {acc} |")
    trained = [r for r in fast["settings"] if "test_accuracies" in r]
    if len(trained) > 1 and fast["seeds"] > 1:
        spreads = {r["setting"]: max(r["test_accuracies"]) - min(r["test_accuracies"])
                   for r in trained}
        noisiest = max(spreads, key=spreads.get)
        base = trained[0]["test_accuracies"]
        same_seed = "; ".join(
            f"`{r['setting']}` " + ", ".join(f"{a - b:+.4f}" for a, b in
                                              zip(r["test_accuracies"], base))
            for r in trained[1:])
        paired = ""
        if fast["seeds"] > 2:  # the mean of the same-seed differences and its standard error
            paired = " Mean of the same-seed differences ± its standard error: " + "; ".join(
                f"`{r['setting']}` {statistics.mean(d):+.4f} ± "
                f"{statistics.stdev(d) / len(d) ** 0.5:.4f}"
                for r in trained[1:]
                for d in [[a - b for a, b in zip(r["test_accuracies"], base)]]) + "."
        lines += ["", "Same seed, setting minus default: " + same_seed + "." + paired
                  + " From seed to seed one setting's test accuracy spans up to "
                  f"{spreads[noisiest]:.4f} (`{noisiest}`): with {fast['seeds']} seeds a "
                  "difference of means much smaller than that is not resolved (seed noise, not "
                  "the fast path)."]
    fastest = max(fast["settings"], key=lambda r: r["speedup"])
    lines += ["", f"The fastest setting on this CPU: `{fastest['setting']}` "
              f"({fastest['speedup']:.2f}× the default). \"first epoch\" of compile is "
              "measured with inductor's on-disk cache (`/tmp/torchinductor_<user>`) as earlier "
              "runs left it; with an empty cache the first compiled epoch takes tens of "
              "seconds longer." + (f" {fast['context']}" if fast.get("context") else "")]
    lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
