"""Experiments on pretrained features (reference reports 002 and 003).

Offline the pretrained backbone is the CIFAR-10 ResNet-20 of He et al. whose
weights sit in ``$SKLEARN_CNN_SHARED/weights``; with ImageNet weights in the
torch hub cache, ``backbone="vgg16"`` uses VGG16 as the reports did.
"""

import time

import numpy as np
import pandas as pd
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from tqdm.auto import tqdm

from .._deprecation import warn_renamed
from ..datasets import load_train_test, subsample
from ..features import CifarResNetFeatures, VGGFeatures
from ..features.cifar_resnet import pretrained_weights_path
from ..plot import accuracy_vs_k, save_figure
from . import ExperimentInputError, register_experiment, write_table


BACKBONE_NAMES = ("cifar_resnet20", "vgg16")  # as TransferClassifier's BACKBONES names them


def canonical_backbone(backbone):
    """``backbone`` by its one name; "resnet20", the name before 0.2, warns (FutureWarning)."""
    if backbone == "resnet20":
        warn_renamed("backbone='resnet20'", "'cifar_resnet20'")
        return "cifar_resnet20"
    if backbone not in BACKBONE_NAMES:
        raise ExperimentInputError(f"backbone must be one of {list(BACKBONE_NAMES)}, got "
                                   f"{backbone!r}")
    return backbone


def backbone_features(backbone, layer, quick, pooling=None, seed=0):
    """A fitted-on-demand feature transformer for ``backbone`` ("cifar_resnet20" or "vgg16")."""
    if backbone == "cifar_resnet20":
        if quick:  # random weights, a shallow net: seconds
            return CifarResNetFeatures(8, layers=layer, pooling=pooling, random_state=seed)
        return CifarResNetFeatures(20, layers=layer, weights=pretrained_weights_path(),
                                   pooling=pooling)
    if backbone == "vgg16":
        return VGGFeatures(layer, weights=None if quick else "DEFAULT", resize=32,
                           pooling=pooling, random_state=seed)
    raise ExperimentInputError(f"backbone must be one of {list(BACKBONE_NAMES)}, got "
                               f"{backbone!r}")


@register_experiment(
    "knn_k_sweep",
    description="KNN on pretrained penultimate features, k = 1..40, training subsets of "
                "100 / 1,000 / 10,000 images (1,000 test images); table + accuracy-vs-k plot",
    reference="report 002: best k 12 / 17 / 17 -> 0.27 / 0.524 / 0.599 (VGG16 CIFAR-100 "
              "features on CIFAR-10)")
def knn_k_sweep(out, quick=False, dataset="cifar10", backbone="cifar_resnet20", seed=0,
                verbose=1):
    backbone = canonical_backbone(backbone)
    X_tr, y_tr, X_te, y_te, _ = load_train_test("digits" if quick else dataset,
                                                random_state=seed)
    layer = "avgpool" if backbone == "cifar_resnet20" else "fc7"
    sizes = (10, 30) if quick else (10, 100, 1000)   # per class: 100 / 1,000 / 10,000 images
    ks = range(1, 11) if quick else range(1, 41)
    test_idx = np.random.RandomState(seed).permutation(len(y_te))[:1000]
    feats = backbone_features(backbone, layer, quick, seed=seed).fit(X_tr[:2])
    F_te = feats.transform(X_te[test_idx])
    rows = []
    for per_class in tqdm(sizes, desc="train sizes", disable=not verbose):
        Xs, ys = subsample(X_tr, y_tr, per_class, random_state=seed)
        F_tr = feats.transform(Xs)
        for k in ks:
            if k > len(ys):
                continue
            knn = KNeighborsClassifier(k).fit(F_tr, ys)
            rows.append({"n_train": len(ys), "k": k, "test_acc": knn.score(F_te, y_te[test_idx])})
    table = pd.DataFrame(rows)
    best = table.loc[table.groupby("n_train")["test_acc"].idxmax()].reset_index(drop=True)
    best = best.astype({"n_train": int, "k": int})
    write_table(table, out, "knn_k_sweep")
    write_table(best, out, "knn_best_k")
    save_figure(accuracy_vs_k(table, title=f"KNN on {backbone} {layer} features"),
                out / "accuracy_vs_k.png")
    return best


@register_experiment(
    "pretrained_layer_probes",
    description="LinearSVC per layer (and backbone truncated after 1/2/3 stages, or VGG16 "
                "after 3/4/5 blocks) of a pretrained net, global-average-pooled",
    reference="report 003: truncated VGG16 3/4/5 conv blocks -> 29.74% .. 71.29% (Caltech-256)")
def pretrained_layer_probes(out, quick=False, dataset="cifar10", backbone="cifar_resnet20",
                            n_train=5000, seed=0, verbose=1):
    backbone = canonical_backbone(backbone)
    X_tr, y_tr, X_te, y_te, _ = load_train_test("digits" if quick else dataset,
                                                random_state=seed)
    per_class = 30 if quick else max(1, n_train // len(np.unique(y_tr)))
    X_tr, y_tr = subsample(X_tr, y_tr, per_class, random_state=seed)
    X_te, y_te = X_te[:2000], y_te[:2000]
    layers = (["layer1", "layer2", "layer3", "avgpool"] if backbone == "cifar_resnet20"
              else ["pool3", "pool4", "pool5"])
    rows = []
    for layer in tqdm(layers, desc="layers", disable=not verbose):
        feats = backbone_features(backbone, layer, quick, pooling="avg", seed=seed)
        F_tr = feats.fit(X_tr[:2]).transform(X_tr)
        start = time.perf_counter()
        svm = make_pipeline(StandardScaler(), LinearSVC(max_iter=5000, random_state=seed))
        svm.fit(F_tr, y_tr)
        rows.append({"layer": layer, "n_features": F_tr.shape[1], "n_train": len(y_tr),
                     "train_acc": svm.score(F_tr, y_tr),
                     "test_acc": svm.score(feats.transform(X_te), y_te),
                     "fit_seconds": time.perf_counter() - start})
    table = pd.DataFrame(rows)
    write_table(table, out, "pretrained_layer_probes")
    from ..plot import figure

    fig, axes = figure()
    ax = axes[0, 0]
    ax.plot(table["layer"], table["test_acc"], marker="o", label="test")
    ax.plot(table["layer"], table["train_acc"], marker="o", ls="--", label="train")
    ax.set_xlabel("backbone truncated after")
    ax.set_ylabel("LinearSVC accuracy")
    ax.set_title(f"{backbone} layers, {'digits' if quick else dataset}")
    ax.legend()
    save_figure(fig, out / "layer_accuracy.png")
    return table
