"""The headline pipeline on the embedded digits: VGG16 pool4 features (random weights,
resize=32) + KNN, 3-fold cross_val_score (a hand-written torchvision loop with random VGG16
weights got 0.946 there).

    python benchmarks/bench_vgg_digits.py [--out r.json] [--write-doc docs/benchmarks.md]
"""

import argparse
import sys
import time
from pathlib import Path

from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline

from sklearn_cnn import VGGFeatures
from sklearn_cnn.datasets import load_digits_images

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_checkpoint import add_output_args, write_result  # noqa: E402

TITLE = "## The headline pipeline on digits (`bench_vgg_digits.py`)"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_output_args(p)
    args = p.parse_args(argv)
    d = load_digits_images()
    pipe = Pipeline([("vgg", VGGFeatures("pool4", weights=None, resize=32, random_state=0)),
                     ("knn", KNeighborsClassifier())])
    start = time.perf_counter()
    scores = cross_val_score(pipe, d.images, d.target, cv=3)
    result = {"scores": scores.tolist(), "mean": float(scores.mean()),
              "seconds": time.perf_counter() - start}
    print(f"VGG16 pool4 (random weights, resize 32) + KNN on digits, 3-fold: "
          f"{result['mean']:.4f} (hand-written loop: 0.946) in {result['seconds']:.0f} s",
          flush=True)
    return write_result(result, args.out, args.write_doc, TITLE, section)


def section(vgg):
    lines = [
        TITLE,
        "",
        "`Pipeline([(\"vgg\", VGGFeatures(\"pool4\", weights=None, resize=32)), "
        "(\"knn\", KNeighborsClassifier())])`, `cross_val_score(cv=3)` on the 1,797 "
        f"embedded digits: **{vgg['mean']:.4f}** (folds "
        f"{', '.join(f'{s:.3f}' for s in vgg['scores'])}); a hand-written torchvision loop "
        f"with random VGG16 weights got 0.946. {vgg['seconds']:.0f} s.",
        "",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
