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
        "timing_images": 100, "repeats": 1, "epochs": 1, "native_bf16": False,
        "cpu_capability": "AVX2", "seed_difference": 0.02, "default_other_seed_accuracy": 0.52,
        "settings": [{"setting": "default", "epoch_s": 2.0, "speedup": 1.0,
                      "first_epoch_s": 2.1, "test_accuracy": 0.5, "accuracy_difference": 0.0},
                     {"setting": "channels_last", "epoch_s": 1.6, "speedup": 1.25,
                      "first_epoch_s": 1.7, "test_accuracy": 0.49,
                      "accuracy_difference": -0.01}]})
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
    assert "| channels_last | 1.60 | 1.25× | 1.7 | 0.4900 | -0.0100 |" in page
    assert "no (bf16 is emulated)" in page and "moves by +0.0200" in page
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
