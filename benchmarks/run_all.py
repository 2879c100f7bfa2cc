"""Run every benchmark and refresh docs/benchmarks.md from their results.

    python benchmarks/run_all.py              # run all (needs SKLEARN_CNN_SHARED), then write
    python benchmarks/run_all.py --only features
    python benchmarks/run_all.py --write-only # refresh the page from benchmarks/results/*.json

Each benchmark measures ours and a hand-written PyTorch reference side by side
in the same run (interleaved repeats, median) and stores JSON in
benchmarks/results/ (not committed); the page records the numbers with the
command and the machine that produced them.

Every benchmark module owns its section of the page: ``TITLE`` (its ``## `` heading)
and ``section(result)`` (the section's text); its own ``--write-doc`` writes that one
section. Writing the page here refreshes the intro paragraph and, for each benchmark
of BENCHMARKS with a JSON in benchmarks/results/, replaces its section (or appends it);
the sections of the others (no JSON here, or not run from here, such as
``bench_linear_probe.py --skip-subsample``'s) stay as they are on the page.
"""

import argparse
import importlib
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DOC = HERE.parent / "docs" / "benchmarks.md"
sys.path.insert(0, str(HERE))
from bench_checkpoint import with_section, write_atomic  # noqa: E402

# name -> (module, its arguments here), in the page's order: run in this order, their JSON
# is RESULTS / f"{name}.json", and sections missing from the page are appended in it
BENCHMARKS = {
    "training": ("bench_training", ["--timing-images", "10000", "--repeats", "3"]),
    "features": ("bench_features", ["--repeats", "3"]),
    "memory": ("bench_memory", ["--sizes", "10000", "50000"]),
    "pretrained_accuracy": ("bench_pretrained_accuracy", []),
    "gridsearch": ("bench_gridsearch", []),
    "vgg_digits": ("bench_vgg_digits", []),
    "transfer": ("bench_transfer", []),
    "fast_path": ("bench_fast_path", []),
    "accuracy": ("bench_accuracy", []),
    "checkpoint": ("bench_checkpoint", []),
    "linear_probe": ("bench_linear_probe", []),
    "limit": ("bench_limit", []),
    "allocator": ("bench_allocator", []),
    "auto_fast_path": ("bench_auto_fast_path", []),
    "end_to_end": ("bench_end_to_end", []),
    "knn": ("bench_knn", []),
}


def run(names):
    RESULTS.mkdir(exist_ok=True)
    for name in names:
        module, args = BENCHMARKS[name]
        print(f"== {name}", flush=True)
        out = RESULTS / f"{name}.json"
        importlib.import_module(module).main(args + ["--out", str(out)])


def _load(name):
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def intro():
    """The page's paragraph under "# Benchmarks": how to regenerate it, and this machine."""
    return "\n".join([
        "Regenerate with `SKLEARN_CNN_SHARED=<folder with data/> python benchmarks/run_all.py`",
        f"(this page: {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPU cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads). Every ratio compares ours with a hand-written "
        "PyTorch reference measured in the same run, interleaved, median of repeats.",
    ])


def with_intro(text, paragraph):
    """``text`` with its "Regenerate with ..." paragraph (before the first section) replaced
    by ``paragraph``, or ``paragraph`` put under the "# Benchmarks" heading when it has none."""
    first = re.search(r"^## ", text, re.M)
    head, body = (text[:first.start()], text[first.start():]) if first else (text, "")
    if not head.strip():
        head = "# Benchmarks\n\n"
    old = re.compile(r"^Regenerate with .*?(?=\n[ \t]*\n|\Z)", re.S | re.M)
    if old.search(head):
        head = old.sub(lambda m: paragraph, head, count=1)
    else:
        title, _, rest = head.partition("\n")
        head = title + "\n\n" + paragraph + "\n\n" + rest.lstrip("\n")
    return head.rstrip("\n") + "\n\n" + body


def write_page():
    """Refresh DOC: its intro paragraph, and the section of every benchmark with a JSON in
    RESULTS (each module's ``TITLE`` and ``section(result)``), replaced where the page has it
    and appended where not; every other section of the page is kept as it is."""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n\n"
    text = with_intro(text, intro())
    for name, (module, _) in BENCHMARKS.items():
        result = _load(name)
        if result:
            bench = importlib.import_module(module)
            text = with_section(text, bench.TITLE, bench.section(result))
    write_atomic(DOC, text.rstrip("\n") + "\n")  # never a half-written page
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
