"""Run every benchmark and write docs/benchmarks.md from their results.

    python benchmarks/run_all.py              # run all (needs SKLEARN_CNN_SHARED), then write
    python benchmarks/run_all.py --only features
    python benchmarks/run_all.py --write-only # rewrite the page from benchmarks/results/*.json

Each benchmark measures ours and a hand-written PyTorch reference side by side
in the same run (interleaved repeats, median) and stores JSON in
benchmarks/results/ (not committed); the page records the numbers with the
command and the machine that produced them.
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from sklearn_cnn.experiments import list_experiments

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DOC = HERE.parent / "docs" / "benchmarks.md"
sys.path.insert(0, str(HERE))

BENCHMARKS = {
    "training": ("bench_training", ["--timing-images", "10000", "--repeats", "3"]),
    "features": ("bench_features", ["--repeats", "3"]),
    "memory": ("bench_memory", ["--sizes", "10000", "50000"]),
    "pretrained_accuracy": ("bench_pretrained_accuracy", []),
    "transfer": ("bench_transfer", []),
    "vgg_digits": ("bench_vgg_digits", []),
    "gridsearch": ("bench_gridsearch", []),
    "fast_path": ("bench_fast_path", []),
    "accuracy": ("bench_accuracy", []),
    "checkpoint": ("bench_checkpoint", []),
    "linear_probe": ("bench_linear_probe", []),
}


def run(names):
    import importlib

    RESULTS.mkdir(exist_ok=True)
    for name in names:
        module, args = BENCHMARKS[name]
        print(f"== {name}", flush=True)
        out = RESULTS / f"{name}.json"
        importlib.import_module(module).main(args + ["--out", str(out)])


def _load(name):
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def write_page():
    lines = [
        "# Benchmarks",
        "",
        "Regenerate with `SKLEARN_CNN_SHARED=<folder with data/> python benchmarks/run_all.py`",
        f"(this page: {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPU cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads). Every ratio compares ours with a hand-written "
        "PyTorch reference measured in the same run, interleaved, median of repeats.",
        "",
    ]
    training = _load("training")
    if training:
        lines += [
            "## CNNClassifier training vs a hand-written loop (`bench_training.py`)",
            "",
            "`CNNClassifier(\"cifar_3x3\")` (skorch's loop) against a plain "
            "`DataLoader` + Adam + `CrossEntropyLoss` loop over the same network written as "
            "`nn.Sequential`, on CIFAR-10 JPEGs (shared copy).",
            "",
            "| measure | ours | hand-written | ratio | target |",
            "| --- | ---: | ---: | ---: | --- |",
        ]
        for row in training.get("by_batch_size", [training]):
            lines.append(
                f"| seconds per epoch ({training['timing_images']} images, batch "
                f"{row['batch_size']}) | {row['ours_epoch_s']:.2f} | "
                f"{row['hand_written_epoch_s']:.2f} | {row['epoch_time_ratio']:.3f} | ≤ 1.10 |")
        if "test_accuracy" in training:
            lines += [
                "",
                f"Accuracy: `CNNClassifier(\"cifar_3x3\", max_epochs={training['epochs']})` "
                "(Adam, lr 1e-3, batch 32, all 50,000 training images) reaches "
                f"**{training['test_accuracy']:.4f}** test accuracy on the 10,000 test images "
                f"(target ≥ 0.67; a hand-written loop got 0.680 on this JPEG copy, report 004 "
                f"0.712 on the original images) in {training['fit_s'] / 60:.1f} minutes. "
                f"Loading all 60,000 JPEGs from the tar took {training['load_cifar10_s']:.1f} s.",
            ]
        lines.append("")
    features = _load("features")
    if features:
        lines += [
            "## Feature extraction throughput (`bench_features.py`)",
            "",
            "Our transformers vs a hand-written `torch.inference_mode()` loop over the same "
            "truncated torchvision module, same preprocessing, same batch size (random "
            "weights: speed does not depend on them). Ours hands each batch to the network in "
            "channels-last memory layout, which oneDNN's CPU convolutions run faster; without "
            "that the CIFAR ResNet-20 ratio was 0.69 and VGG16 0.72-0.80.",
            "",
            "| case | images | ours (img/s) | hand-written (img/s) | ratio | target |",
            "| --- | ---: | ---: | ---: | ---: | --- |",
        ]
        for r in features:
            lines.append(f"| {r['case']} | {r['images']} | {r['ours_img_s']:.1f} | "
                         f"{r['hand_written_img_s']:.1f} | {r['ratio']:.3f} | ≥ 0.97 |")
        lines.append("")
    memory = _load("memory")
    if memory:
        lines += [
            "## Peak memory of feature extraction (`bench_memory.py`)",
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
    acc = _load("pretrained_accuracy")
    if acc:
        lines += [
            "## Pretrained CIFAR ResNet-20 (`bench_pretrained_accuracy.py`)",
            "",
            "| measure | ours | reference / target |",
            "| --- | ---: | --- |",
            f"| own 10-class head, 10,000 test JPEGs | {acc['own_head_test_acc']:.4f} | "
            "0.8103 (independent implementation), within 0.003 |",
            f"| LinearSVC on avgpool features, 50,000 training JPEGs | "
            f"{acc['linear_svc_avgpool_test_acc']:.4f} | ≥ 0.83 |",
            "",
        ]
    grid = _load("gridsearch")
    if grid:
        u, c = grid["uncached"], grid["cached"]
        lines += [
            "## GridSearchCV over a probe's C, cached vs uncached (`bench_gridsearch.py`)",
            "",
            "5 C values × 3 folds on `Pipeline([LayerFeatures(CNNClassifier(\"cifar_3x3\", "
            "max_epochs=5), \"fc1\"), LinearSVC()])`, all 1,797 digits. Cached = the "
            "Pipeline's `memory` + LayerFeatures' transform memo.",
            "",
            "| | seconds | CNN trainings | forward passes | best C |",
            "| --- | ---: | ---: | ---: | ---: |",
            f"| uncached | {u['seconds']:.1f} | {u['cnn_fits']} | {u['forward_passes']} | "
            f"{u['best_C']} |",
            f"| cached | {c['seconds']:.1f} | {c['cnn_fits']} | {c['forward_passes']} | "
            f"{c['best_C']} |",
            "",
            f"Speed-up {grid['speedup']:.1f}×; cached = one training per fold + the refit, and "
            "one pass per fold and data set (3 × 2 + 1), as targeted.",
            "",
        ]
    vgg = _load("vgg_digits")
    if vgg:
        lines += [
            "## The headline pipeline on digits (`bench_vgg_digits.py`)",
            "",
            "`Pipeline([(\"vgg\", VGGFeatures(\"pool4\", weights=None, resize=32)), "
            "(\"knn\", KNeighborsClassifier())])`, `cross_val_score(cv=3)` on the 1,797 "
            f"embedded digits: **{vgg['mean']:.4f}** (folds "
            f"{', '.join(f'{s:.3f}' for s in vgg['scores'])}); a hand-written torchvision loop "
            f"with random VGG16 weights got 0.946. {vgg['seconds']:.0f} s.",
            "",
        ]
    transfer = _load("transfer")
    if transfer:
        lines += [
            "## TransferClassifier fast frozen mode (`bench_transfer.py`)",
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
    fast = _load("fast_path")
    if fast:
        lines += [
            "## Opt-in fast path (`bench_fast_path.py`)",
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
    accuracy = _load("accuracy")
    if accuracy:
        lines += [
            "## Accuracy next to the reference reports (`bench_accuracy.py`)",
            "",
            "Every experiment with a recorded full run on the shared data "
            "(`sklearn-cnn reproduce NAME`; details and figures on each experiment's page in "
            "[experiments/](experiments/README.md)); minutes: the run's time on this "
            "machine. Offline, the "
            "pretrained backbone is the CIFAR-10 ResNet-20, not the reports' ImageNet / "
            "CIFAR-100 VGG16, so backbone-dependent numbers compare shapes, not values.",
            "",
            "| experiment | data | report: what | report | ours | minutes |",
            "| --- | --- | --- | --- | --- | ---: |",
        ]
        for r in accuracy:
            minutes = f"{r['seconds'] / 60:.1f}" if r.get("seconds") else "–"
            page = r.get("page", r["experiment"])
            lines.append(f"| [{r['experiment']}](experiments/{page}.md) | "
                         f"{r['data']} | {r['measures']} | {r['report']} | {r['ours']} | "
                         f"{minutes} |")
        shown = {r.get("page", r["experiment"]) for r in accuracy}
        missing = [n for n in list_experiments()["name"] if n not in shown]
        if missing:
            lines += ["", "No full run recorded (see each page for why and for the command): "
                      + ", ".join(f"[`{n}`](experiments/{n}.md)" for n in missing) + "."]
        lines.append("")
    checkpoint = _load("checkpoint")
    if checkpoint:
        from bench_checkpoint import section

        lines += section(checkpoint).splitlines()
    linear = _load("linear_probe")
    if linear:
        from bench_linear_probe import section as linear_section

        lines += linear_section(linear).splitlines()
    tmp = DOC.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines))
    os.replace(tmp, DOC)  # never a half-written page
    print(f"wrote {DOC}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), default=None)
    p.add_argument("--write-only", action="store_true")
    args = p.parse_args(argv)
    if not args.write_only:
        run(args.only or list(BENCHMARKS))
    write_page()


if __name__ == "__main__":
    main()
