"""The shared pretrained CIFAR ResNet-20 on the shared CIFAR-10 JPEGs.

1. its own 10-class output on the 10,000 test images (an independent
   implementation measured 0.8103; ours must agree within 0.3 points);
2. LinearSVC on its avgpool features, trained on the 50,000 training images
   (target >= 0.83).

    SKLEARN_CNN_SHARED=... python benchmarks/bench_pretrained_accuracy.py [--out r.json]
        [--write-doc docs/benchmarks.md]
"""

import argparse
import sys
import time
from pathlib import Path

from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from sklearn_cnn import CifarResNetFeatures
from sklearn_cnn.datasets import load_image_folder_splits, shared_path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_checkpoint import add_output_args, write_result  # noqa: E402

TITLE = "## Pretrained CIFAR ResNet-20 (`bench_pretrained_accuracy.py`)"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_output_args(p)
    args = p.parse_args(argv)
    archive = shared_path("data", "cifar10-jpg.tar.gz")
    weights = shared_path("weights", "resnet20-12fca82f.th")
    if archive is None or weights is None:
        sys.exit("set SKLEARN_CNN_SHARED to the folder holding data/ and weights/")
    data = load_image_folder_splits(archive)
    train, test = data["train"], data["test"]
    start = time.perf_counter()
    logits = CifarResNetFeatures(20, layers="logits", weights=weights).fit(test.images[:2])
    own = float((logits.transform(test.images).argmax(1) == test.target).mean())
    feats = CifarResNetFeatures(20, layers="avgpool", weights=weights).fit(train.images[:2])
    F_tr, F_te = feats.transform(train.images), feats.transform(test.images)
    extract_s = time.perf_counter() - start
    start = time.perf_counter()
    svm = make_pipeline(StandardScaler(), LinearSVC(max_iter=5000, random_state=0))
    svm.fit(F_tr, train.target)
    result = {"own_head_test_acc": own, "linear_svc_avgpool_test_acc":
              float(svm.score(F_te, test.target)), "extract_seconds": extract_s,
              "svm_seconds": time.perf_counter() - start}
    print(f"ResNet-20 own head: {own:.4f} (independent: 0.8103, tolerance 0.003); LinearSVC on "
          f"avgpool: {result['linear_svc_avgpool_test_acc']:.4f} (target >= 0.83)", flush=True)
    return write_result(result, args.out, args.write_doc, TITLE, section)


def section(acc):
    lines = [
        TITLE,
        "",
        "| measure | ours | reference / target |",
        "| --- | ---: | --- |",
        f"| own 10-class head, 10,000 test JPEGs | {acc['own_head_test_acc']:.4f} | "
        "0.8103 (independent implementation), within 0.003 |",
        f"| LinearSVC on avgpool features, 50,000 training JPEGs | "
        f"{acc['linear_svc_avgpool_test_acc']:.4f} | ≥ 0.83 |",
        "",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
