"""The ``knn`` probe beside scikit-learn's: 5-NN predictions on CNN-sized features.

``WeightedKNNClassifier(5, metric="euclidean", weights="uniform")`` (the ``knn`` probe of
``sklearn-cnn probe``: torch's matrix product and top-k) and ``KNeighborsClassifier(5,
n_jobs=-1)`` (what the probe was before), fitted on the same training features and asked
for the same queries' ``predict_proba``, interleaved, median of ``--repeats``. Also
whether the two agree (equal probabilities for every query). Features: ``--features`` (an
``.npz`` with ``F_tr``, ``y_fit``, ``F_te``, as bench_linear_probe caches them), else
Gaussian features of the same shape (45,000 x 4,096: the ``flatten`` layer of the CIFAR-10
nets). Usage:

    python benchmarks/bench_knn.py [--features feats.npz] [--queries 2000] [--repeats 3]
        [--out results.json] [--write-doc docs/benchmarks.md] [--context TEXT]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.neighbors import KNeighborsClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_checkpoint import add_output_args, announce_cpu, cpu_text, write_result  # noqa: E402

from sklearn_cnn import WeightedKNNClassifier  # noqa: E402

TITLE = "## The knn probe beside scikit-learn's 5-NN (`bench_knn.py`)"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--features", default=None, help="an .npz with F_tr, y_fit, F_te")
    p.add_argument("--queries", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=3)
    add_output_args(p, context=True)
    args = p.parse_args(argv)
    info = announce_cpu()
    if args.features:
        data = np.load(args.features)
        X, y, Q = data["F_tr"], data["y_fit"], data["F_te"][:args.queries]
        source = Path(args.features).name
    else:
        rng = np.random.RandomState(0)
        X = rng.normal(size=(45_000, 4096)).astype(np.float32)
        y = rng.randint(0, 10, len(X))
        Q = rng.normal(size=(args.queries, 4096)).astype(np.float32)
        source = "Gaussian"
    ours = WeightedKNNClassifier(5, metric="euclidean", weights="uniform").fit(X, y)
    theirs = KNeighborsClassifier(5, n_jobs=-1).fit(X, y)
    times = {"ours": [], "sklearn": []}
    for _ in range(args.repeats):
        for name, knn in (("ours", ours), ("sklearn", theirs)):
            start = time.perf_counter()
            proba = knn.predict_proba(Q)
            times[name].append(time.perf_counter() - start)
            if name == "ours":
                mine = proba
            else:
                agree = float(np.all(mine == proba, axis=1).mean())
    result = {"cpu": info, "source": source, "n_train": len(X), "n_features": X.shape[1],
              "queries": len(Q), "repeats": args.repeats,
              "ours_s": statistics.median(times["ours"]),
              "sklearn_s": statistics.median(times["sklearn"]),
              "agree": agree, "context": args.context}
    print(f"ours {result['ours_s']:.2f} s, KNeighborsClassifier {result['sklearn_s']:.2f} s "
          f"({result['sklearn_s'] / result['ours_s']:.2f}x); equal probabilities for "
          f"{agree:.2%} of the queries", flush=True)
    return write_result(result, args.out, args.write_doc, TITLE, section)


def section(r):
    return "\n".join([
        TITLE,
        "",
        f"`predict_proba` of {r['queries']:,} queries against {r['n_train']:,} training rows "
        f"of {r['n_features']:,} float32 features ({r['source']}), median of {r['repeats']}, "
        "interleaved. `python benchmarks/bench_knn.py --write-doc docs/benchmarks.md`. "
        f"CPU: {cpu_text(r['cpu'])}.",
        "",
        "| kNN | seconds |",
        "| --- | ---: |",
        f"| `WeightedKNNClassifier(5, metric=\"euclidean\", weights=\"uniform\")` (the `knn` "
        f"probe) | {r['ours_s']:.2f} |",
        f"| `KNeighborsClassifier(5, n_jobs=-1)` | {r['sklearn_s']:.2f} |",
        "",
        f"Ours is {r['sklearn_s'] / r['ours_s']:.2f}× faster; the two give equal probabilities "
        f"for {r['agree']:.2%} of the queries. The ratio is measured side by side. Absolute "
        "seconds: " + ((r["context"] or "a quiet machine (no other job)").rstrip(".") + "."),
        "",
    ])


if __name__ == "__main__":
    main()
