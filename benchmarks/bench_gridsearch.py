"""GridSearchCV of 5 C values x 3 folds over LayerFeatures(CNNClassifier) + LinearSVC:
wall time and CNN forward passes / trainings, with and without caching.

Cached: ``Pipeline(..., memory=DIR)`` (scikit-learn caches the fitted feature step per
fold) plus LayerFeatures' in-process transform memo. Uncached: the same pipeline without
memory and with the memo disabled. Target: one CNN training and one pass per fold and
data set.

    python benchmarks/bench_gridsearch.py [--out r.json]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

import sklearn_cnn.features._extract as extract
from sklearn_cnn import CNNClassifier, LayerFeatures
from sklearn_cnn.datasets import load_digits_images


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
    p.add_argument("--out", default=None)
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
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
