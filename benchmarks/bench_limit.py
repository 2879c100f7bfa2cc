"""Know the limit: training and extraction throughput as a fraction of this CPU's sgemm.

For one training step of every report network (at its report's batch size, on
32x32x3 inputs; 28x28x1 for mnist_5x5) and for extraction with the CIFAR
ResNet-20 and VGG16 at 32 px, measured in one run:

* FLOPs per image, counted by ``torch.utils.flop_counter.FlopCounterMode``
  (forward + backward for training, forward for extraction);
* images/s of ours (``CNNClassifier.fit``'s steps, timed by a callback; the
  extractors' ``transform``) and of a hand-written loop over the same module
  (plain Adam / SGD step; ``torch.inference_mode`` forward);
* achieved GFLOP/s and its fraction of a float32 sgemm (2,048 x 2,048 matmul)
  measured in the same run, between the cases.

Random pixels (speed does not depend on them). Prints the CPU model and ISA
flags. Usage:

    python benchmarks/bench_limit.py [--steps 12] [--nets NAME ...] [--out results.json]
        [--write-doc docs/benchmarks.md]
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from sklearn_cnn import CifarResNetFeatures, CNNClassifier, VGGFeatures
from sklearn_cnn.experiments.architectures import REPORT_NETS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_checkpoint import StepTimer, add_output_args, announce_cpu, cpu_text, write_result  # noqa: E402


def sgemm_gflops(n=2048, repeats=5):
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def train_flops(module, x, y):
    loss_fn = torch.nn.CrossEntropyLoss()
    with FlopCounterMode(display=False) as counter:
        loss_fn(module(x), y).backward()
    module.zero_grad()
    return counter.get_total_flops() / len(x)


def training_case(net, steps):
    _, params = REPORT_NETS[net]
    batch = params.get("batch_size", 32)
    shape = (28, 28, 1) if net == "mnist_5x5" else (32, 32, 3)
    rng = np.random.RandomState(0)
    n = batch * (steps + 2)
    X = rng.randint(0, 256, (n,) + shape, dtype=np.uint8)
    y = np.arange(n) % 10
    kw = {k: v for k, v in params.items() if k in ("optimizer", "lr", "momentum", "init",
                                                     "init_std", "batch_size")}
    timer = StepTimer()
    clf = CNNClassifier(net, max_epochs=1, validation_fraction=None, random_state=0,
                        verbose=0, callbacks=[("timer", timer)], **kw)
    clf.fit(X, y)
    ours_s = statistics.median(dict(clf.net_.callbacks_)["timer"].times_[2:])
    module = clf.module_.train()
    xb = torch.from_numpy(X[:batch]).permute(0, 3, 1, 2).float().div(255).contiguous()
    yb = torch.from_numpy(y[:batch])
    flops = train_flops(module, xb, yb)
    # the same optimiser and step size as ours: a large step can drive activations into
    # denormals or overflow, which changes the speed of the very same kernels
    settings = {**clf.get_params(), **kw}
    if settings["optimizer"] == "sgd":
        opt = torch.optim.SGD(module.parameters(), lr=settings["lr"],
                              momentum=settings["momentum"])
    else:
        opt = torch.optim.Adam(module.parameters(), lr=settings["lr"])
    loss_fn = torch.nn.CrossEntropyLoss()
    times = []
    for i in range(steps + 2):  # the hand-written step on the same module
        start = time.perf_counter()
        opt.zero_grad()
        loss_fn(module(xb), yb).backward()
        opt.step()
        times.append(time.perf_counter() - start)
    hand_s = statistics.median(times[2:])
    return {"case": f"train {net}", "batch": batch, "mflop_per_img": flops / 1e6,
            "ours_img_s": batch / ours_s, "hand_img_s": batch / hand_s}


def extraction_case(name, est, n=512):
    X = np.random.RandomState(0).randint(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    est.fit(X[:2])
    est.transform(X[:64])
    start = time.perf_counter()
    est.transform(X)
    ours_s = time.perf_counter() - start
    model = est.model_.eval()
    xb = torch.from_numpy(X[:est.batch_size]).permute(0, 3, 1, 2).float().div(255)
    xb = xb.contiguous(memory_format=torch.channels_last)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(xb[:8])
    flops = counter.get_total_flops() / 8
    with torch.inference_mode():
        model(xb)
        start = time.perf_counter()
        for i in range(0, n, est.batch_size):
            model(xb)
        hand_s = time.perf_counter() - start
    return {"case": f"extract {name}", "batch": est.batch_size, "mflop_per_img": flops / 1e6,
            "ours_img_s": n / ours_s, "hand_img_s": n / hand_s}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--nets", nargs="*", default=list(REPORT_NETS))
    add_output_args(p)
    args = p.parse_args(argv)
    info = announce_cpu()
    rows = []
    cases = [lambda net=net: training_case(net, args.steps) for net in args.nets] + [
        lambda: extraction_case("CIFAR ResNet-20", CifarResNetFeatures(20, weights=None,
                                                                       random_state=0)),
        lambda: extraction_case("VGG16 pool5 (32 px)", VGGFeatures(
            "pool5", arch="vgg16", weights=None, resize=32, random_state=0)),
    ]
    for case in cases:
        before = sgemm_gflops()
        row = case()
        row["sgemm_gflops"] = (before + sgemm_gflops()) / 2  # around the case: drift-fair
        for who in ("ours", "hand"):
            row[f"{who}_gflops"] = row[f"{who}_img_s"] * row["mflop_per_img"] / 1e3
            row[f"{who}_fraction"] = row[f"{who}_gflops"] / row["sgemm_gflops"]
        print(json.dumps(row), flush=True)
        rows.append(row)
    result = {"cpu": info, "rows": rows}
    return write_result(result, args.out, args.write_doc, TITLE, section)


TITLE = "## Throughput against this CPU's limit (`bench_limit.py`)"


def section(r):
    cpu = r["cpu"]
    lines = [
        TITLE,
        "",
        "Images/s and achieved GFLOP/s (FLOPs from `FlopCounterMode`: forward + backward for "
        "training, forward for extraction) as a fraction of a float32 sgemm measured in the "
        "same run around each case; ours beside a hand-written step over the same module. "
        "`python benchmarks/bench_limit.py --write-doc docs/benchmarks.md`. CPU: "
        f"{cpu_text(cpu)} (torch kernels: {cpu['torch_capability']}).",
        "",
        "| case | batch | MFLOP/img | ours img/s | hand img/s | ours GFLOP/s | sgemm GFLOP/s "
        "| ours / sgemm | hand / sgemm |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in r["rows"]:
        lines.append(
            f"| {row['case']} | {row['batch']} | {row['mflop_per_img']:.1f} | "
            f"{row['ours_img_s']:.0f} | {row['hand_img_s']:.0f} | {row['ours_gflops']:.1f} | "
            f"{row['sgemm_gflops']:.0f} | {row['ours_fraction']:.2f} | "
            f"{row['hand_fraction']:.2f} |")
    lines += ["", "Fractions are ratios measured side by side; absolute figures need a quiet "
              "machine.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
