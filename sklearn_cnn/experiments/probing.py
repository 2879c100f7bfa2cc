"""Layer-probing experiments (reference report 000, task 1) and the main job."""

import json
import resource
import sys
import time
from pathlib import Path

import pandas as pd

from .._input import check_images
from .._io import atomic_write
from ..architectures import build_network, resolve_architecture
from ..classifier import CNNClassifier
from ..datasets import load_train_test
from .._layers import check_layers
from ..plot import embedding, learning_curves, probe_accuracy, save_figure
from ..probing import layer_features, probe_layers, resolve_probes
from . import ExperimentInputError, fit_or_load, register_experiment, write_table

__all__ = ["run_probe"]


def run_probe(out, *, dataset="digits", preset="cifar_3x3", epochs=15, layers=None,
              probes=("linear_svc", "knn"), seed=0, quick=False, tsne=True, data_root=None,
              reuse_model=True, verbose=1, reference=None, **train_params):
    """Train ``preset`` on ``dataset``, probe its layers, write tables and figures.

    Writes ``probe.csv``, ``probe.md``, ``probe_accuracy.png`` (test accuracy per
    layer and probe), ``learning_curve.png`` (train / validation / test per
    epoch; ``reference``, {label: accuracy}, marked on it), ``tsne_<layer>.png`` and the trained network (``cnn.joblib``) into ``out``;
    returns the probe table. The network trains with a checkpoint in
    ``out/cnn.ckpt``: run again on the same ``out``, an interrupted training
    resumes after its last completed epoch and a finished one is loaded
    without training (so only the probes and figures run again);
    ``reuse_model=False`` trains from the start.
    """
    started = time.perf_counter()
    X_tr, y_tr, X_te, y_te, names = load_train_test(dataset, root=data_root,
                                                    random_state=seed)
    # (stage, seconds, peak memory so far in GB where it is read: at the end of loading,
    # training, the probes and t-SNE; it tells which stage set the run's peak)
    stages = [("loading", time.perf_counter() - started, _peak_gb())]
    if quick:
        epochs, X_tr, y_tr = min(epochs, 2), X_tr[:600], y_tr[:600]
        X_te, y_te = X_te[:300], y_te[:300]
    try:  # the user's choices, checked before training rather than after it
        probes = resolve_probes(probes, seed)
        if layers is not None:
            network = build_network(resolve_architecture(preset),
                                    check_images(X_tr[:1]).shape[1:], len(names))
            check_layers(layers, network.layer_names, "layers")
    except (TypeError, ValueError) as exc:
        raise ExperimentInputError(str(exc)) from None
    clf = CNNClassifier(preset, max_epochs=epochs, random_state=seed, verbose=verbose,
                        **train_params)
    clf, fit_seconds = fit_or_load(clf, X_tr, y_tr, out / "cnn.joblib", reuse=reuse_model,
                                   test_data=(X_te, y_te))
    peak_trained = _peak_gb()
    table, clf = probe_layers(clf, X_tr, y_tr, X_te, y_te, layers=layers,
                              probes=probes,
                              return_estimator=True, verbose=verbose)
    cnn_row = pd.DataFrame([{"layer": "logits", "probe": "cnn", "n_features": len(names),
                             "train_acc": clf.score(X_tr, y_tr),
                             "test_acc": clf.score(X_te, y_te),
                             "fit_seconds": fit_seconds}])
    stages += [("training", fit_seconds, peak_trained),
               ("extraction", table.attrs["extract_seconds"], None)]
    stages += [(f"probe {name}", float(table.loc[table["probe"] == name, "fit_seconds"].sum()),
                None) for name in dict.fromkeys(table["probe"])]
    stages[-1] = stages[-1][:2] + (_peak_gb(),)  # after extraction and every probe
    table = pd.concat([table, cnn_row], ignore_index=True)
    write_table(table, out, "probe")
    save_figure(learning_curves(clf, title=f"{preset} on {dataset}", reference=reference),
                out / "learning_curve.png")
    save_figure(probe_accuracy(table, chance=1 / len(names),
                               title=f"Which layer of {preset} separates {dataset}?"),
                out / "probe_accuracy.png")
    if tsne:
        tsne_start = time.perf_counter()
        probed = list(dict.fromkeys(table["layer"][table["probe"] != "cnn"]))
        n = 150 if quick else 2000
        feats = layer_features(clf, X_te[:n], probed)
        for layer in probed:
            fig = embedding(feats[layer], y_te[:n], "tsne", target_names=names,
                            title=f"t-SNE of {layer} ({preset}, {dataset} test)",
                            random_state=seed)
            save_figure(fig, out / f"tsne_{layer}.png")
        stages.append(("t-SNE", time.perf_counter() - tsne_start, _peak_gb()))
    _write_stages(stages, time.perf_counter() - started, out, verbose)
    return table


