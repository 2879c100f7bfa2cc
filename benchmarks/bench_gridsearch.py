"""GridSearchCV of 5 C values x 3 folds over LayerFeatures(CNNClassifier) + LinearSVC:
wall time and CNN forward passes / trainings, with and without caching.

Cached: ``Pipeline(..., memory=DIR)`` (scikit-learn caches the fitted feature step per
fold) plus LayerFeatures' in-process transform memo. Uncached: the same pipeline without
memory and with the memo disabled. Target: one CNN training and one pass per fold and
data set.

    python benchmarks/bench_gridsearch.py [--out r.json] [--write-doc docs/benchmarks.md]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

import sklearn_cnn.features._extract as extract
from sklearn_cnn import CNNClassifier, LayerFeatures
from sklearn_cnn.datasets import load_digits_images

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_checkpoint import add_output_args, write_result  # noqa: E402

TITLE = "## GridSearchCV over a probe's C, cached vs uncached (`bench_gridsearch.py`)"


def run(cached, X, y):
    counts = {"forward": 0, "fits": 0}
    real_extract, real_fit = extract.extract_features, CNNClassifier.fit

    def counting_extract(*args, **kwargs):
        counts["forward"] += 1
        return real_extract(*args, **kwargs)

    def counting_fit(self, X, y):
        counts["fits"] += 1
        return real_fit(self, X, y)

    extract.extract_features, CNNClassifier.fit = counting_extract, counting_fit
    extract.TRANSFORM_CACHE.clear()
    extract.TRANSFORM_CACHE.max_bytes = 2 * 1024 ** 3 if cached else 0
    try:
        with tempfile.TemporaryDirectory() as cache_dir:
            pipe = Pipeline([("features", LayerFeatures(CNNClassifier(
                "cifar_3x3", max_epochs=5, verbose=0, random_state=0), "fc1")),
                ("svm", LinearSVC())], memory=cache_dir if cached else None)
            start = time.perf_counter()
            search = GridSearchCV(pipe, {"svm__C": [0.01, 0.1, 1.0, 10.0, 100.0]}, cv=3)
            search.fit(X, y)
            seconds = time.perf_counter() - start
    finally:
        extract.extract_features, CNNClassifier.fit = real_extract, real_fit
        extract.TRANSFORM_CACHE.max_bytes = 2 * 1024 ** 3
    return {"seconds": seconds, "cnn_fits": counts["fits"], "forward_passes": counts["forward"],
            "best_C": search.best_params_["svm__C"],
            "best_score": float(search.best_score_)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_output_args(p)
    args = p.parse_args(argv)
    d = load_digits_images()
    result = {"uncached": run(False, d.images, d.target), "cached": run(True, d.images, d.target)}
    result["speedup"] = result["uncached"]["seconds"] / result["cached"]["seconds"]
    for k in ("uncached", "cached"):
        r = result[k]
        print(f"{k:9s}: {r['seconds']:6.1f} s, {r['cnn_fits']} CNN trainings, "
              f"{r['forward_passes']} forward passes, best C {r['best_C']}", flush=True)
    print(f"speed-up {result['speedup']:.1f}x (target: 3 folds -> 3 + 1 trainings, "
          "2 passes per fold + 1)", flush=True)
    return write_result(result, args.out, args.write_doc, TITLE, section)


def section(grid):
    u, c = grid["uncached"], grid["cached"]
    lines = [
        TITLE,
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
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
