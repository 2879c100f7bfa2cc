"""Resumable training (checkpoint_dir): kills, Ctrl-C, bad folders and files."""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from sklearn_cnn import CNNClassifier
from sklearn_cnn._io import atomic_write
from sklearn_cnn._checkpoint import FILENAME

WORKER = Path(__file__).with_name("_resume_worker.py")
ROOT = Path(__file__).resolve().parents[1]


def run_worker(kind, ckpt, out, kill_at=None):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("KILL_AT", None)
    if kill_at:
        env["KILL_AT"] = kill_at
    proc = subprocess.run([sys.executable, str(WORKER), kind, str(ckpt), str(out)], env=env,
                          capture_output=True, text=True, timeout=600)
    return proc


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted fits without checkpoint_dir, one per estimator kind."""
    cache = {}

    def get(kind):
        if kind not in cache:
            out = tmp_path_factory.mktemp("ref") / f"{kind}.npz"
            proc = run_worker(kind, "", out)
            assert proc.returncode == 0, proc.stderr
            cache[kind] = dict(np.load(out))
        return cache[kind]

    return get


# (kind, kill points in order, epoch the last run resumes at)
KILLS = [
    ("cnn", ["batch:2,3"], 1),                  # mid-epoch
    ("cnn", ["epoch:2"], 2),                    # between epochs, after epoch 2's checkpoint
    ("cnn", ["write:2", "batch:4,1"], 3),       # inside a checkpoint write, then again later
    ("siamese", ["batch:3,2"], 2),              # pair sampling generator
    ("transfer", ["batch:1,3", "epoch:2"], 2),  # unfreeze-at-step state, LR schedule
]


@pytest.mark.parametrize("kind, kills, resumed_at", KILLS,
                         ids=[f"{k}-{'-'.join(p)}" for k, p, _ in KILLS])
def test_sigkill_and_refit_is_bit_identical(tmp_path, reference, kind, kills, resumed_at):
    ckpt, out = tmp_path / "ckpt", tmp_path / "out.npz"
    for point in kills:
        proc = run_worker(kind, ckpt, out, kill_at=point)
        assert proc.returncode == -9, (point, proc.stderr)
        assert not out.exists()
    proc = run_worker(kind, ckpt, out)
    assert proc.returncode == 0, proc.stderr
    got, ref = dict(np.load(out)), reference(kind)
    assert int(got.pop("resumed_at_epoch")) == resumed_at
    ref = {k: v for k, v in ref.items() if k != "resumed_at_epoch"}
    assert sorted(got) == sorted(ref)
    for key in ref:  # weights, per-epoch losses and the outputs, bit for bit
        assert np.array_equal(got[key], ref[key]), key
    # The killed write's temp file was cleaned up; only the one checkpoint is left.
    assert sorted(p.name for p in ckpt.iterdir()) == [FILENAME]


@pytest.fixture
def data(small_digits):
    X, y = small_digits[0][:160], small_digits[1][:160]
    return X, y


def make(tmp_path, **kw):
    params = dict(max_epochs=3, batch_size=32, random_state=0, verbose=0,
                  checkpoint_dir=tmp_path / "ckpt")
    params.update(kw)
    return CNNClassifier(**params)


def test_finished_run_loads_without_training(tmp_path, data, monkeypatch):
    first = make(tmp_path).fit(*data)
    calls = []
    monkeypatch.setattr("sklearn_cnn._base.SkorchNet.train_step",
                        lambda self, *a, **k: calls.append(1))
    again = make(tmp_path).fit(*data)
    assert calls == []
    assert again.net_.resumed_at_epoch_ == 3
    np.testing.assert_array_equal(again.predict_proba(data[0]), first.predict_proba(data[0]))
    assert again.history_["train_loss"].tolist() == first.history_["train_loss"].tolist()


def test_other_parameters_or_data_raise_naming_the_difference(tmp_path, data):
    make(tmp_path, max_epochs=1).fit(*data)
    with pytest.raises(ValueError, match=r"lr=0.001 there, 0.01 now.*delete"):
        make(tmp_path, max_epochs=1, lr=0.01).fit(*data)
    with pytest.raises(ValueError, match="training data"):
        make(tmp_path, max_epochs=1).fit(data[0][::-1], data[1][::-1])
    # verbose is not part of the run
    make(tmp_path, max_epochs=1, verbose=1).fit(*data)


def test_checkpoint_dir_that_is_a_file_fails_before_training(tmp_path, data, monkeypatch):
    path = tmp_path / "file"
    path.write_text("x")
    monkeypatch.setattr("sklearn_cnn._base.SkorchNet.fit", lambda *a, **k: 1 / 0)
    with pytest.raises(ValueError, match="is a file, not a folder"):
        make(tmp_path, checkpoint_dir=path).fit(*data)
    with pytest.raises(ValueError, match="not a writable folder"):
        make(tmp_path, checkpoint_dir=path / "sub").fit(*data)
    with pytest.raises(TypeError, match="'checkpoint_dir' parameter of CNNClassifier must be "
                                        "an instance of 'str', an instance of 'os.PathLike'"):
        make(tmp_path, checkpoint_dir=3).fit(*data)


@pytest.mark.parametrize("corrupt", ["random", "empty", "truncated"])
def test_corrupt_checkpoint_raises_naming_the_file_and_keeps_it(tmp_path, data, corrupt):
    make(tmp_path, max_epochs=1).fit(*data)
    path = tmp_path / "ckpt" / FILENAME
    good = path.read_bytes()
    bad = {"random": np.random.RandomState(0).bytes(5000), "empty": b"",
           "truncated": good[: len(good) // 2]}[corrupt]
    path.write_bytes(bad)
    with pytest.raises(ValueError, match=r"checkpoint .*checkpoint\.pt' is unreadable"):
        make(tmp_path, max_epochs=1).fit(*data)
    assert path.read_bytes() == bad  # never silently overwritten


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, data, monkeypatch):
    real_save, calls = torch.save, []

    def save(obj, f, *a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr("sklearn_cnn._checkpoint.torch.save", save)
    with pytest.raises(OSError, match="No space left"):
        make(tmp_path).fit(*data)
    state = torch.load(tmp_path / "ckpt" / FILENAME, weights_only=True)
    assert len(state["history"]) == 1 and not state["finished"]
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [FILENAME]


class InterruptOnce(Callback):
    """Raise KeyboardInterrupt (as Ctrl-C does) once, in the 2nd batch of epoch 2."""

    fired = []

    def on_batch_end(self, net, training=False, **kwargs):
        if training and not self.fired and len(net.history) == 2 and \
                len(net.history[-1]["batches"]) == 2:
            self.fired.append(1)
            raise KeyboardInterrupt


def test_ctrl_c_warns_keeps_checkpoint_and_resumes_exactly(tmp_path, data):
    InterruptOnce.fired.clear()
    kw = dict(callbacks=[("interrupt", InterruptOnce())])
    with pytest.warns(UserWarning, match=r"interrupted after 1 of 3 epoch.*fit again"):
        clf = make(tmp_path, **kw).fit(*data)
    assert clf.interrupted_
    assert clf.predict(data[0][:5]).shape == (5,)  # still usable
    state = torch.load(tmp_path / "ckpt" / FILENAME, weights_only=True)
    assert len(state["history"]) == 1 and not state["finished"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resumed = make(tmp_path, **kw).fit(*data)
    assert not resumed.interrupted_ and resumed.net_.resumed_at_epoch_ == 1
    reference = make(tmp_path, checkpoint_dir=None, **kw).fit(*data)
    np.testing.assert_array_equal(resumed.predict_proba(data[0]),
                                  reference.predict_proba(data[0]))
    assert resumed.history_["valid_loss"].tolist() == reference.history_["valid_loss"].tolist()


def test_ctrl_c_without_checkpoint_dir_says_how_to_make_runs_resumable(tmp_path, data):
    InterruptOnce.fired.clear()
    with pytest.warns(UserWarning, match="Pass checkpoint_dir"):
        clf = make(tmp_path, checkpoint_dir=None,
                   callbacks=[("interrupt", InterruptOnce())]).fit(*data)
    assert clf.interrupted_ and len(clf.history_) == 1  # the completed epochs


def test_early_stopping_is_not_an_interrupt(tmp_path, data):
    clf = make(tmp_path, max_epochs=30, early_stopping=True, patience=1, lr=0.5).fit(*data)
    assert not clf.interrupted_ and len(clf.history_) < 30
    state = torch.load(tmp_path / "ckpt" / FILENAME, weights_only=True)
    assert state["finished"] and len(state["history"]) == len(clf.history_)


def test_random_state_none_resumes_with_the_saved_seed(tmp_path, data):
    InterruptOnce.fired.clear()
    kw = dict(random_state=None, callbacks=[("interrupt", InterruptOnce())])
    with pytest.warns(UserWarning):
        first = make(tmp_path, **kw).fit(*data)
    resumed = make(tmp_path, **kw).fit(*data)
    assert resumed.net_.checkpoint.seed == first.net_.checkpoint.seed
    assert resumed.history_["train_loss"].iloc[0] == first.history_["train_loss"].iloc[0]


def test_atomic_write_removes_temp_files_of_a_killed_write(tmp_path):
    stale = tmp_path / ".curve.png.k2j4x.png"
    stale.write_bytes(b"")
    other = tmp_path / ".other.png.abc.png"
    other.write_bytes(b"")
    atomic_write(tmp_path / "curve.png", lambda tmp: Path(tmp).write_bytes(b"png"))
    assert (tmp_path / "curve.png").read_bytes() == b"png"
    assert not stale.exists() and other.exists()


def test_a_parameter_added_later_matches_while_at_its_default(tmp_path, data):
    make(tmp_path, max_epochs=1).fit(*data)
    path = tmp_path / "ckpt" / FILENAME
    state = torch.load(path, weights_only=True)
    del state["params"]["l2_convention"]  # as written by a version without it
    torch.save(state, path)
    make(tmp_path, max_epochs=1).fit(*data)  # default: same run
    torch.save(state, path)
    with pytest.raises(ValueError, match="l2_convention=<absent> there, 'keras' now"):
        make(tmp_path, max_epochs=1, l2_convention="keras").fit(*data)


def test_fingerprint_tells_paths_and_enums_apart():
    from torchvision.models import ResNet18_Weights

    from sklearn_cnn._checkpoint import describe

    assert describe(Path("/a/w1.th")) != describe(Path("/a/w2.th"))
    assert "w1.th" in describe(Path("/a/w1.th"))
    assert describe(ResNet18_Weights.IMAGENET1K_V1).endswith("ResNet18_Weights.IMAGENET1K_V1")
    # objects by class and parameters, without memory addresses
    assert describe(CNNClassifier(lr=0.1)) == describe(CNNClassifier(lr=0.1))
    assert "0x" not in describe(CNNClassifier(callbacks=[InterruptOnce()]))


def test_a_checkpoint_naming_classes_by_their_old_module_still_matches(tmp_path, data):
    from sklearn_cnn._checkpoint import describe
    from sklearn_cnn.plot import RecordWeightHistograms

    # The package's classes are named without their module, so they may move between modules.
    assert describe(RecordWeightHistograms("conv1")).startswith(
        "sklearn_cnn.RecordWeightHistograms{")
    make(tmp_path, max_epochs=1, callbacks=[RecordWeightHistograms("conv1")]).fit(*data)
    path = tmp_path / "ckpt" / FILENAME
    state = torch.load(path, weights_only=True)
    new = state["params"]["callbacks"]
    # As a version naming classes by module path wrote it
    state["params"]["callbacks"] = new.replace("sklearn_cnn.", "sklearn_cnn.plot.")
    assert state["params"]["callbacks"] != new
    torch.save(state, path)
    again = make(tmp_path, max_epochs=1, callbacks=[RecordWeightHistograms("conv1")]).fit(*data)
    assert again.net_.resumed_at_epoch_ == 1  # the finished run, loaded
    # Another class (by qualname) is still another run.
    state["params"]["callbacks"] = new.replace("RecordWeightHistograms", "RecordActivations")
    torch.save(state, path)
    with pytest.raises(ValueError, match="callbacks=.*RecordActivations.* there"):
        make(tmp_path, max_epochs=1, callbacks=[RecordWeightHistograms("conv1")]).fit(*data)


def test_fingerprints_name_the_package_s_classes_without_their_module():
    from sklearn_cnn import callbacks, plot
    from sklearn_cnn._checkpoint import describe, without_package_module_paths

    text = "sklearn_cnn.RecordWeightHistograms{'bins': 50, 'every': 'epoch', 'layers': 'conv1'}"
    assert describe(plot.RecordWeightHistograms("conv1")) == text
    assert describe(callbacks.RecordWeightHistograms("conv1")) == text
    # What versions naming the module wrote compares equal, wherever the class was then.
    for module in ("plot", "plot.inspection", "callbacks"):
        assert without_package_module_paths(text.replace(".", f".{module}.", 1)) == text
    assert without_package_module_paths("[sklearn_cnn._base.InverseTimeDecay]") == \
        f"[{describe(callbacks.InverseTimeDecay)}]" == "[sklearn_cnn.InverseTimeDecay]"
    # Other packages' classes keep their module path.
    assert describe(torch.nn.ReLU) == "torch.nn.modules.activation.ReLU"
    assert without_package_module_paths("torch.nn.modules.activation.ReLU") == \
        "torch.nn.modules.activation.ReLU"


def test_a_backbone_described_before_layer_was_renamed_is_the_same_run():
    """0.1 described a TransferClassifier's backbone with ``'layer': ...``; now the
    parameter is ``layers`` and the unset deprecated ``layer`` is left out: a checkpoint
    written then still matches its run."""
    from sklearn_cnn import VGGFeatures
    from sklearn_cnn._checkpoint import describe, without_package_module_paths

    now = describe(VGGFeatures("pool4", arch="vgg11", weights=None))
    assert "'layers': 'pool4'" in now and "deprecated" not in now
    then = now.replace("'layers': ", "'layer': ")  # what 0.1 wrote
    assert without_package_module_paths(then) == without_package_module_paths(now)
