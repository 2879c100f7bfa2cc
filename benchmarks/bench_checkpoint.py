"""Cost of ``checkpoint_dir``: one checkpoint write per epoch vs one epoch, tf_cifar10.

Measured side by side in one process, on CIFAR-10-sized data (45,000 training
images of 32x32x3 as after the 10 % validation split; random pixels: neither the
step time nor the write time depends on them):

1. the median time of one training step of ``CNNClassifier("tf_cifar10",
   batch_size=128)`` (the report's batch), over ``--steps`` steps after a warm-up,
   times the steps of an epoch, plus the validation pass over 5,000 images:
   the epoch time;
2. the median time of one checkpoint write of that run (weights, Adam state,
   history, random states; temp file, fsync, rename), ``--writes`` times;
3. once per fit: the fingerprint of the training data (hashing X and y).

Overhead per epoch = write / epoch (target <= 2 %). Prints the CPU model and
ISA flags. Usage:

    python benchmarks/bench_checkpoint.py [--steps 40] [--writes 5] [--out results.json]
        [--write-doc docs/benchmarks.md]
"""

import argparse
import json
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from skorch.callbacks import Callback

from sklearn_cnn import CNNClassifier
from sklearn_cnn._checkpoint import data_fingerprint
from sklearn_cnn._input import check_images

N_TRAIN, N_VALID, BATCH = 45_000, 5_000, 128