def _peak_gb():
    """This process's peak resident memory so far, in GB."""
    # ru_maxrss: kilobytes on Linux, bytes on macOS
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (
        2 ** 30 if sys.platform == "darwin" else 2 ** 20)


def _write_stages(stages, total, out, verbose):
    """``stages.csv``: seconds per stage of a run (probes: fitting only) and the peak memory
    so far where it was read (the last row: the run's peak)."""
    peak = _peak_gb()
    table = pd.DataFrame(stages + [("total (incl. scoring, figures)", total, peak)],
                         columns=["stage", "seconds", "peak_rss_gb"])
    table["peak_rss_gb"] = table["peak_rss_gb"].astype(float).round(3)
    table.attrs["peak_rss_gb"] = peak
    write_table(table, out, "stages")
    if verbose:
        print(f"time per stage (peak memory {peak:.2f} GB): " + ", ".join(
            f"{stage} {seconds:.1f} s" for stage, seconds, _ in stages + [("total", total, peak)]))


# Result-table columns before 0.2 (probe tables written by earlier versions).
_OLD_COLUMNS = {"train_score": "train_acc", "test_score": "test_acc"}


SETTINGS_FILE = "run_settings.json"


def _names(probes):
    return sorted(probes) if isinstance(probes, dict) else (
        [probes] if isinstance(probes, str) else list(probes))


def _write_settings(run_dir, settings):
    atomic_write(run_dir / SETTINGS_FILE,
                 lambda tmp: Path(tmp).write_text(json.dumps(settings, sort_keys=True)))


def _earlier_runs(out, labels, settings, verbose):
    """The probe tables of runs not asked for this time that finished before (so that
    ``--set runs=l2_fc`` still writes a table with both runs). A run's ``probe.csv``
    counts only when it probes the network there now (newer than ``cnn.joblib``) and was
    made with this call's settings (dataset, epochs, probes, seed, ``quick``:
    ``run_settings.json``); otherwise it is left out, with a message."""
    tables = []
    for label in labels:
        run = out / label
        probe, model, saved = run / "probe.csv", run / "cnn.joblib", run / SETTINGS_FILE
        if not probe.exists():
            continue
        reason = None
        if not model.exists() or probe.stat().st_mtime < model.stat().st_mtime:
            reason = "its probe.csv predates its network"
        elif not saved.exists() or json.loads(saved.read_text()) != json.loads(
                json.dumps(settings(label), sort_keys=True)):
            reason = "it was made with other settings (or before they were recorded)"
        if reason is not None:
            if verbose:
                print(f"{label}: left out of the table: {reason} (run --set runs={label} "
                      "to probe it again)")
            continue
        tables.append(pd.read_csv(probe).rename(columns=_OLD_COLUMNS).assign(
            regularization=label))
    return tables


@register_experiment(
    "layer_probes",
    description="linear probe per layer (flatten, fc1, fc2) of the two-conv CIFAR-10 net, "
                "without and with L2 (0.05) on the fc layers; t-SNE per layer (probes: "
                "logistic by default, the report's one-vs-rest linear_svc)",
    reference="report 000, task 1: flatten 0.634, fc1 0.7528, fc2 0.7689 (with L2)")
