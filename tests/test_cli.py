import subprocess
import sys

import pandas as pd
import pytest

from sklearn_cnn.cli import main


def test_probe_quick_writes_every_file(tmp_path, capsys):
    assert main(["probe", "--quick", "--out", str(tmp_path), "--epochs", "1"]) == 0
    names = {p.name for p in tmp_path.iterdir()}
    assert {"probe.csv", "probe.md", "learning_curve.png", "tsne_flatten.png", "tsne_fc1.png",
            "tsne_fc2.png"} <= names
    table = pd.read_csv(tmp_path / "probe.csv")
    assert set(table["layer"]) == {"flatten", "fc1", "fc2", "logits"}
    assert "| layer" in capsys.readouterr().out


@pytest.mark.parametrize("argv,match", [
    (["probe", "--preset", "nope"], "unknown preset 'nope'"),
    (["probe", "--dataset", "/no/such/folder"], "neither 'digits'"),
    (["probe", "--epochs", "x"], "invalid int value"),
    (["probe", "--quick", "--probes", "svm9"], "unknown probe"),
    (["reproduce", "nope"], "unknown experiment 'nope'"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_options_one_line_error(argv, match, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err


def test_list_and_reproduce_quick(tmp_path, capsys):
    assert main(["list"]) == 0
    assert "layer_probes" in capsys.readouterr().out
    assert main(["reproduce", "layer_probes", "--quick", "--out", str(tmp_path)]) == 0
    wide = pd.read_csv(tmp_path / "layer_probes.csv")
    assert list(wide.columns) == ["layer", "l2_fc", "no_l2"] or \
        set(wide.columns) == {"layer", "l2_fc", "no_l2"}
    assert (tmp_path / "no_l2" / "tsne_fc1.png").exists()


def test_console_script_entry_point():
    out = subprocess.run([sys.executable, "-m", "sklearn_cnn.cli", "presets"],
                         capture_output=True, text=True, check=True).stdout
    assert "cifar_3x3" in out and "295402" in out
