"""Training plumbing shared by every trainable estimator of sklearn_cnn.

The estimators are plain scikit-learn estimators (``__init__`` stores
parameters, nothing else) that build a skorch net in ``fit`` and keep it as
``net_``. Training is always skorch's loop; what differs per estimator lives
in small overridable hooks of :class:`SkorchNet` (``train_step_single``,
``get_loss``), as in skorch itself.
"""

import contextlib
import fnmatch
import warnings

import numpy as np
import pandas as pd
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import EarlyStopping, EpochScoring, LRScheduler, ProgressBar
from skorch.dataset import ValidSplit
from skorch.utils import to_device, to_tensor
from sklearn.utils import check_random_state

from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d

from ._fast_path import check_fast_path, choose_fast_path
from ._checkpoint import (CheckpointMixin, TrainingCheckpoint, data_fingerprint,
                          default_params_fingerprint, params_fingerprint)
from ._params import L2_CONVENTIONS, OPTIMIZERS
from ._input import ImageBatches, check_device, check_image_shape, check_images
from ._layers import LayerView
from .callbacks import InverseTimeDecay, RecordLR, _TestScoring

HISTORY_COLUMNS = ["epoch", "train_loss", "train_acc", "valid_loss", "valid_acc", "lr", "dur"]


class AugmentMixin:
    """One extra skorch hook: train-time augmentation.

    ``augment`` is a callable ``(X_batch) -> X_batch`` applied to each training
    batch (never to validation or prediction batches).
    """

    def __init__(self, *args, augment=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.augment = augment

    def train_step_single(self, batch, **fit_params):
        if self.augment is not None:
            Xi, yi = batch
            batch = (self.augment(Xi), yi)
        return super().train_step_single(batch, **fit_params)


def zero_denormals(tensors):
    """Set denormal entries (0 < |x| < finfo.tiny) of CPU float tensors to zero, in place."""
    for t in tensors:
        if t.is_floating_point() and t.device.type == "cpu":
            # hardshrink(x, tiny) = x where |x| > tiny, else 0: one fused pass (5x
            # faster than abs / compare / masked_fill).
            t.copy_(torch.nn.functional.hardshrink(t, torch.finfo(t.dtype).tiny))


def flush_denormal_enabled():
    """Whether this thread flushes denormal floats to zero (torch has no getter)."""
    return torch.tensor([1e-39]).mul(2.0).item() == 0.0


@contextlib.contextmanager
def flush_denormal():
    """Flush denormals to zero on the calling thread inside the block, then restore."""
    previous = flush_denormal_enabled()
    torch.set_flush_denormal(True)  # a no-op returning False where the CPU lacks FTZ/DAZ
    try:
        yield
    finally:
        torch.set_flush_denormal(previous)


class FastPathMixin:
    """Three extra skorch hooks: training with denormal floats flushed to zero
    (``fit_loop`` and ``train_step``, always) and an opt-in faster forward pass
    (``infer``).

    Denormals: weight decay shrinks the weights of inactive units, and with
    them Adam's moments, into the denormal range (|x| < 1.2e-38), where CPU
    arithmetic takes a slow microcode path; a CIFAR-10 epoch with L2 on all
    layers slowed from 45 s to over 4 minutes within two epochs. TensorFlow,
    which the reference reports used, flushes denormals on CPU. Here the
    calling thread flushes them during ``fit`` (:func:`flush_denormal`), and,
    since that flag does not reach the OpenMP worker threads, the weights and
    optimizer state are also zeroed every ``zero_denormals_every`` steps
    (:func:`zero_denormals`).

    ``fast_path`` is a set of:

    - ``"channels_last"``: module weights and 4-d input batches in NHWC memory
      layout (oneDNN's native convolution layout on CPU);
    - ``"compile"``: the forward pass through ``torch.compile`` (the module
      itself stays uncompiled, so parameter names, pickling and the layer
      extractors are unchanged; compilation costs time on the first batches);
    - ``"bf16"``: forward under ``torch.autocast`` with bfloat16 (the loss and
      the returned outputs are float32; weights stay float32).
    """

    def __init__(self, *args, fast_path=frozenset(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fast_path = fast_path

    def initialize_module(self):
        super().initialize_module()
        if "channels_last" in self.fast_path:
            self.module_.to(memory_format=torch.channels_last)
        # A dict, not a module attribute: skorch would register a module as trainable.
        self._compiled = {}
        return self

    # Zeroing costs ~2 % of a small net's step (cifar_3x3, batch 32); every 8th step
    # it costs < 0.3 %, and the few denormals that build up in between do not slow
    # training (every 32nd step, 200-step stretches ran up to 40 % slower).
    zero_denormals_every = 8

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        with flush_denormal():
            return super().fit_loop(X, y, epochs=epochs, **fit_params)

    def train_step(self, batch, **fit_params):
        step = super().train_step(batch, **fit_params)
        self._train_steps = getattr(self, "_train_steps", 0) + 1
        if self._train_steps % self.zero_denormals_every == 0:
            with torch.no_grad():
                zero_denormals(self.module_.parameters())
                zero_denormals(value for state in self.optimizer_.state.values()
                               for value in state.values() if torch.is_tensor(value))
        return step

    def infer(self, x, **fit_params):
        if not self.fast_path:
            return super().infer(x, **fit_params)
        x = to_tensor(x, device=self.device)
        if "channels_last" in self.fast_path and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        module = self.module_
        if "compile" in self.fast_path:
            if "module" not in self._compiled:
                self._compiled["module"] = torch.compile(module)
            module = self._compiled["module"]
        bf16 = "bf16" in self.fast_path
        with torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16,
                            enabled=bf16):
            out = module(x, **fit_params)
        return out.float() if bf16 and torch.is_tensor(out) else out

    def __getstate__(self):
        state = super().__getstate__()
        state["_compiled"] = {}  # compiled graphs do not pickle; rebuilt on demand
        return state


class SkorchNet(CheckpointMixin, AugmentMixin, FastPathMixin, NeuralNetClassifier):
    """skorch's classifier with checkpoints, train-time augmentation and the opt-in fast path.

    Prediction takes the checked images lazily (an :class:`~sklearn_cnn._input.ImageBatches`)
    and converts one inference batch at a time (:meth:`forward_iter`): scoring 45,000
    CIFAR-10 images never makes the 553 MB float32 copy (and its transposed twin) that
    converting them whole took, and the per-epoch test scoring of ``test_data`` skips it
    every epoch.
    """

    def forward_iter(self, X, training=False, device="cpu"):
        if not isinstance(X, ImageBatches):
            yield from super().forward_iter(X, training=training, device=device)
            return
        kwargs = self.get_params_for("iterator_valid")
        batch_size = kwargs.get("batch_size", self.batch_size)
        if batch_size == -1:  # skorch's "the whole dataset in one batch"
            batch_size = len(X)
        for start in range(0, len(X), batch_size):
            batch = (torch.from_numpy(X[start:start + batch_size]), None)
            yield to_device(self.evaluation_step(batch, training=training), device=device)


class Augment:
    """Random horizontal flips and random shifts (zero-filled) of image batches.

    Uses torch's global RNG, which the estimators seed from ``random_state``.
    """

    def __init__(self, flip=False, shift=0):
        self.flip, self.shift = flip, shift

    def __call__(self, X):
        if self.flip:
            mask = torch.rand(X.shape[0], device=X.device) < 0.5
            X = torch.where(mask[:, None, None, None], X.flip(-1), X)
        if self.shift:
            n, c, h, w = X.shape
            s = self.shift
            padded = torch.nn.functional.pad(X, (s, s, s, s))
            dy = torch.randint(0, 2 * s + 1, (n,), device=X.device)
            dx = torch.randint(0, 2 * s + 1, (n,), device=X.device)
            rows = (dy[:, None] + torch.arange(h, device=X.device))[:, None, :, None]
            cols = (dx[:, None] + torch.arange(w, device=X.device))[:, None, None, :]
            X = padded[torch.arange(n, device=X.device)[:, None, None, None],
                       torch.arange(c, device=X.device)[None, :, None, None], rows, cols]
        return X


class NetClassifierMixin:
    """predict / predict_proba of the classifiers: softmax of the skorch net's logits.

    Subclasses say what the net takes in :meth:`_net_inputs` (checked images, or
    precomputed backbone features).
    """

    def _net_inputs(self, X):  # pragma: no cover - abstract
        raise NotImplementedError

    def predict_proba(self, X):
        """Class probabilities (softmax of the logits), shape (n, n_classes)."""
        inputs = self._net_inputs(X)  # checks fitted-ness before net_ is read
        proba = self.net_.predict_proba(inputs).astype(np.float64)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        return np.log(self.predict_proba(X))

    def predict(self, X):
        """Predicted class labels, shape (n,)."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


def seed_from(random_state):
    """An int seed drawn from ``random_state`` (None, int or RandomState)."""
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


@contextlib.contextmanager
def torch_seed(seed, device="cpu"):
    """Seed torch inside the block and restore the caller's RNG state afterwards."""
    devices = [torch.device(device).index or 0] if str(device).startswith("cuda") else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def init_weights(module, init, std):
    """Re-initialise conv / linear weights in place (biases to zero)."""
    if init is None:
        return
    for m in module.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            if init == "gaussian":
                torch.nn.init.normal_(m.weight, 0.0, std)
            elif init == "xavier":
                torch.nn.init.xavier_uniform_(m.weight)
            elif init == "kaiming":
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                torch.nn.init.zeros_(m.bias)


def valid_split(validation_fraction, y, seed):
    """skorch train_split for ``validation_fraction``; stratified when possible.

    Returns None (train on everything) when the fraction is None or too small
    to hold a single sample.
    """
    if validation_fraction is None:
        return None
    n_valid = int(np.floor(validation_fraction * len(y)))
    if n_valid < 1 or len(y) - n_valid < 1:
        return None
    counts = np.bincount(y)
    stratified = n_valid >= len(counts) and counts.min() >= 2 and \
        len(y) - n_valid >= len(counts)
    return ValidSplit(validation_fraction, stratified=stratified, random_state=seed)


class TrainingMixin:
    """Validation of the training options and construction of the skorch net.

    Subclasses declare their own parameters with :func:`sklearn_cnn._params.declare`
    (which adds the shared training parameters, the ``__init__`` and the constraints
    table) and call :meth:`_fit_net`.
    """

    _history_columns = HISTORY_COLUMNS

    def _check_xy(self, X, y, image_shape=None, lazy=False):
        """Validate fit's images and labels; set ``image_shape_``, ``n_features_in_`` and
        ``integer_input_``.

        Returns the images (float32 (n, C, H, W), or ImageBatches when ``lazy``),
        the sorted classes and ``y`` encoded as 0..n_classes-1.
        """
        check_image_shape(image_shape)
        images, self.integer_input_ = check_images(X, image_shape=image_shape, lazy=lazy,
                                                   return_integer=True)
        y = column_or_1d(y, warn=True)
        check_consistent_length(images, y)
        check_classification_targets(y)
        classes, y_enc = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes in y; "
                             f"got 1 class ({classes[0]!r})")
        self.image_shape_ = tuple(int(s) for s in images.shape[1:])
        self.n_features_in_ = int(np.prod(self.image_shape_))
        return images, classes, y_enc

    def _check_test_data(self, test_data):
        """``test_data`` checked like ``X, y`` (after :meth:`_check_xy`, before any training):
        None or (X_test, y_test encoded as indices into ``classes_``)."""
        if test_data is None:
            return None
        if not isinstance(test_data, (tuple, list)) or len(test_data) != 2:
            raise TypeError(f"test_data must be a pair (X_test, y_test), got "
                            f"{type(test_data).__name__}")
        X_test, y_test = test_data
        images = check_images(X_test, image_shape=getattr(self, "image_shape", None),
                              expected_shape=self.image_shape_, name="test_data X_test",
                              estimator=type(self).__name__, lazy=True,
                              integer_fit=self.integer_input_)
        y_test = column_or_1d(y_test, warn=True)
        if len(images) != len(y_test):
            raise ValueError(f"test_data: X_test has {len(images)} samples but y_test has "
                             f"{len(y_test)}")
        unseen = np.unique(y_test[~np.isin(y_test, self.classes_)])
        if len(unseen):
            raise ValueError(f"test_data: y_test has label(s) {unseen[:5].tolist()} not seen in "
                             f"y; the classes are {self.classes_.tolist()}")
        return X_test, np.searchsorted(self.classes_, y_test).astype(np.int64)

    def _training_seed(self, images, y):
        """The seed of this fit, after opening ``checkpoint_dir`` (when set).

        Call it in ``fit`` after validating the data and before any work that
        uses the seed: a saved unfinished run of the same parameters and data
        gives its own seed back (so ``random_state=None`` resumes the same run),
        and a saved run of other parameters or data raises ValueError before
        any training.
        """
        self._checkpoint = None
        if self.checkpoint_dir is None:
            return seed_from(self.random_state)
        ckpt = TrainingCheckpoint.open(self.checkpoint_dir, params_fingerprint(self),
                                       data_fingerprint(images, y),
                                       default_params_fingerprint(self),
                                       renamed=getattr(self, "_renamed_params", None))
        if ckpt.seed is None:
            ckpt.seed = seed_from(self.random_state)
        self._checkpoint = ckpt
        return ckpt.seed

    def _check_training_params(self):
        """Validate the parameters: each against ``_parameter_constraints`` (declared once,
        in :mod:`sklearn_cnn._params`), then the rules that join several."""
        self._validate_params()
        if isinstance(self.optimizer, type) and not issubclass(self.optimizer,
                                                               torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a name or a torch.optim.Optimizer class, "
                            f"got {self.optimizer!r}")
        if self.early_stopping and self.validation_fraction is None:
            raise ValueError("early_stopping=True needs a validation_fraction (e.g. 0.1)")
        if self.lr_schedule == "multistep" and not self.lr_milestones:
            raise ValueError("lr_schedule='multistep' needs lr_milestones, e.g. (3, 8)")
        if self.lr_schedule == "annealing" and self.lr_anneal_T is None:
            raise ValueError("lr_schedule='annealing' needs lr_anneal_T > 0 (lr / (1 + t/T))")
        if self.weight_decay:
            opt = OPTIMIZERS.get(self.optimizer, self.optimizer)
            if self.l2_convention == "decoupled" and opt not in (torch.optim.Adam,
                                                                  torch.optim.AdamW):
                raise ValueError("l2_convention='decoupled' is AdamW's weight decay: use "
                                 "optimizer='adam' or 'adamw' (for SGD without momentum it "
                                 "equals l2_convention='pytorch')")
            if self.l2_convention != "decoupled" and opt is torch.optim.AdamW:
                raise ValueError(f"optimizer='adamw' decays weights decoupled, not as an L2 "
                                 f"term of the loss: use l2_convention='decoupled', or "
                                 f"optimizer='adam' for l2_convention={self.l2_convention!r}")
        check_fast_path(self.fast_path)
        check_device(self.device)

    def _callbacks(self, has_valid, classifier=True):
        cbs = [("record_lr", RecordLR())]
        if classifier:
            cbs.insert(0, ("train_acc", EpochScoring("accuracy", on_train=True,
                                                     name="train_acc", lower_is_better=False)))
        if self.lr_schedule == "exponential":
            cbs.append(("lr_schedule", LRScheduler("ExponentialLR", gamma=self.lr_gamma)))
        elif self.lr_schedule == "multistep":
            cbs.append(("lr_schedule", LRScheduler("MultiStepLR", gamma=self.lr_gamma,
                                                   milestones=list(self.lr_milestones))))
        elif self.lr_schedule == "annealing":
            cbs.append(("lr_schedule", LRScheduler(
                "LambdaLR", lr_lambda=InverseTimeDecay(self.lr_anneal_T))))
        if self.early_stopping and has_valid:
            cbs.append(("early_stopping", EarlyStopping(
                monitor="valid_loss", patience=self.patience, load_best=True)))
        if self.verbose >= 2:
            cbs.append(("progress_bar", ProgressBar()))
        for i, cb in enumerate(self.callbacks or []):
            cbs.append(cb if isinstance(cb, tuple) else (f"user_{i}", cb))
        return cbs

    def _decay_layers(self, layer_names):
        """Layer names that ``weight_decay_layers`` (names or glob patterns) selects."""
        names = [n for n in layer_names if n != "input"]
        if self.weight_decay_layers is None:
            return names
        patterns = self.weight_decay_layers
        if isinstance(patterns, str):
            patterns = [patterns]
        chosen = []
        for pattern in patterns:
            hits = fnmatch.filter(names, pattern)
            if not hits:
                raise ValueError(
                    f"weight_decay_layers entry {pattern!r} matches no layer; valid layer "
                    f"names: {names}"
                )
            chosen += [h for h in hits if h not in chosen]
        return chosen

    def _optimizer_kwargs(self, module, decay_layers, decay_prefix=""):
        """Optimizer class and skorch ``optimizer__*`` kwargs (L2 limited to layers).

        ``decay_prefix`` is where the layers sit in ``module`` ("network." when
        the network is wrapped).
        """
        opt = OPTIMIZERS.get(self.optimizer, self.optimizer)
        if self.weight_decay and self.l2_convention == "decoupled":
            opt = torch.optim.AdamW
        # Always explicit: AdamW's own default (0.01) would decay every parameter.
        kwargs = {"optimizer__weight_decay": 0.0}
        if opt is torch.optim.SGD or opt is torch.optim.RMSprop:
            kwargs["optimizer__momentum"] = self.momentum
        if opt is torch.optim.SGD:
            kwargs["optimizer__nesterov"] = bool(self.nesterov)
        if self.weight_decay:
            # As the reports' frameworks regularise: the weights of conv / linear layers,
            # not biases or BN; lambda scaled to the convention (see L2_CONVENTIONS).
            names = [f"{decay_prefix}{layer}.{mname + '.' if mname else ''}weight"
                     for layer in decay_layers
                     for mname, m in module.get_submodule(decay_prefix + layer).named_modules()
                     if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
            factor = L2_CONVENTIONS[self.l2_convention] or 1.0
            kwargs["optimizer__param_groups"] = [
                (name, {"weight_decay": factor * float(self.weight_decay)}) for name in names]
        return opt, kwargs

    def _with_test_scoring(self, callbacks, test_data):
        """``callbacks`` with the test-set scoring before early stopping: on the epoch that
        stops the run, early stopping ends the epoch's callbacks (and restores the best
        weights), so a scoring after it would leave that epoch's test point out."""
        if test_data is None:
            return callbacks
        stops = [i for i, (_, cb) in enumerate(callbacks) if isinstance(cb, EarlyStopping)]
        at = stops[0] if stops else len(callbacks)  # ours or a user's
        return [*callbacks[:at], ("test_scoring", _TestScoring(self, *test_data)),
                *callbacks[at:]]

    def _fit_net(self, module, X, y, *, decay_layers, seed, net_cls=SkorchNet,
                 train_split="stratified", decay_prefix="", extra_callbacks=(),
                 extra_param_groups=(), test_data=None, **net_kwargs):
        """Build ``self.net_`` (a ``net_cls``) around ``module`` and train it on X, y.

        ``train_split="stratified"`` holds out ``validation_fraction`` of the
        labels ``y``; anything else is passed to skorch as it is.
        ``extra_callbacks`` are ``(name, callback)`` pairs; ``extra_param_groups``
        are skorch ``(pattern, options)`` optimizer parameter groups.
        ``test_data`` (from :meth:`_check_test_data`) adds ``test_loss`` /
        ``test_acc`` to the history after each epoch.
        """
        if train_split == "stratified":
            train_split = valid_split(self.validation_fraction, y.numpy(), seed)
        opt, opt_kwargs = self._optimizer_kwargs(module, decay_layers, decay_prefix)
        if extra_param_groups:
            opt_kwargs["optimizer__param_groups"] = (
                opt_kwargs.get("optimizer__param_groups", []) + list(extra_param_groups))
        augment = Augment(self.random_flip, self.random_shift) if (
            self.random_flip or self.random_shift) else None
        net_kwargs.setdefault("criterion", torch.nn.CrossEntropyLoss)
        fast_path = check_fast_path(self.fast_path)
        if fast_path == "auto":
            ckpt = self.__dict__.get("_checkpoint")
            recorded = ckpt.recorded_fast_path() if ckpt is not None else None
            with flush_denormal():  # as the training steps will run
                fast_path = choose_fast_path(module, X, self.batch_size, self.device,
                                             recorded, verbose=self.verbose, optimizer=opt)
        self.fast_path_ = tuple(sorted(fast_path))
        self.net_ = net_cls(
            module=module,
            optimizer=opt,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            iterator_train__shuffle=True,
            iterator_valid__batch_size=max(self.batch_size, 256),
            train_split=train_split,
            callbacks=self._with_test_scoring(
                self._callbacks(train_split is not None,
                                classifier=issubclass(net_cls, NeuralNetClassifier))
                + list(extra_callbacks), test_data),
            device=self.device,
            verbose=int(self.verbose),
            augment=augment,
            fast_path=fast_path,
            checkpoint=self.__dict__.pop("_checkpoint", None),
            **opt_kwargs,
            **net_kwargs,
        )
        with torch_seed(seed, self.device):
            self.net_.fit(X, y)
        # The test set served the learning curves; a fitted model does not carry it (neither
        # in the initialised callbacks nor in the ``callbacks`` parameter they are made from,
        # which a pickle of the model would otherwise keep, test images and all).
        self.net_.callbacks_ = [(n, cb) for n, cb in self.net_.callbacks_
                                if n != "test_scoring"]
        self.net_.callbacks = [(n, cb) for n, cb in self.net_.callbacks
                               if n != "test_scoring"]
        # skorch leaves the module in the mode of its last phase (train mode without a
        # validation split): a fitted network is used for inference, where BatchNorm must use
        # its running statistics and dropout must be off.
        self.net_.module_.eval()
        self.interrupted_ = self.net_.interrupted_
        if self.interrupted_:
            done = self.net_.epochs_completed_
            where = (f"Call fit again with the same arguments to continue after epoch {done} "
                     f"(checkpoint in {str(self.net_.checkpoint.directory)!r})"
                     if self.net_.checkpoint is not None else
                     "Pass checkpoint_dir=<folder> to make a run resumable")
            warnings.warn(f"{type(self).__name__}.fit was interrupted after {done} of "
                          f"{self.max_epochs} epoch(s); the estimator holds the weights of that "
                          f"point and interrupted_ is True. {where}.", UserWarning, stacklevel=3)
        return self

    @property
    def module_(self):
        """The trained torch module (``net_.module_``)."""
        return self.net_.module_

    def _images(self, X, lazy=False):
        """User images -> float32 (n, C, H, W) (or lazy batches) as ``fit`` converted them:
        the training images' shape, the 0-255 scaling of integer images."""
        check_is_fitted(self, "net_")
        return check_images(X, image_shape=getattr(self, "image_shape", None),
                            expected_shape=self.image_shape_, estimator=type(self).__name__,
                            lazy=lazy, integer_fit=getattr(self, "integer_input_", None))

    def _layer_module(self):
        """The module :meth:`layer_view` shows (the trained network)."""
        return self.module_

    def layer_view(self):
        """The trained network's layers: a :class:`~sklearn_cnn._layers.LayerView`.

        The one way to reach them: names in forward order, the submodule behind
        a name, and batched extraction of intermediate outputs of images given
        as to ``predict``.
        """
        check_is_fitted(self, "net_")
        return LayerView(self._layer_module(), self._images,
                         classes=getattr(self, "classes_", None), device=self.device)

    def l2_penalty(self):
        """The L2 term the training added to its loss, at the fitted weights.

        In the loss's units: the sum over the regularised weights ``w`` of
        ``weight_decay_group / 2 * sum(w ** 2)`` as the optimizer holds them, which is
        ``lambda * sum(w ** 2)`` for Keras' ``l2(lambda)`` and ``lambda *
        tf.nn.l2_loss(w)`` for TensorFlow's. Keras' ``evaluate()`` reports the
        cross-entropy plus this term as its loss; a report's loss compares with
        ``log_loss + l2_penalty()``.

        Returns
        -------
        float
            0.0 without ``weight_decay``; NaN for ``l2_convention="decoupled"``
            (AdamW shrinks the weights outside the loss: there is no such term).

        Examples
        --------
        >>> from sklearn_cnn import CNNClassifier
        >>> from sklearn_cnn.datasets import load_digits_images
        >>> d = load_digits_images()
        >>> clf = CNNClassifier("cifar_3x3", max_epochs=1, weight_decay=0.01,
        ...                     l2_convention="keras", verbose=0, random_state=0)
        >>> clf.fit(d.images[:100], d.target[:100]).l2_penalty() > 0
        True
        """
        check_is_fitted(self, "net_")
        if not self.weight_decay:
            return 0.0
        if self.l2_convention == "decoupled":
            return float("nan")
        return float(sum(group["weight_decay"] / 2 * sum(float(p.detach().double().square().sum())
                                                          for p in group["params"])
                         for group in self.net_.optimizer_.param_groups))

    @property
    def history_(self):
        """Per-epoch training record as a DataFrame (epoch, losses, accuracies, lr, dur)."""
        rows = [{k: v for k, v in epoch.items() if k != "batches"} for epoch in self.net_.history]
        df = pd.DataFrame(rows)
        cols = self._history_columns
        for col in cols:
            if col not in df:
                df[col] = np.nan
        extra = [c for c in df.columns if c not in cols and not c.endswith("_best")
                 and not c.endswith("_batch_count")]
        return df[cols + extra].reset_index(drop=True)