def layer_probes(out, quick=False, dataset="cifar10", epochs=43, runs=("no_l2", "l2_fc"),
                 probes=("linear_svc", "logistic"), weight_decay=0.05, reuse_model=True,
                 seed=0, verbose=1):
    """Report 000's probe: tf_cifar10, Adam lr 1e-4, batch 128, N(0, 0.01) init.

    43 epochs of the 45,000 training images (10 % held out) are 15,136 steps of 128,
    the report's "maximum of steps of 15000". Report 000 is TensorFlow code: its L2 0.05 is ``0.05 * tf.nn.l2_loss(w)``
    (``l2_convention="tf_l2_loss"``, gradient 0.05 w) on the fc layers.

    The probes: the report's one-vs-rest LinearSVC objective (``"linear_svc"``,
    solved by :class:`~sklearn_cnn.LinearProbe` on every core; liblinear's own
    solver, ``"liblinear_svc"``, did not finish within an hour on the 4,096
    ``flatten`` features of 45,000 images) beside multinomial logistic regression.

    ``weight_decay`` is the ``l2_fc`` run's lambda. Another value than the
    report's 0.05 is an ablation with its own folder and column, ``l2_fc_<lambda>``
    (``--set runs=l2_fc --set weight_decay=0.01``); a weaker L2 convention is the
    same as a smaller lambda here (every convention scales the gradient ``lambda w``).
    """
    if quick:
        dataset = "digits"
    if not weight_decay > 0:
        raise ExperimentInputError(f"weight_decay must be > 0 (the l2_fc run's lambda; "
                                   f"no_l2 is the run without), got {weight_decay!r}")
    runs = [runs] if isinstance(runs, str) else list(runs)
    if not runs or set(runs) - {"no_l2", "l2_fc"}:
        raise ExperimentInputError(f"runs must name one or more of ['no_l2', 'l2_fc'], "
                                   f"got {runs!r}")
    # The report's lambda keeps the folder name "l2_fc"; an ablation gets its own.
    # repr: the shortest text that reads back as the same float (the folder names it)
    l2_label = "l2_fc" if weight_decay == 0.05 else f"l2_fc_{float(weight_decay)!r}"
    all_runs = {"no_l2": 0.0, "l2_fc": 0.05, l2_label: float(weight_decay)}
    for folder in sorted(Path(out).glob("l2_fc_*")):  # earlier ablations join the table
        try:
            all_runs.setdefault(folder.name, float(folder.name[len("l2_fc_"):]))
        except ValueError:
            pass  # a folder of the user's, not a run
    runs = [l2_label if label == "l2_fc" else label for label in runs]
    reported = {"no_l2": {"report 000 test max": 0.755},
                l2_label: {"report 000 test (L2 0.05)": 0.7763}}

    def settings(label):  # what makes a run's table this run's (see _earlier_runs)
        return {"dataset": dataset, "epochs": epochs, "probes": _names(probes), "seed": seed,
                "quick": bool(quick), "weight_decay": all_runs[label]}

    tables = []
    for label in runs:
        wd = all_runs[label]
        sub = out / label
        sub.mkdir(exist_ok=True)
        t = run_probe(sub, dataset=dataset, preset="tf_cifar10", epochs=epochs,
                      probes=probes, seed=seed, quick=quick, verbose=verbose,
                      reuse_model=reuse_model, reference=reported[label],
                      lr=1e-4, batch_size=128, init="gaussian",
                      init_std=0.01,
                      weight_decay=wd, weight_decay_layers=["fc*"] if wd else None,
                      l2_convention="tf_l2_loss")
        tables.append(t.assign(regularization=label))
        _write_settings(sub, settings(label))
    tables += _earlier_runs(out, [label for label in all_runs if label not in runs], settings,
                            verbose)
    table = pd.concat(tables, ignore_index=True)
    wide = table.pivot_table(index=["layer", "probe"], columns="regularization",
                             values="test_acc", sort=False).reset_index()
    wide.columns.name = None
    write_table(table, out, "layer_probes_long")
    write_table(wide, out, "layer_probes")
    return wide
