"""The skorch callbacks of sklearn_cnn's training loops, in one module.

The estimators add :class:`RecordLR` (and, for ``lr_schedule="annealing"``, an
:class:`InverseTimeDecay` schedule), :class:`UnfreezeAtStep` and the test-set
scoring themselves; :class:`RecordWeightHistograms` is the user's to pass
(``callbacks=[...]``).

Low in the import order (skorch, numpy and ``_input`` only), so that the
estimators and :mod:`sklearn_cnn.plot` can both import it.
"""

import numpy as np
import torch
from skorch.callbacks import Callback, PrintLog

from ._input import check_positive_int
from ._layers import module_for

__all__ = ["RecordLR", "InverseTimeDecay", "UnfreezeAtStep", "RecordWeightHistograms"]


class RecordLR(Callback):
    """Record the learning rate used in each epoch as history column ``lr``.

    The rate of the first parameter group, read as the epoch begins.
    """

    def on_epoch_begin(self, net, **kwargs):
        net.history.record("lr", net.optimizer_.param_groups[0]["lr"])


class InverseTimeDecay:
    """lr factor 1 / (1 + epoch / T): the annealing schedule of the reference reports.

    Not a callback itself but the ``lr_lambda`` of skorch's
    ``LRScheduler("LambdaLR")``; a class, not a lambda, so that fitted
    estimators pickle (and LambdaLR saves its state in checkpoints).

    Parameters
    ----------
    T : float
        Epochs until the rate is halved.
    """

    def __init__(self, T):
        self.T = T

    def __call__(self, epoch):
        return 1.0 / (1.0 + epoch / self.T)


class UnfreezeAtStep(Callback):
    """Make every backbone parameter trainable after exactly ``step`` optimisation steps.

    For a :class:`~sklearn_cnn.TransferClassifier`'s net (``module_.backbone``);
    frozen BatchNorm layers go back to train mode with it.

    Parameters
    ----------
    step : int
        Optimisation steps (training batches) before the backbone unfreezes.
    """

    def __init__(self, step):
        self.step = step

    def initialize(self):
        self.steps_done_ = 0
        return self

    def on_batch_end(self, net, training=False, **kwargs):
        if not training:
            return
        self.steps_done_ += 1
        if self.steps_done_ == self.step:
            for p in net.module_.backbone.parameters():
                p.requires_grad_(True)
            net.module_.train(net.module_.training)  # BatchNorm back to train mode


class _TestScoring(Callback):
    """Loss and accuracy on held-out test data at the end of each epoch.

    History columns ``test_loss`` (cross-entropy) and ``test_acc``; what
    ``fit(X, y, test_data=...)`` of the trainers adds.

    Parameters
    ----------
    estimator : CNNClassifier or TransferClassifier
        The estimator being fitted (its ``predict_proba`` scores the net as it is).
    X : array-like
        Test images.
    y : ndarray of int
        Encoded test labels (indices into ``estimator.classes_``).
    """

    def __init__(self, estimator, X, y):
        self.estimator, self.X, self.y = estimator, X, y

    def on_epoch_end(self, net, **kwargs):
        # Each DataLoader iterator draws its base seed from torch's global generator: without
        # the fork, scoring the test set would change the shuffling and dropout of the
        # epochs after it, and a run with test curves would train other weights.
        with torch.random.fork_rng(devices=[]):
            proba = self.estimator.predict_proba(self.X)
        p = np.clip(proba[np.arange(len(self.y)), self.y], 1e-12, None)
        net.history.record("test_loss", float(-np.log(p).mean()))
        net.history.record("test_acc", float((proba.argmax(1) == self.y).mean()))


class RecordWeightHistograms(Callback):
    """skorch callback: a histogram of each layer's weights after every epoch.

    Each record is stored in the net's history as ``hist_<layer>`` (so in
    ``estimator.history_`` as a column): a tuple ``(counts, edges)`` of lists,
    as :func:`numpy.histogram` returns them. Only parameters named
    ``weight`` are counted (conv kernels, dense matrices; not biases).
    Draw the records with :func:`sklearn_cnn.plot.weight_histogram_progression`.

    Parameters
    ----------
    layers : str or list of str
        Layer names of the network (``conv1``, ``fc1``, ``logits``, ...).
    bins : int, default=50
    every : "epoch" or int, default="epoch"
        Record after every epoch, or after epochs 1, 1 + n, 1 + 2n, ...

    Examples
    --------
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> d = load_digits_images()
    >>> clf = CNNClassifier("mnist_5x5", max_epochs=2, verbose=0, random_state=0,
    ...                     callbacks=[RecordWeightHistograms(["conv1"])])
    >>> counts, edges = clf.fit(d.images[:100], d.target[:100]).history_["hist_conv1"].iloc[-1]
    >>> len(counts), len(edges)
    (50, 51)
    """

    def __init__(self, layers, bins=50, every="epoch"):
        self.layers = layers
        self.bins = bins
        self.every = every

    def initialize(self):
        layers = [self.layers] if isinstance(self.layers, str) else self.layers
        if not isinstance(layers, (list, tuple)) or not layers or \
                not all(isinstance(n, str) for n in layers):
            raise TypeError(f"layers must be a layer name or a non-empty list of layer names, "
                            f"got {self.layers!r}")
        check_positive_int(self.bins, "bins")
        if self.every != "epoch":
            check_positive_int(self.every, "every (\"epoch\" or an int)")
        self.layers_ = list(layers)
        return self

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.modules_ = {}
        for layer in self.layers_:
            try:
                m = module_for(net.module_, layer)
            except ValueError as e:
                raise ValueError(f"RecordWeightHistograms: {e}") from None
            if m is None or not any(n.split(".")[-1] == "weight" for n, _ in m.named_parameters()):
                raise ValueError(f"RecordWeightHistograms: layer {layer!r} has no weights")
            self.modules_[layer] = m
        # Histograms are data for figures, not columns for the epoch log.
        for _, cb in getattr(net, "callbacks_", []):
            if isinstance(cb, PrintLog) and hasattr(cb, "keys_ignored_"):
                cb.keys_ignored_ = set(cb.keys_ignored_) | {f"hist_{n}" for n in self.layers_}

    def on_epoch_end(self, net, **kwargs):
        epoch = len(net.history)
        if self.every != "epoch" and (epoch - 1) % int(self.every):
            return
        for layer, m in self.modules_.items():
            w = np.concatenate([p.detach().cpu().float().numpy().ravel()
                                for n, p in m.named_parameters()
                                if n.split(".")[-1] == "weight"])
            counts, edges = np.histogram(w, bins=int(self.bins))
            net.history.record(f"hist_{layer}", (counts.tolist(), edges.tolist()))

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("modules_", None)  # references into the network; rebuilt on train begin
        return state
