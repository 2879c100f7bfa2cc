"""Our accuracy next to the reference reports', for every experiment with a full run on
the shared data.

Runs each experiment's full (non ``--quick``) version through
:func:`sklearn_cnn.experiments.run_experiment`, writing its tables and figures
to ``--work/<name>/``, and records its headline numbers with the report's.
Experiments whose table is already in ``--work`` are read, not rerun, unless
``--rerun`` is given (so a long run made with ``sklearn-cnn reproduce NAME
--out <work>/NAME`` counts too). Runs longer than about 30 minutes on a 2-core
CPU (``LONG``) are only started with ``--long``; without it and without a
table they are skipped. Needs SKLEARN_CNN_SHARED. Usage:

    python benchmarks/bench_accuracy.py [--only NAME ...] [--rerun] [--long] [--work DIR]
        [--out results.json] [--write-doc docs/benchmarks.md]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

from sklearn_cnn.datasets import shared_path
from sklearn_cnn.experiments import list_experiments, run_experiment

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_checkpoint import add_output_args, write_result  # noqa: E402

TITLE = "## Accuracy next to the reference reports (`bench_accuracy.py`)"

HERE = Path(__file__).resolve().parent


def _fmt(values):
    return " / ".join(f"{v:.3f}" for v in values)


def _siamese(t):
    r = t.iloc[0]
    return (f"test pair loss {r['test_pair_loss']:.3f}; LinearSVC {r['linear_svc_test_acc']:.3f}"
            f"; P@1 {r['precision_at_1']:.3f}")


def _sweep(t):
    """filter_stride_sweep's rows as '5x5/1 0.974; 3x3/1 valid 0.965; ...'."""
    return "; ".join(f"{c.replace(' stride ', '/').replace(' same', '')} {a:.3f}"
                     for c, a in zip(t["config"], t["test_acc"]))


# name -> (table stem, what the report measured, the report's numbers, ours from the table)
EXPERIMENTS = {
    "siamese_digits": (
        "siamese", "report 000 task 2: contrastive siamese net (CIFAR-10)",
        "test pair loss 0.055; LinearSVC 0.26", _siamese),
    "siamese_mnist": (
        "siamese", "report 000 task 2: contrastive siamese net (CIFAR-10)",
        "test pair loss 0.055; LinearSVC 0.26", _siamese),
    "knn_k_sweep": (
        "knn_best_k", "report 002: KNN on pretrained features, best k for 100 / 1,000 / "
        "10,000 training images", "k 12 / 17 / 17: 0.27 / 0.524 / 0.599",
        lambda t: f"k {' / '.join(map(str, t['k']))}: {_fmt(t['test_acc'])}"),
    "transfer_last_layer": (
        "transfer_last_layer", "report 002: new last layer only, 100 / 1,000 / 10,000 images",
        "0.45 / 0.553 / 0.582",
        lambda t: f"{_fmt(t['test_acc'])} ({' / '.join(map(str, t['n_train']))} images)"),
    "pretrained_layer_probes": (
        "pretrained_layer_probes", "report 003: accuracy vs depth of a pretrained backbone",
        "VGG16 3 / 4 / 5 blocks (Caltech-256): 0.297 … 0.713",
        lambda t: f"{' / '.join(t['layer'])}: {_fmt(t['test_acc'])}"),
    "truncated_backbones": (
        "truncated_backbones", "report 003: truncated backbone + fc(1000) head",
        "VGG16 3 / 4 / 5 blocks (Caltech-256): 0.297 … 0.713",
        lambda t: f"{' / '.join(t['cut_after'])}: {_fmt(t['test_acc'])}"),
    "filter_stride_sweep": (
        "filter_stride_sweep", "report 004: kernel size × stride of the MNIST net",
        "5×5/1 0.981 … 3×3/3 0.854",
        _sweep),
    "l2_selected_layers": (
        "l2_selected_layers", "report 004: L2 on no / all / selected (conv1, conv3, fc1) "
        "layers of the CIFAR-10 net (ours: weight_decay 0.01)", "0.712 / 0.488 / 0.680",
        lambda t: f"{_fmt(t['test_acc'])}"),
    "filter_stride_sweep_cifar10": (
        "filter_stride_sweep", "report 004: kernel size × stride of the CIFAR-10 net",
        "3×3/1 0.712; 3×3/2 0.691; 5×5/2 0.625; 5×5/1 0.613",
        _sweep),
    "report_networks_bn_dropout_3x3": (
        "report_networks",
        "report 001 network 1: BN + dropout 3×3 net, plain SGD lr 0.1, 10 epochs",
        "test 0.772, train 0.807",
        lambda t: f"test {t['test_acc'][0]:.3f}, train {t['train_acc'][0]:.3f}"),
    "layer_probes": (
        "layer_probes", "report 000 task 1: linear probe on flatten / fc1 / fc2, L2 0.05 on the "
        "fc layers (ours: 10 epochs, multinomial logistic probe)",
        "LinearSVC 0.634 / 0.753 / 0.769 (38 epochs); CNN 0.776",
        lambda t: f"{_fmt(t['l2_fc'][:3])}; CNN {t['l2_fc'].iloc[3]:.3f}"),
    "siamese_cifar10": (
        "siamese", "report 000 task 2: contrastive siamese tf_cifar10 net (ours: 10 epochs)",
        "test pair loss 0.055; LinearSVC 0.26",
        lambda t: (f"test pair loss {t['test_pair_loss'][0]:.3f}; "
                   f"LinearSVC {t['linear_svc_test_acc'][0]:.3f}")),
    "transfer_strategies": (
        "transfer_strategies", "report 000 task 3: frozen / retrain / refine after k / later "
        "stages", "frozen 0.792, retrain 0.864, refine ≈ retrain",
        lambda t: "; ".join(f"{s} {a:.3f}" for s, a in zip(t["strategy"], t["test_acc"]))),
}
DATA = {"siamese_digits": "digits (embedded)", "siamese_mnist": "MNIST",
        "knn_k_sweep": "CIFAR-10, ResNet-20", "transfer_last_layer": "ResNet-20 → MNIST",
        "pretrained_layer_probes": "CIFAR-10, ResNet-20",
        "truncated_backbones": "ResNet-20 → MNIST", "filter_stride_sweep": "MNIST",
        "filter_stride_sweep_cifar10": "CIFAR-10", "report_networks_bn_dropout_3x3": "CIFAR-10",
        "l2_selected_layers": "CIFAR-10", "layer_probes": "CIFAR-10",
        "siamese_cifar10": "CIFAR-10",
        "transfer_strategies": "ResNet-20 → MNIST"}
