"""Fit one small estimator, optionally killing this process at a chosen point.

Run by tests/test_checkpoint.py as ``python _resume_worker.py KIND CKPT_DIR OUT``;
``KILL_AT`` in the environment says where to SIGKILL itself (none: run to the end):
``batch:E,B`` after batch B of epoch E (1-based), ``epoch:E`` when epoch E+1 begins
(after epoch E's checkpoint), ``write:N`` inside the N-th checkpoint write, after the
temp file is complete and before its rename. The fitted results go to OUT (.npz).
"""

import os
import signal
import sys

import numpy as np
import torch
from skorch.callbacks import Callback

torch.set_num_threads(1)


def _die():
    os.kill(os.getpid(), signal.SIGKILL)


class KillAt(Callback):
    """Reads KILL_AT at run time, so that its parameters (and the fingerprint) never change."""

    def on_epoch_begin(self, net, **kwargs):
        spec = os.environ.get("KILL_AT", "")
        if spec.startswith("epoch:") and len(net.history) == int(spec[6:]) + 1:
            _die()  # on_epoch_begin of epoch E+1: history already has its row

    def on_batch_end(self, net, training=False, **kwargs):
        spec = os.environ.get("KILL_AT", "")
        if training and spec.startswith("batch:"):
            epoch, batch = (int(v) for v in spec[6:].split(","))
            done = sum(1 for b in net.history[-1]["batches"] if "train_loss" in b)
            if len(net.history) == epoch and done == batch:
                _die()


def _patch_write_kill():
    spec = os.environ.get("KILL_AT", "")
    if not spec.startswith("write:"):
        return
    from sklearn_cnn import _io

    target, calls, replace = int(spec[6:]), [0], _io.os.replace

    def killing_replace(src, dst):
        calls[0] += 1
        if calls[0] == target:
            _die()
        return replace(src, dst)

    _io.os.replace = killing_replace


def make(kind, ckpt):
    from sklearn_cnn import CNNClassifier, CifarResNetFeatures, SiameseEmbedder, TransferClassifier
    from sklearn_cnn.datasets import load_digits_images

    common = dict(max_epochs=4, random_state=0, verbose=0, checkpoint_dir=ckpt or None,
                  callbacks=[("kill", KillAt())])
    if kind == "transfer":
        rng = np.random.RandomState(0)
        X = rng.randint(0, 256, (96, 16, 16, 3)).astype(np.uint8)
        y = np.arange(96) % 3
        est = TransferClassifier(CifarResNetFeatures(20, weights=None, random_state=0), head=(8,),
                                 unfreeze_after_steps=5, batch_size=16, lr_schedule="exponential",
                                 lr_gamma=0.5, random_flip=True, **common)
        return est, X, y
    d = load_digits_images()
    X, y = d.images[:240], d.target[:240]
    if kind == "siamese":
        est = SiameseEmbedder(embedding_dim=8, batch_size=32, random_shift=1, **common)
    else:  # "cnn": augmentation, dropout, a schedule and early stopping's state
        est = CNNClassifier("default", dropout=0.3, batch_size=32, random_flip=True,
                            random_shift=1, lr_schedule="annealing", lr_anneal_T=2.0,
                            early_stopping=True, patience=10, weight_decay=1e-4,
                            random_state=0, **{k: v for k, v in common.items()
                                               if k != "random_state"})
    return est, X, y


def main(kind, ckpt, out):
    _patch_write_kill()
    est, X, y = make(kind, ckpt)
    est.fit(X, y)
    result = {f"w_{k}": v.detach().numpy() for k, v in est.module_.state_dict().items()}
    hist = est.history_
    for col in ("train_loss", "valid_loss"):
        result[col] = hist[col].to_numpy(dtype=np.float64)
    result["output"] = est.transform(X) if kind == "siamese" else est.predict_proba(X)
    result["resumed_at_epoch"] = np.array(est.net_.resumed_at_epoch_)
    np.savez(out, **result)


if __name__ == "__main__":
    main(*sys.argv[1:4])
