"""benchmarks/run_all.py turns the benchmarks' JSON into docs/benchmarks.md."""

import importlib.util
import json
from pathlib import Path

import pytest

RUN_ALL = Path(__file__).resolve().parents[1] / "benchmarks" / "run_all.py"


@pytest.fixture
def run_all(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("run_all", RUN_ALL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(module, "DOC", tmp_path / "benchmarks.md")
    (tmp_path / "results").mkdir()
    return module


def _write(run_all, name, data):
    (run_all.RESULTS / f"{name}.json").write_text(json.dumps(data))


def test_page_has_a_row_per_measurement(run_all):
    _write(run_all, "training", {
        "timing_images": 100, "load_cifar10_s": 1.0,
        "by_batch_size": [{"batch_size": 128, "ours_epoch_s": 2.0, "hand_written_epoch_s": 1.9,
                           "epoch_time_ratio": 1.0526},
                          {"batch_size": 32, "ours_epoch_s": 3.0, "hand_written_epoch_s": 3.0,
                           "epoch_time_ratio": 1.0}]})
    _write(run_all, "fast_path", {
        "timing_images": 100, "batch_size": 32, "repeats": 1, "epochs": 1, "seeds": 2,
        "native_bf16": False, "cpu_capability": "AVX2", "context": "",
        "cpu": {"model": "Some CPU", "isa": ["avx2", "fma"], "threads": 2},
        "settings": [{"setting": "default", "epoch_s": 2.0, "speedup": 1.0,
                      "first_epoch_s": 2.1, "test_accuracies": [0.5, 0.52],
                      "test_accuracy": 0.51, "accuracy_difference": 0.0},
                     {"setting": "channels_last", "epoch_s": 1.6, "speedup": 1.25,
                      "first_epoch_s": 1.7, "test_accuracies": [0.49, 0.49],
                      "test_accuracy": 0.49, "accuracy_difference": -0.02}]})
    _write(run_all, "accuracy", [{"experiment": "knn_k_sweep", "data": "CIFAR-10",
                                  "measures": "KNN", "report": "0.27", "ours": "0.81",
                                  "seconds": 60.0},
                                 {"experiment": "filter_stride_sweep_cifar10",
                                  "page": "filter_stride_sweep", "data": "CIFAR-10",
                                  "measures": "sweep", "report": "0.712", "ours": "0.674",
                                  "seconds": None}])
    run_all.write_page()
    page = run_all.DOC.read_text()
    assert "| seconds per epoch (100 images, batch 128) | 2.00 | 1.90 | 1.053 | ≤ 1.10 |" in page
    assert "batch 32) | 3.00 | 3.00 | 1.000" in page
    assert "| channels_last | 1.60 | 1.25× | 1.7 | 0.4900 / 0.4900 | 0.4900 | -0.0200 |" in page
    assert "no (bf16 is emulated)" in page and "Some CPU, 2 torch thread(s), ISA avx2, fma" in page
    assert "`channels_last` -0.0100, -0.0300" in page and "spans up to 0.0200 (`default`)" in page
    assert "The fastest setting on this CPU: `channels_last` (1.25× the default)" in page
    assert "| [knn_k_sweep](experiments/knn_k_sweep.md) | CIFAR-10 | KNN | 0.27 | 0.81 | 1.0 |" \
        in page
    assert ("| [filter_stride_sweep_cifar10](experiments/filter_stride_sweep.md) | CIFAR-10 | "
            "sweep | 0.712 | 0.674 | – |") in page
    not_run = page.split("No full run recorded")[1]
    assert "[`siamese_cifar10`](experiments/siamese_cifar10.md)" in not_run
    assert "knn_k_sweep" not in not_run and "filter_stride_sweep" not in not_run
    assert not list(run_all.DOC.parent.glob("*.tmp"))  # written via a temp file


def test_missing_results_give_a_page_without_their_sections(run_all):
    run_all.write_page()
    page = run_all.DOC.read_text()
    assert page.startswith("# Benchmarks") and "Opt-in fast path" not in page


LIMIT = """## Throughput against this CPU's limit (`bench_limit.py`)

Images/s as a fraction of sgemm, written by `bench_limit.py --write-doc`.

| case | batch |
| --- | ---: |
| train mnist_5x5 | 32 |

"""

OLD_TRANSFER = """## TransferClassifier fast frozen mode (`bench_transfer.py`)

An older run's text.

"""

TRANSFER = {"n": 4000, "epochs": 5, "fast_frozen_s": 10.0, "backbone_every_epoch_s": 30.0,
            "speedup": 3.0}


def test_sections_without_a_json_are_kept_and_those_with_one_replaced(run_all):
    run_all.DOC.write_text("# Benchmarks\n\nRegenerate with `an old command`\n(this page: "
                           "2000-01-01, old machine).\n\n" + OLD_TRANSFER + LIMIT
                           + "## A hand-written note\n\nKept too.\n")
    _write(run_all, "transfer", TRANSFER)
    run_all.write_page()
    page = run_all.DOC.read_text()
    assert LIMIT in page  # no JSON: the section as it was, byte for byte
    assert page.endswith("## A hand-written note\n\nKept too.\n")
    assert page.count("## TransferClassifier fast frozen mode") == 1
    assert "An older run's text." not in page
    assert "| 10.0 | 30.0 | 3.0× |" in page
    assert page.index("## TransferClassifier") < page.index("## Throughput against")  # in place
    assert page.count("Regenerate with") == 1 and "2000-01-01" not in page
    assert "an old command" not in page and "python benchmarks/run_all.py" in page
    run_all.write_page()  # again: the same page (one section, not two)
    assert run_all.DOC.read_text() == page
    assert not list(run_all.DOC.parent.glob("*.tmp"))


def test_a_missing_page_is_written_in_full(run_all):
    _write(run_all, "transfer", TRANSFER)
    _write(run_all, "vgg_digits", {"scores": [0.9, 0.91, 0.92], "mean": 0.91, "seconds": 12.0})
    assert not run_all.DOC.exists()
    run_all.write_page()
    page = run_all.DOC.read_text()
    assert page.startswith("# Benchmarks\n\nRegenerate with `SKLEARN_CNN_SHARED=")
    headings = [line for line in page.splitlines() if line.startswith("## ")]
    assert headings == ["## The headline pipeline on digits (`bench_vgg_digits.py`)",
                        "## TransferClassifier fast frozen mode (`bench_transfer.py`)"]
    assert "**0.9100** (folds 0.900, 0.910, 0.920)" in page and "12 s.\n\n## Transfer" in page
    assert page.endswith("| 10.0 | 30.0 | 3.0× |\n")
    assert "\n\n\n" not in page


def test_every_registered_benchmark_owns_its_section(run_all):
    import importlib

    titles = []
    for module, _ in run_all.BENCHMARKS.values():
        bench = importlib.import_module(module)
        assert bench.TITLE.startswith("## ") and callable(bench.section)
        titles.append(bench.TITLE)
    assert len(set(titles)) == len(titles)


def test_a_benchmarks_write_doc_replaces_its_section_in_place(run_all, tmp_path):
    from bench_checkpoint import replace_section  # run_all put benchmarks/ on sys.path

    doc = tmp_path / "page.md"
    replace_section(doc, "## B", "## B\n\nfirst\n")  # no page yet: a new one
    assert doc.read_text() == "# Benchmarks\n\n## B\n\nfirst\n"
    doc.write_text("# Benchmarks\n\n## A\n\na\n\n## B\n\nold\n\n## BC\n\nbc\n")
    replace_section(doc, "## B", "## B\n\nnew\n")  # no trailing blank line of its own
    assert doc.read_text() == "# Benchmarks\n\n## A\n\na\n\n## B\n\nnew\n\n## BC\n\nbc\n"
    assert not list(tmp_path.glob("*.tmp"))
