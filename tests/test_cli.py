import json
import os
import subprocess
import sys

import joblib
import numpy as np
import pandas as pd
import pytest

from sklearn_cnn.cli import main


def test_probe_quick_writes_every_file(tmp_path, capsys):
    assert main(["probe", "--quick", "--out", str(tmp_path), "--epochs", "1"]) == 0
    names = {p.name for p in tmp_path.iterdir()}
    assert {"probe.csv", "probe.md", "probe_accuracy.png", "learning_curve.png",
            "tsne_flatten.png", "tsne_fc1.png", "tsne_fc2.png", "cnn.joblib", "COMPLETE"} <= names
    table = pd.read_csv(tmp_path / "probe.csv")
    assert set(table["layer"]) == {"flatten", "fc1", "fc2", "logits"}
    out = capsys.readouterr().out
    assert "| layer" in out and "time per stage (peak memory" in out
    stages = pd.read_csv(tmp_path / "stages.csv")
    assert stages["stage"].tolist() == ["loading", "training", "extraction", "probe linear_svc",
                                        "probe knn", "t-SNE", "total (incl. scoring, figures)"]
    assert (stages["seconds"] >= 0).all()
    assert stages["seconds"].iloc[-1] >= stages["seconds"].iloc[:-1].sum() - 1e-6
    assert 0 < stages["peak_rss_gb"].iloc[-1] < 24
    # the peak so far where it is read (loading, training, after the probes, t-SNE, total):
    # never falling, and the last row is the run's peak
    read = stages["peak_rss_gb"].dropna()
    assert stages["peak_rss_gb"].isna().tolist() == [False, False, True, True, False, False,
                                                     False]
    assert read.is_monotonic_increasing and read.iloc[-1] == read.max()


