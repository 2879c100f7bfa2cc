"""Layer-probing experiments (reference report 000, task 1) and the main job."""

import time

import pandas as pd

from ..classifier import CNNClassifier
from ..datasets import load_train_test
from ..plot import embedding, learning_curves, save_figure
from ..probing import default_probes, layer_features, probe_layers
from . import register_experiment, write_table

__all__ = ["run_probe"]


def run_probe(out, *, dataset="digits", preset="cifar_3x3", epochs=15, layers=None,
              probes=("linear_svc", "knn"), seed=0, quick=False, tsne=True, data_root=None,
              verbose=1, **train_params):
    """Train ``preset`` on ``dataset``, probe its layers, write tables and figures.

    Writes ``probe.csv``, ``probe.md``, ``learning_curve.png`` and
    ``tsne_<layer>.png`` into ``out``; returns the probe table.
    """
    X_tr, y_tr, X_te, y_te, names = load_train_test(dataset, root=data_root,
                                                    random_state=seed)
    if quick:
        epochs, X_tr, y_tr = min(epochs, 2), X_tr[:600], y_tr[:600]
        X_te, y_te = X_te[:300], y_te[:300]
    all_probes = default_probes(seed)
    unknown = set(probes) - set(all_probes)
    if unknown:
        raise ValueError(f"unknown probe(s) {sorted(unknown)}; choose from {sorted(all_probes)}")
    clf = CNNClassifier(preset, max_epochs=epochs, random_state=seed, verbose=verbose,
                        **train_params)
    start = time.perf_counter()
    clf.fit(X_tr, y_tr)
    fit_seconds = time.perf_counter() - start
    table, clf = probe_layers(clf, X_tr, y_tr, X_te, y_te, layers=layers,
                              probes={p: all_probes[p] for p in probes},
                              return_estimator=True, verbose=verbose)
    cnn_row = pd.DataFrame([{"layer": "logits", "probe": "cnn", "n_features": len(names),
                             "train_score": clf.score(X_tr, y_tr),
                             "test_score": clf.score(X_te, y_te),
                             "fit_seconds": fit_seconds}])
    table = pd.concat([table, cnn_row], ignore_index=True)
    write_table(table, out, "probe")
    save_figure(learning_curves(clf, title=f"{preset} on {dataset}"), out / "learning_curve.png")
    if tsne:
        probed = list(dict.fromkeys(table["layer"][table["probe"] != "cnn"]))
        n = 150 if quick else 2000
        feats = layer_features(clf, X_te[:n], probed)
        for layer in probed:
            fig = embedding(feats[layer], y_te[:n], "tsne", target_names=names,
                            title=f"t-SNE of {layer} ({preset}, {dataset} test)",
                            random_state=seed)
            save_figure(fig, out / f"tsne_{layer}.png")
    return table


@register_experiment(
    "layer_probes",
    description="LinearSVC (one-vs-rest) per layer (flatten, fc1, fc2) of the two-conv "
                "CIFAR-10 net, without and with L2 (0.05) on the fc layers; t-SNE per layer",
    reference="report 000, task 1: flatten 0.634, fc1 0.7528, fc2 0.7689 (with L2)")
def layer_probes(out, quick=False, dataset="cifar10", epochs=10, seed=0, verbose=1):
    """Report 000's probe: tf_cifar10, Adam lr 1e-4, batch 128, N(0, 0.01) init."""
    if quick:
        dataset = "digits"
    tables = []
    for label, wd in (("no_l2", 0.0), ("l2_fc", 0.05)):
        sub = out / label
        sub.mkdir(exist_ok=True)
        t = run_probe(sub, dataset=dataset, preset="tf_cifar10", epochs=epochs,
                      probes=("linear_svc",), seed=seed, quick=quick, verbose=verbose,
                      lr=1e-4, batch_size=128, init="gaussian", init_std=0.01,
                      weight_decay=wd, weight_decay_layers=["fc*"] if wd else None)
        tables.append(t.assign(regularization=label))
    table = pd.concat(tables, ignore_index=True)
    wide = table.pivot_table(index="layer", columns="regularization", values="test_score",
                             sort=False).reset_index()
    write_table(table, out, "layer_probes_long")
    write_table(wide, out, "layer_probes")
    return wide