def cpu_info():
    """CPU model and the vector / matrix ISA flags that decide oneDNN's kernels."""
    text = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.*)", text)
    flags = set(re.search(r"flags\s*:\s*(.*)", text).group(1).split())
    isa = sorted(f for f in flags if f.startswith(("avx", "amx", "fma")))
    return {"model": model.group(1).strip() if model else "unknown", "isa": isa,
            "torch_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads()}


class StepTimer(Callback):
    """Wall time of each training batch (forward, backward, optimizer step)."""

    def initialize(self):
        self.times_, self._t = [], None
        return self

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            self._t = time.perf_counter()

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            self.times_.append(time.perf_counter() - self._t)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--writes", type=int, default=5)
    add_output_args(p)
    args = p.parse_args(argv)
    info = announce_cpu()

    rng = np.random.RandomState(0)
    n_fit = (args.steps + 5) * BATCH  # warm-up steps, then the timed ones
    X = rng.randint(0, 256, (n_fit, 32, 32, 3), dtype=np.uint8)
    y = np.arange(n_fit) % 10
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as tmp:
        clf = CNNClassifier("tf_cifar10", batch_size=BATCH, lr=1e-4, init="gaussian",
                            init_std=0.01, max_epochs=1, validation_fraction=None,
                            random_state=0, verbose=0, callbacks=[("timer", timer)],
                            checkpoint_dir=tmp)
        clf.fit(X, y)
        step_s = statistics.median(dict(clf.net_.callbacks_)["timer"].times_[5:])
        Xv = rng.randint(0, 256, (N_VALID, 32, 32, 3), dtype=np.uint8)
        start = time.perf_counter()
        clf.predict_proba(Xv)
        valid_s = time.perf_counter() - start
        epoch_s = -(-N_TRAIN // BATCH) * step_s + valid_s
        writes = []
        for _ in range(args.writes):
            start = time.perf_counter()
            clf.net_._write_checkpoint()
            writes.append(time.perf_counter() - start)
        write_s = statistics.median(writes)
        size_mb = (Path(tmp) / "checkpoint.pt").stat().st_size / 2 ** 20
    full = rng.randint(0, 256, (N_TRAIN, 32, 32, 3), dtype=np.uint8)
    images = check_images(full)
    start = time.perf_counter()
    data_fingerprint(images, np.arange(N_TRAIN) % 10)
    hash_s = time.perf_counter() - start
    result = {"cpu": info, "step_s": step_s, "epoch_s": epoch_s, "write_s": write_s,
              "checkpoint_mb": size_mb, "fingerprint_s": hash_s,
              "overhead_per_epoch": write_s / epoch_s}
    print(json.dumps(result, indent=1))
    return write_result(result, args.out, args.write_doc, TITLE, section)


TITLE = "## Checkpoint overhead (`bench_checkpoint.py`)"


def section(r):
    cpu = r["cpu"]
    return "\n".join([
        TITLE,
        "",
        "`CNNClassifier(\"tf_cifar10\", batch_size=128, checkpoint_dir=...)` on CIFAR-10-sized "
        "data (45,000 training images after the validation split): one checkpoint write per "
        "epoch against one epoch, both measured in the same run (`python "
        "benchmarks/bench_checkpoint.py --write-doc docs/benchmarks.md`). CPU: "
        f"{cpu_text(cpu)} (torch kernels: {cpu['torch_capability']}).",
        "",
        "| measure | value |",
        "| --- | ---: |",
        f"| training step (batch 128), median | {r['step_s'] * 1000:.0f} ms |",
        f"| epoch (352 steps + validation of 5,000 images) | {r['epoch_s']:.0f} s |",
        f"| checkpoint write (weights, Adam state, history, random states; fsync + rename) | "
        f"{r['write_s']:.2f} s ({r['checkpoint_mb']:.0f} MB) |",
        f"| **overhead per epoch** (target ≤ 2 %) | **{100 * r['overhead_per_epoch']:.2f} %** |",
        f"| once per fit: fingerprint of X, y (45,000 images) | {r['fingerprint_s']:.2f} s |",
        "",
        "The ratio is what matters: both figures were taken in one process, so a loaded "
        "machine slows both.",
        "",
    ])


def add_output_args(parser, context=False):
    """The options every page-writing benchmark shares: ``--out`` (JSON), ``--write-doc``
    (its section of a markdown page) and, with ``context``, ``--context``."""
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument("--write-doc", default=None,
                        help="replace this benchmark's section in the given markdown page")
    if context:
        parser.add_argument("--context", default="",
                            help="what else ran on the machine, for the doc (absolute "
                                 "figures depend on it)")


def cpu_text(cpu):
    """A page's words for the machine of :func:`cpu_info`: model, torch threads, ISA."""
    return f"{cpu['model']}, {cpu['threads']} torch threads, ISA {', '.join(cpu['isa'])}"


def announce_cpu():
    """Print the CPU model, torch threads and ISA flags (every benchmark records them);
    return :func:`cpu_info`."""
    info = cpu_info()
    print(f"CPU {info['model']}, {info['threads']} torch threads, {' '.join(info['isa'])}",
          flush=True)
    return info


def write_result(result, out, write_doc, title, section):
    """A benchmark's last step: its JSON to ``out`` and its page section (``section(result)``,
    headed ``title``) into ``write_doc``, each when given."""
    if out:
        Path(out).write_text(json.dumps(result, indent=1))
    if write_doc:
        replace_section(Path(write_doc), title, section(result))
    return result


def replace_section(path, title, new):
    """Replace (or append) the section headed ``title`` of the markdown page at ``path``
    (a new page when absent), in one atomic write."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    write_atomic(path, with_section(text, title, new))


def with_section(text, title, new):
    """``text`` (a markdown page) with its section headed ``title`` (that heading line, up
    to the next ``## `` heading or the end) replaced by ``new``, or ``new`` appended when the
    page has no such section (a second section of that heading is dropped). ``new`` is
    the whole section, its heading included; it is followed by one blank line, and the page
    ends with one newline."""
    new = new.rstrip("\n") + "\n\n"
    pattern = re.compile("^" + re.escape(title) + r"[ \t]*$.*?(?=^## |\Z)", re.S | re.M)
    first = pattern.search(text)
    if first is None:
        text = text.rstrip("\n") + "\n\n" + new
    else:
        text = text[:first.start()] + new + pattern.sub("", text[first.end():])
    return text.rstrip("\n") + "\n"


def write_atomic(path, text):
    """Write ``text`` to ``path`` through a temp file beside it and ``os.replace``: a reader
    sees the old page or the new one, never half of one."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