# Entries that are a registered experiment run with other parameters: name -> (experiment, params)
VARIANTS = {"filter_stride_sweep_cifar10": ("filter_stride_sweep", {"dataset": "cifar10"}),
            "report_networks_bn_dropout_3x3": ("report_networks", {"nets": ["bn_dropout_3x3"]}),
            "layer_probes": ("layer_probes", {"runs": ["l2_fc"]}),
            "siamese_cifar10": ("siamese_cifar10", {"epochs": 10})}
# Longer than about 30 minutes on the 2-core CPU: started only with --long.
LONG = {"filter_stride_sweep_cifar10", "l2_selected_layers", "transfer_strategies",
        "report_networks_bn_dropout_3x3", "layer_probes", "siamese_cifar10"}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", choices=sorted(EXPERIMENTS), default=None)
    p.add_argument("--rerun", action="store_true")
    p.add_argument("--long", action="store_true", help="also start runs in LONG")
    p.add_argument("--work", default=str(HERE / "results" / "experiments"))
    add_output_args(p)
    args = p.parse_args(argv)
    if shared_path("data") is None:
        sys.exit("set SKLEARN_CNN_SHARED to the folder holding data/ and weights/")

    rows = []
    for name in args.only or list(EXPERIMENTS):
        stem, measures, report, ours = EXPERIMENTS[name]
        out = Path(args.work) / name
        csv = out / f"{stem}.csv"
        timing = out / "seconds.json"
        experiment, params = VARIANTS.get(name, (name, {}))
        if args.rerun or not csv.exists():
            if name in LONG and not args.long:
                print(f"{name}: skipped (no table in {out}; a long run, pass --long)")
                continue
            print(f"== {name}", flush=True)
            start = time.perf_counter()
            run_experiment(experiment, out, verbose=0, **params)
            timing.write_text(json.dumps(time.perf_counter() - start))
        table = pd.read_csv(csv)
        # Run elsewhere (sklearn-cnn reproduce): the training time its table records.
        seconds = (json.loads(timing.read_text()) if timing.exists() else
                   float(table["fit_seconds"].sum()) if "fit_seconds" in table else None)
        rows.append({"experiment": name, "page": experiment, "data": DATA[name],
                     "measures": measures,
                     "report": report, "ours": ours(table), "seconds": seconds})
        print(f"{name}: {rows[-1]['ours']}" + (f" ({seconds:.0f} s)" if seconds else ""),
              flush=True)
    return write_result(rows, args.out, args.write_doc, TITLE, section)


def section(accuracy):
    lines = [
        TITLE,
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
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
