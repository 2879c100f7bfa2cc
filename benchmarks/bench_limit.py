"""Know the limit: training and extraction throughput as a fraction of this CPU's sgemm.

For one training step of every report network (at its report's batch size, on
32x32x3 inputs; 28x28x1 for mnist_5x5) and for extraction with the CIFAR
ResNet-20 and VGG16 at 32 px, measured in one run:

* FLOPs per image, counted by ``torch.utils.flop_counter.FlopCounterMode``
  (forward + backward for training, forward for extraction);
* images/s of ours (``CNNClassifier.fit``'s steps, timed by a callback; the
  extractors' ``transform``) and of a hand-written loop over the same module
  (plain Adam / SGD step; ``torch.inference_mode`` forward);
* achieved GFLOP/s and its fraction of this CPU's float32 matrix-product limit,
  measured in the same run around each case: the faster of torch's sgemm (a 2,048 x
  2,048 matmul: MKL) and oneDNN's (the same product as a 1x1 convolution over NHWC
  inputs, the engine of torch's CPU convolutions). They differ by CPU: on an AMD
  AVX-512 CPU MKL's sgemm ran at less than half of oneDNN's (it does not take its
  AVX-512 kernels there), so sgemm alone understated the limit.

``--fast-path`` gives the ``fast_path`` of ours' training (default ``none``; several,
e.g. ``none auto channels_last,bf16``, train every net once per setting); the
hand-written step stays float32 in the contiguous layout. Random pixels (speed does
not depend on them). Prints the CPU model and ISA flags. Usage:

    python benchmarks/bench_limit.py [--steps 12] [--nets NAME ...] [--fast-path none ...]
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


def onednn_gflops(pixels=4096, channels=1024, repeats=5):
    """A float32 matrix product through oneDNN: (pixels, channels) x (channels, channels)
    as a 1x1 convolution over NHWC inputs (64 x 8 x 8 pixels; of the shapes tried on an
    AMD AVX-512 CPU, 256-2,048 channels and 2,048-16,384 pixels, among the fastest)."""
    x = torch.randn(pixels // 64, channels, 8, 8).contiguous(memory_format=torch.channels_last)
    w = torch.randn(channels, channels, 1, 1).contiguous(memory_format=torch.channels_last)
    torch.nn.functional.conv2d(x, w)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.nn.functional.conv2d(x, w)
        times.append(time.perf_counter() - start)
    return 2 * pixels * channels ** 2 / statistics.median(times) / 1e9


def limit_gflops():
    """(sgemm GFLOP/s, oneDNN GEMM GFLOP/s) measured now."""
    return sgemm_gflops(), onednn_gflops()


def train_flops(module, x, y):
    loss_fn = torch.nn.CrossEntropyLoss()
    with FlopCounterMode(display=False) as counter:
        loss_fn(module(x), y).backward()
    module.zero_grad()
    return counter.get_total_flops() / len(x)


def training_case(net, steps, fast_path=None):
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
                        verbose=0, callbacks=[("timer", timer)], fast_path=fast_path, **kw)
    clf.fit(X, y)
    ours_s = statistics.median(dict(clf.net_.callbacks_)["timer"].times_[2:])
    # the hand-written step: float32, contiguous (NCHW), whatever ours trained with
    module = clf.module_.train().to(memory_format=torch.contiguous_format)
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
            "ours_img_s": batch / ours_s, "hand_img_s": batch / hand_s,
            "fast_path": ",".join(clf.fast_path_) or "none"}


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
            "ours_img_s": n / ours_s, "hand_img_s": n / hand_s, "fast_path": "channels_last"}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--nets", nargs="*", default=list(REPORT_NETS))
    p.add_argument("--fast-path", nargs="*", default=["none"],
                   help="ours' fast_path per training run: none, auto or a comma-separated "
                        "list (several: every net once per setting)")
    add_output_args(p, context=True)
    args = p.parse_args(argv)
    settings = [None if f == "none" else f if f == "auto" else f.split(",")
                for f in args.fast_path]
    info = announce_cpu()
    rows = []
    cases = [lambda net=net, fp=fp: training_case(net, args.steps, fp)
             for net in args.nets for fp in settings] + [
        lambda: extraction_case("CIFAR ResNet-20", CifarResNetFeatures(20, weights=None,
                                                                       random_state=0)),
        lambda: extraction_case("VGG16 pool5 (32 px)", VGGFeatures(
            "pool5", arch="vgg16", weights=None, resize=32, random_state=0)),
    ]
    for case in cases:
        before = limit_gflops()
        row = case()
        after = limit_gflops()
        # around the case: drift-fair
        row["sgemm_gflops"], row["onednn_gflops"] = ((b + a) / 2 for b, a in zip(before, after))
        row["limit_gflops"] = max(row["sgemm_gflops"], row["onednn_gflops"])
        for who in ("ours", "hand"):
            row[f"{who}_gflops"] = row[f"{who}_img_s"] * row["mflop_per_img"] / 1e3
            row[f"{who}_fraction"] = row[f"{who}_gflops"] / row["limit_gflops"]
        print(json.dumps(row), flush=True)
        rows.append(row)
    result = {"cpu": info, "rows": rows, "fast_path": args.fast_path,
              "context": args.context}
    return write_result(result, args.out, args.write_doc, TITLE, section)


TITLE = "## Throughput against this CPU's limit (`bench_limit.py`)"


def section(r):
    cpu = r["cpu"]
    lines = [
        TITLE,
        "",
        "Images/s and achieved GFLOP/s (FLOPs from `FlopCounterMode`: forward + backward for "
        "training, forward for extraction) as a fraction of this CPU's float32 matrix-product "
        "limit, measured in the same run around each case: the faster of torch's sgemm (MKL) "
        "and the same product through oneDNN (a 1x1 convolution, NHWC); ours beside a "
        "hand-written step over the same module. FLOPs are those of the direct algorithms: a "
        "kernel that does fewer (oneDNN's Winograd convolutions, say) can pass 1.0, and so "
        "can a bf16 row, measured against the float32 limit. "
        "`python benchmarks/bench_limit.py"
        + ("" if r.get("fast_path", ["none"]) == ["none"] else
           " --fast-path " + " ".join(r["fast_path"]))
        + " --write-doc docs/benchmarks.md`. \"fast path\": ours' `fast_path_` (for "
        "`auto`, what it chose; the extractors feed channels_last batches); the hand-written "
        "step is float32 in the contiguous layout. CPU: "
        f"{cpu_text(cpu)} (torch kernels: {cpu['torch_capability']}).",
        "",
        "| case | fast path | batch | MFLOP/img | ours img/s | hand img/s | ours GFLOP/s "
        "| sgemm GFLOP/s | oneDNN GEMM GFLOP/s | ours / limit | hand / limit |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in r["rows"]:
        lines.append(
            f"| {row['case']} | {row.get('fast_path', 'none')} | {row['batch']} | "
            f"{row['mflop_per_img']:.1f} | "
            f"{row['ours_img_s']:.0f} | {row['hand_img_s']:.0f} | {row['ours_gflops']:.1f} | "
            f"{row['sgemm_gflops']:.0f} | {row.get('onednn_gflops', float('nan')):.0f} | "
            f"{row['ours_fraction']:.2f} | "
            f"{row['hand_fraction']:.2f} |")
    lines += ["", "Fractions are ratios measured side by side; absolute figures need a quiet "
              "machine." + (f" {r['context']}" if r.get("context") else ""), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