@pytest.mark.parametrize("argv,match", [
    (["probe", "--preset", "nope"], "unknown preset 'nope'"),
    (["probe", "--dataset", "/no/such/folder"], "neither 'digits'"),
    (["probe", "--epochs", "x"], "invalid int value"),
    (["probe", "--quick", "--probes", "svm9"], "unknown probe"),
    (["reproduce", "nope"], "unknown experiment 'nope'"),
    (["reproduce", "siamese_digits", "--set", "epochz=2"], "has no parameter(s) ['epochz']"),
    (["reproduce", "siamese_digits", "--set", "epochs"], "--set expects KEY=VALUE"),
    (["frobnicate"], "invalid choice"),
    (["reproduce", "siamese_digits", "--set", "epochs=[1,"],
     "--set epochs=[1,: parameter 'epochs' of experiment 'siamese_digits' must be an int"),
    (["reproduce", "siamese_digits", "--set", "epochs=abc"], "must be an int >= 0, got 'abc'"),
    (["reproduce", "siamese_digits", "--quick", "--set", "epochs=abc"], "got 'abc'"),
    (["reproduce", "siamese_digits", "--set", "epochs=-3"], "must be an int >= 0, got -3"),
    (["reproduce", "siamese_digits", "--set", "reuse_model=yes"], "must be True or False"),
    (["reproduce", "layer_probes", "--set", "runs=l2"], "runs must name one or more of"),
    (["probe", "--quick", "--layers", "fc9"], "unknown layers 'fc9'"),
    (["probe", "--quick", "--fast-path", "fp16"],
     "--fast-path: expected none, auto or a comma-separated list of channels_last"),
    (["train", "--fast-path", "auto,bf16"], "--fast-path: expected none, auto or"),
    (["train", "--batch-size", "0"],
     "'--batch-size' parameter of CNNClassifier must be an int in the range [1, inf). Got 0"),
])
def test_bad_options_one_line_error(argv, match, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err


@pytest.mark.parametrize("text, value", [
    ("auto", "auto"), ("none", None), ("channels_last", ["channels_last"]),
    ("channels_last,bf16", ["channels_last", "bf16"]),
])
def test_fast_path_option_reaches_the_estimator(text, value, tmp_path, monkeypatch):
    """--fast-path (default auto) is the estimators' fast_path, parsed once."""
    import sklearn_cnn.experiments.probing as probing

    seen = {}
    monkeypatch.setattr(probing, "run_probe", lambda out, **kw: seen.update(kw) or pd.DataFrame(
        [{"layer": "fc1", "probe": "knn", "test_acc": 1.0}]))
    assert main(["probe", "--quick", "--out", str(tmp_path / "a"), "--fast-path", text]) == 0
    assert seen["fast_path"] == value
    assert main(["probe", "--quick", "--out", str(tmp_path / "b")]) == 0
    assert seen["fast_path"] == "auto"


def test_set_values_are_typed_like_the_defaults():
    from sklearn_cnn.experiments import ExperimentInputError, check_experiment_params

    assert check_experiment_params("layer_probes", {"runs": "l2_fc", "probes": "knn,logistic"}) \
        == {"runs": ["l2_fc"], "probes": ["knn", "logistic"]}
    assert check_experiment_params("transfer_strategies", {"lr": 1, "refine_steps": 100}) == \
        {"lr": 1.0, "refine_steps": [100]}
    assert check_experiment_params("filter_stride_sweep", {"epochs": None}) == {"epochs": None}
    with pytest.raises(ExperimentInputError, match="must be an int >= 0 or None"):
        check_experiment_params("filter_stride_sweep", {"epochs": "x"})
    with pytest.raises(ExperimentInputError, match="a non-empty list of ints"):
        check_experiment_params("transfer_strategies", {"refine_steps": (1, "a")})


@pytest.mark.parametrize("command", [["train"], ["probe", "--quick"],
                                     ["reproduce", "siamese_digits", "--quick"]])
def test_bad_out_fails_before_any_work(command, tmp_path, capsys, monkeypatch):
    import sklearn_cnn.datasets
    import sklearn_cnn.experiments.probing
    import sklearn_cnn.experiments.siamese

    def no_work(*args, **kwargs):
        raise AssertionError("loaded data although --out is unusable")

    for module in (sklearn_cnn.datasets, sklearn_cnn.experiments.probing,
                   sklearn_cnn.experiments.siamese):
        monkeypatch.setattr(module, "load_train_test", no_work)
    a_file = tmp_path / "results.md"
    a_file.write_text("")
    assert main(command + ["--out", str(a_file)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert main(command + ["--out", str(a_file / "sub")]) == 2
    assert "cannot write there" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="permission bits do not bind root")
def test_unwritable_out_is_a_one_line_error(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert main(["train", "--out", str(locked)]) == 2
    finally:
        locked.chmod(0o700)
    assert "cannot write there" in capsys.readouterr().err


def test_internal_errors_keep_their_traceback(tmp_path, monkeypatch, capsys):
    from sklearn_cnn import CNNClassifier

    def broken_fit(self, X, y, **fit_params):
        raise ValueError("shapes (3,) and (4,) not aligned")  # a bug, not the user's input

    monkeypatch.setattr(CNNClassifier, "fit", broken_fit)
    with pytest.raises(ValueError, match="not aligned"):
        main(["probe", "--quick", "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="not aligned"):
        main(["train", "--epochs", "1"])


def test_debug_prints_the_traceback_of_input_errors(capsys):
    assert main(["--debug", "reproduce", "nope"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().endswith("'truncated_backbones']")
    assert main(["reproduce", "nope", "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err
    assert main(["reproduce", "nope"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_internal_error_exit_status_from_the_console(tmp_path):
    # through the interpreter as the console script runs: traceback, exit status 1
    code = ("import sys; from sklearn_cnn import CNNClassifier; from sklearn_cnn.cli import main;"
            "CNNClassifier.fit = lambda self, X, y: 1 / 0; sys.exit(main(sys.argv[1:]))")
    run = subprocess.run([sys.executable, "-c", code, "train", "--epochs", "1"],
                         capture_output=True, text=True)
    assert run.returncode == 1 and "ZeroDivisionError" in run.stderr
    assert "Traceback" in run.stderr


def test_list_and_reproduce_quick(tmp_path, capsys, monkeypatch):
    assert main(["list"]) == 0
    assert "layer_probes" in capsys.readouterr().out
    assert main(["reproduce", "siamese_digits", "--quick", "--out", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "siamese.csv")
    assert {"test_pair_loss", "linear_svc_test_acc", "precision_at_1"} <= set(table.columns)
    assert (tmp_path / "tsne_embedding.png").exists()
    # the finished embedder is reused from its checkpoint: same table without training
    from sklearn_cnn.siamese import SiameseNet

    def no_step(self, *args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(SiameseNet, "train_step", no_step)
    assert main(["reproduce", "siamese_digits", "--quick", "--out", str(tmp_path),
                 "--set", "reuse_model=True"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "siamese.csv"), table)


def test_layer_probes_table_layout(tmp_path):
    from sklearn_cnn.experiments import run_experiment

    wide = run_experiment("layer_probes", tmp_path, quick=True, verbose=0)
    assert set(wide.columns) == {"layer", "probe", "l2_fc", "no_l2"}
    assert wide["layer"].tolist() == ["flatten"] * 2 + ["fc1"] * 2 + ["fc2"] * 2 + ["logits"]
    assert wide["probe"].tolist() == ["linear_svc", "logistic"] * 3 + ["cnn"]
    assert (tmp_path / "no_l2" / "tsne_fc1.png").exists()


def test_layer_probes_table_gathers_the_runs_finished_before(tmp_path):
    """``runs=no_l2`` then ``runs=l2_fc`` (two background jobs) give the table of both; a
    run's probe table older than its network is left out, never mixed in."""
    import os

    from sklearn_cnn.experiments import run_experiment

    run_experiment("layer_probes", tmp_path, quick=True, runs="no_l2", probes="logistic",
                   verbose=0)
    wide = run_experiment("layer_probes", tmp_path, quick=True, runs="l2_fc",
                          probes="logistic", verbose=0)
    assert set(wide.columns) == {"layer", "probe", "l2_fc", "no_l2"}
    no_l2 = pd.read_csv(tmp_path / "no_l2" / "probe.csv").set_index(["layer", "probe"])
    assert wide.set_index(["layer", "probe"])["no_l2"].to_dict() == no_l2["test_acc"].to_dict()
    # a newer network than its probe table (retrained, not yet re-probed): left out
    model = tmp_path / "no_l2" / "cnn.joblib"
    later = os.stat(tmp_path / "no_l2" / "probe.csv").st_mtime + 10
    os.utime(model, (later, later))
    wide = run_experiment("layer_probes", tmp_path, quick=True, runs="l2_fc",
                          probes="logistic", verbose=0)
    assert set(wide.columns) == {"layer", "probe", "l2_fc"}
    # a table made with other settings (other probes) is left out too, never mixed in
    os.utime(model, (later - 20, later - 20))
    wide = run_experiment("layer_probes", tmp_path, quick=True, runs="l2_fc",
                          probes="linear_svc", verbose=0)
    assert set(wide.columns) == {"layer", "probe", "l2_fc"}


def test_layer_probes_weight_decay_ablation_has_its_own_run(tmp_path):
    """Another lambda than the report's is its own folder and column: the report's l2_fc
    run is neither overwritten nor mixed with it, and both are in the table."""
    from sklearn_cnn.experiments import ExperimentInputError, run_experiment

    run_experiment("layer_probes", tmp_path, quick=True, runs="l2_fc", probes="logistic",
                   verbose=0)
    wide = run_experiment("layer_probes", tmp_path, quick=True, runs="l2_fc",
                          weight_decay=0.01, probes="logistic", verbose=0)
    assert set(wide.columns) == {"layer", "probe", "l2_fc", "l2_fc_0.01"}
    for label, wd in [("l2_fc", 0.05), ("l2_fc_0.01", 0.01)]:
        settings = json.loads((tmp_path / label / "run_settings.json").read_text())
        assert settings["weight_decay"] == wd
    cnn = joblib.load(tmp_path / "l2_fc_0.01" / "cnn.joblib")
    assert cnn.weight_decay == 0.01 and cnn.weight_decay_layers == ["fc*"]
    with pytest.raises(ExperimentInputError, match="weight_decay must be > 0"):
        run_experiment("layer_probes", tmp_path, quick=True, weight_decay=0.0, verbose=0)


def test_l2_selected_layers_has_the_mnist_rows_and_can_leave_either_part_out(tmp_path):
    """Report 004's MNIST net without and with Keras L2 on all layers beside the CIFAR-10
    rows; dataset=None trains the MNIST rows only (and both None is an input error)."""
    from sklearn_cnn.experiments import ExperimentInputError, run_experiment

    table = run_experiment("l2_selected_layers", tmp_path, quick=True, dataset=None,
                           verbose=0)
    assert table["config"].tolist() == ["MNIST, no L2", "MNIST, L2 on all layers"]
    assert (tmp_path / "curves_MNIST__L2_on_all_layers.png").exists()
    model = joblib.load(tmp_path / "model_MNIST__L2_on_all_layers.joblib")
    assert (model.weight_decay, model.l2_convention) == (0.01, "keras")
    marker = (tmp_path / "COMPLETE").read_text()
    with pytest.raises(ExperimentInputError, match="nothing to train"):
        run_experiment("l2_selected_layers", tmp_path, quick=True, dataset=None,
                       mnist_dataset=None, verbose=0)
    # an input error leaves a finished folder finished
    assert (tmp_path / "COMPLETE").read_text() == marker


def test_console_script_entry_point():
    import shutil

    script = shutil.which("sklearn-cnn")
    if script is None:
        pytest.skip("the sklearn-cnn console script is not installed (pip install -e .)")
    out = subprocess.run([script, "presets"], capture_output=True, text=True,
                         check=True).stdout
    assert "cifar_3x3" in out and "295,402" in out


def _experiment_names():
    from sklearn_cnn.experiments import list_experiments

    return list_experiments()["name"].tolist()


@pytest.mark.parametrize("name", [n for n in _experiment_names() if n != "layer_probes"])
def test_every_experiment_runs_quick(name, tmp_path):
    from sklearn_cnn.experiments import run_experiment

    table = run_experiment(name, tmp_path, quick=True, verbose=0)
    assert len(table) >= 1
    assert any(p.suffix == ".csv" for p in tmp_path.rglob("*"))
    assert any(p.suffix == ".png" for p in tmp_path.rglob("*"))


def test_layer_probes_runs_and_reuse_model(tmp_path, monkeypatch):
    from sklearn_cnn._base import SkorchNet
    from sklearn_cnn.experiments import run_experiment

    wide = run_experiment("layer_probes", tmp_path, quick=True, runs="l2_fc",
                          probes=["linear_svc", "logistic"], verbose=0)
    assert set(wide.columns) == {"layer", "probe", "l2_fc"}
    assert wide["probe"].tolist()[:2] == ["linear_svc", "logistic"]
    assert not (tmp_path / "no_l2").exists()
    first = pd.read_csv(tmp_path / "l2_fc" / "probe.csv")
    assert (tmp_path / "l2_fc" / "cnn.joblib").exists()

    # the finished network is loaded from its checkpoint: same numbers, no training step
    def no_step(self, *args, **kwargs):
        raise AssertionError("trained again although the saved model matches")

    monkeypatch.setattr(SkorchNet, "train_step", no_step)
    run_experiment("layer_probes", tmp_path, quick=True, runs=["l2_fc"], reuse_model=True,
                   probes=["linear_svc", "logistic"], verbose=0)
    again = pd.read_csv(tmp_path / "l2_fc" / "probe.csv")
    pd.testing.assert_frame_equal(first.drop(columns="fit_seconds"),
                                  again.drop(columns="fit_seconds"))
    # a different setting (other epochs) is another run: a clear error, nothing trained
    with pytest.raises(ValueError, match=r"max_epochs=2 there, 1 now"):
        run_experiment("layer_probes", tmp_path, quick=True, runs="l2_fc", reuse_model=True,
                       epochs=1, verbose=0)
    with pytest.raises(ValueError, match="runs must name one or more of"):
        run_experiment("layer_probes", tmp_path, quick=True, runs=["l2"], verbose=0)


def test_fit_or_load_reuses_a_finished_run_and_retrains_on_request(tmp_path, digits,
                                                                    monkeypatch):
    import joblib

    from sklearn_cnn import CNNClassifier
    from sklearn_cnn._base import SkorchNet
    from sklearn_cnn.experiments import fit_or_load

    X, y = digits.images[:120], digits.target[:120]
    path = tmp_path / "m.joblib"
    make = lambda: CNNClassifier(max_epochs=2, random_state=0, verbose=0)  # noqa: E731
    first, _ = fit_or_load(make(), X, y, path)
    assert path.exists() and (tmp_path / "m.ckpt" / "checkpoint.pt").exists()
    steps, real_step = [], SkorchNet.train_step

    def counting_step(self, *args, **kwargs):
        steps.append(1)
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(SkorchNet, "train_step", counting_step)
    path.write_bytes(path.read_bytes()[:100])  # a truncated copy: never read back
    same, seconds = fit_or_load(make(), X, y, path)
    assert steps == [] and seconds > 0
    assert joblib.load(path).predict(X[:3]).shape == (3,)  # written again, whole
    np.testing.assert_array_equal(same.predict_proba(X), first.predict_proba(X))
    fresh, _ = fit_or_load(make(), X, y, path, reuse=False)
    assert len(steps) > 0
    np.testing.assert_array_equal(fresh.predict_proba(X), first.predict_proba(X))


def test_interrupted_experiment_exits_130_and_resumes_on_the_same_out(tmp_path, monkeypatch,
                                                                      capsys):
    from sklearn_cnn._base import SkorchNet
    from sklearn_cnn.cli import main

    out = tmp_path / "run"
    argv = ["reproduce", "layer_probes", "--quick", "--out", str(out), "--set", "runs=l2_fc"]
    calls, real_step = [], SkorchNet.train_step

    def interrupting_step(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 7:  # in the second of the two epochs
            raise KeyboardInterrupt
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(SkorchNet, "train_step", interrupting_step)
    with pytest.warns(UserWarning, match="interrupted after 1 of 2"):
        assert main(argv) == 130
    assert "run the same command" in capsys.readouterr().err
    assert not (out / "COMPLETE").exists() and not (out / "l2_fc" / "probe.csv").exists()
    monkeypatch.setattr(SkorchNet, "train_step", real_step)
    assert main(argv) == 0
    assert "resumed at epoch 1 of 2" in capsys.readouterr().out
    assert (out / "COMPLETE").exists() and (out / "l2_fc" / "probe.csv").exists()


@pytest.mark.parametrize("command", ["list", "presets"])
def test_list_and_presets_fit_100_columns_and_name_everything(command, capsys):
    from sklearn_cnn.architectures import list_architectures
    from sklearn_cnn.experiments import list_experiments

    names = list(list_experiments()["name"]) if command == "list" else list_architectures()
    assert main([command]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 100
    firsts = [line.split()[0] for line in lines if line and not line.startswith(" ")]
    assert firsts == names  # every entry, in order, each on its own first line
    assert main([command, "--format", "csv"]) == 0
    csv = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    assert list(csv.iloc[:, 0]) == names
    assert main([command, "--wide"]) == 0
    assert capsys.readouterr().out.startswith("|")


def test_every_training_experiment_takes_epochs():
    import inspect

    from sklearn_cnn import experiments

    experiments._load()
    no_training = {"knn_k_sweep", "pretrained_layer_probes"}  # frozen pretrained features only
    for name, exp in experiments._EXPERIMENTS.items():
        params = inspect.signature(exp["fn"]).parameters
        assert ("epochs" in params) == (name not in no_training), name


def test_report_networks_passes_fast_path_and_checks_it_first(tmp_path):
    from sklearn_cnn.experiments import ExperimentInputError
    from sklearn_cnn.experiments.architectures import report_networks

    with pytest.raises(ExperimentInputError, match="fast_path must be None, 'auto'"):
        report_networks(tmp_path, quick=True, nets=("conv3_fc3",), fast_path="fp16", verbose=0)
    assert not list(tmp_path.iterdir())  # checked before any work
    report_networks(tmp_path, quick=True, nets=("conv3_fc3",), fast_path="channels_last",
                    verbose=0)
    clf = joblib.load(tmp_path / "model_conv3_fc3.joblib")
    assert clf.fast_path == "channels_last" and clf.fast_path_ == ("channels_last",)


def test_report_networks_takes_a_list_of_fast_paths_from_the_command_line(tmp_path):
    # --set "fast_path=['channels_last', 'bf16']" once fell through to the raw text
    from sklearn_cnn.cli import _parse_set
    from sklearn_cnn.experiments import ExperimentInputError, check_experiment_params
    from sklearn_cnn.experiments.architectures import report_networks

    key, candidates = _parse_set("fast_path=['channels_last', 'bf16']")
    assert check_experiment_params("report_networks", {key: candidates[0]}) == {
        "fast_path": ["channels_last", "bf16"]}
    assert check_experiment_params("report_networks", {"fast_path": "auto"}) == {
        "fast_path": "auto"}
    with pytest.raises(ExperimentInputError, match="fast_path must be None, 'auto'"):
        report_networks(tmp_path, quick=True, nets=("conv3_fc3",),
                        fast_path=["channels_last", "fp16"], verbose=0)
    assert not list(tmp_path.iterdir())  # a bad item in the list is caught before any work


def test_report_networks_max_epochs_is_a_deprecated_alias(tmp_path):
    from sklearn_cnn.experiments.architectures import report_networks

    with pytest.warns(FutureWarning, match="use epochs") as caught:
        table = report_networks(tmp_path, quick=True, nets=("conv3_fc3",), max_epochs=1,
                                verbose=0)
    assert [w.filename for w in caught if w.category is FutureWarning] == [__file__]
    assert table["epochs"].tolist() == [1]
    assert {"valid_acc", "test_top5_acc", "epoch_seconds"} <= set(table.columns)
    assert (table["test_top5_acc"] >= table["test_acc"]).all()


@pytest.mark.parametrize("argv", [["probe", "--quick", "--dataset", "cifar10"],
                                  ["reproduce", "layer_probes", "--quick", "--set",
                                   "dataset=cifar10"]])
def test_quick_means_the_embedded_digits_everywhere(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert "--quick is a seconds-long run on the embedded digits" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # refused before any folder is made
