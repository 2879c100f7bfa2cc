"""CNNClassifier: a scikit-learn classifier that trains a CNN with skorch's loop."""

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from ._base import NetClassifierMixin, TrainingMixin, init_weights, seed_from, torch_seed
from ._input import channel_stats, check_image_shape, check_images
from .architectures import apply_overrides, build_network, resolve_architecture

__all__ = ["CNNClassifier", "summarize_network"]


class CNNClassifier(NetClassifierMixin, TrainingMixin, ClassifierMixin, BaseEstimator):
    """Convolutional network classifier with the scikit-learn API.

    The network is described as data (a preset name or a list of layer specs),
    built in :meth:`fit` for the shape of the training images, and trained
    with skorch's training loop (cross-entropy on logits; ``predict_proba``
    applies softmax). Every layer has one stable name (``conv1``, ``pool1``,
    ``flatten``, ``fc1``, ``logits``, ...), listed in ``layer_names_`` and used
    by feature extraction, freezing, weight decay and plotting alike.

    Parameters
    ----------
    architecture : str or list of dict, default="default"
        A preset name (see :func:`sklearn_cnn.architectures.list_architectures`)
        or a list of layer specs such as ``[conv(16, 3), maxpool(), flatten(),
        dense(64)]`` (helpers in :mod:`sklearn_cnn.architectures`). The output
        layer ``logits`` is added automatically. The default preset (two conv
        stages and global average pooling) works for any image size, from
        1x2 "images" of tabular data to 224x224.
    kernel_size, stride, padding, filters : int, str or sequence, default=None
        Override the corresponding setting of every conv layer (one value) or
        of each conv layer in order (a sequence). None keeps the architecture's.
        This is what makes a kernel-size x stride sweep one GridSearchCV call.
    dropout : float or sequence, default=None
        Override the drop probability of every (or each) dropout layer.
    activation : str, default=None
        Override the activation of every conv / dense layer that has one
        ("relu", "elu", "leaky_relu", "tanh", "sigmoid", "gelu").
    image_shape : tuple (H, W) or (C, H, W), default=None
        Shape used to unflatten 2-D ``X``, whose rows are then read in
        channels-first (C, H, W) order. None infers a one-channel shape (64 ->
        8x8, 784 -> 28x28, otherwise a 1 x n_features image); flattened images
        of several channels (3072 values: 3x32x32 channels-first or 32x32x3
        channels-last?) need ``image_shape`` or 4-D ``X``, a ValueError says so.
    normalize : bool, default=True
        Standardise each input channel with the training set's mean and std
        (stored in the network's fixed ``input`` layer).
    init : {None, "gaussian", "xavier", "kaiming"}, default=None
        Weight initialisation of conv / linear layers (None: PyTorch's default).
    init_std : float, default=0.01
        Standard deviation for ``init="gaussian"``.
    optimizer : {"adam", "adamw", "sgd", "rmsprop"} or Optimizer class, default="adam"
    lr : float, default=1e-3
    momentum : float, default=0.9
        Momentum of SGD / RMSprop.
    nesterov : bool, default=False
        Nesterov momentum for SGD.
    batch_size : int, default=32
    max_epochs : int, default=10
    validation_fraction : float or None, default=0.1
        Held-out (stratified) fraction of the training data for ``valid_loss``
        / ``valid_acc`` and early stopping. None trains on everything.
    early_stopping : bool, default=False
        Stop when ``valid_loss`` has not improved for ``patience`` epochs and
        restore the best weights.
    patience : int, default=5
    lr_schedule : {None, "exponential", "multistep", "annealing"}, default=None
        Per-epoch learning-rate schedule: ``lr * lr_gamma**epoch``; ``lr`` times
        ``lr_gamma`` at each of ``lr_milestones``; ``lr / (1 + epoch / lr_anneal_T)``.
    lr_gamma : float, default=0.95
    lr_milestones : sequence of int, default=None
    lr_anneal_T : float, default=None
    weight_decay : float, default=0.0
        L2 penalty lambda on the weights of conv / linear layers (not biases or
        BatchNorm), read as ``l2_convention`` says.
    l2_convention : {"pytorch", "keras", "tf_l2_loss", "decoupled"}, default="pytorch"
        Which framework's L2 ``weight_decay`` is: ``"pytorch"`` (torch.optim's
        ``weight_decay``: gradient + lambda w), ``"keras"``
        (``kernel_regularizer=l2(lambda)``: loss + lambda sum(w^2), gradient
        + 2 lambda w), ``"tf_l2_loss"`` (``lambda * tf.nn.l2_loss(w)``: loss +
        lambda sum(w^2) / 2, gradient + lambda w) or ``"decoupled"`` (AdamW: w
        -= lr lambda w after each step, outside Adam's scaling; needs
        optimizer "adam" or "adamw"). ``train_loss`` never includes the penalty.
    weight_decay_layers : list of str, default=None
        Layer names (or glob patterns such as ``"fc*"``) the L2 penalty is
        limited to; None applies it to all layers.
    random_flip : bool, default=False
        Train-time augmentation: flip each training image horizontally with p=0.5.
    random_shift : int, default=0
        Train-time augmentation: shift each training image by up to this many
        pixels in each direction (zero fill).
    device : str, default="cpu"
    fast_path : None, str or list of str, default=None
        Opt-in speed-ups of the forward / backward pass, any of
        ``"channels_last"`` (NHWC memory layout), ``"compile"``
        (``torch.compile``) and ``"bf16"`` (bfloat16 autocast). They change
        speed and, slightly, the numbers (bf16 rounds). On a CPU without native
        bf16, ``"channels_last"`` is the one that helps (~1.3x per epoch);
        ``docs/benchmarks.md`` has the measurements.
    callbacks : list of skorch callbacks, default=None
        Extra skorch callbacks (or ``(name, callback)`` tuples).
    random_state : int, RandomState or None, default=None
        Seeds weight initialisation, shuffling, dropout, augmentation and the
        validation split: the same int gives identical results on CPU.
    checkpoint_dir : str, path-like or None, default=None
        Folder for a resumable run: after every epoch the complete training
        state (weights, optimizer, LR schedule, early stopping, history, step
        counters and random states) is written atomically to
        ``checkpoint_dir/checkpoint.pt``. ``fit`` on a folder holding an
        unfinished run of the same parameters and data continues after its last
        completed epoch, bit-identical to an uninterrupted run on CPU; a
        finished run is loaded without training; another run's checkpoint
        raises ValueError (delete the file to start over). None writes nothing.
    verbose : int, default=1
        0 silent, 1 one line per epoch, 2 also a progress bar per epoch.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
        C * H * W of the training images.
    image_shape_ : tuple (C, H, W)
    integer_input_ : bool
        Whether the training images were integers (0-255 values, divided by
        255); float images outside [-0.5, 1.5] given later then warn.
    layer_names_ : list of str
        Names of the network's layers in forward order.
    module_ : sklearn_cnn.architectures.Network
        The trained torch module.
    net_ : skorch.NeuralNetClassifier
        The skorch net that trained it.
    history_ : pandas.DataFrame
        One row per epoch: epoch, train_loss, train_acc, valid_loss, valid_acc, lr, dur.
    interrupted_ : bool
        True when ``fit`` was stopped by Ctrl-C (KeyboardInterrupt) before its
        last epoch; the weights are those of that point. Fit again with the same
        ``checkpoint_dir`` to continue.

    Examples
    --------
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> digits = load_digits_images()
    >>> clf = CNNClassifier(max_epochs=2, random_state=0, verbose=0)
    >>> clf.fit(digits.images[:200], digits.target[:200]).layer_names_[:3]
    ['input', 'conv1', 'bn1']
    >>> clf.predict(digits.images[:3]).shape
    (3,)
    """

    def __init__(self, architecture="default", *, kernel_size=None, stride=None, padding=None,
                 filters=None, dropout=None, activation=None, image_shape=None, normalize=True,
                 init=None, init_std=0.01, optimizer="adam", lr=1e-3, momentum=0.9,
                 nesterov=False, batch_size=32, max_epochs=10, validation_fraction=0.1,
                 early_stopping=False, patience=5, lr_schedule=None, lr_gamma=0.95,
                 lr_milestones=None, lr_anneal_T=None, weight_decay=0.0,
                 weight_decay_layers=None, l2_convention="pytorch", random_flip=False,
                 random_shift=0, device="cpu",
                 fast_path=None, callbacks=None, random_state=None, checkpoint_dir=None,
                 verbose=1):
        self.architecture = architecture
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.filters = filters
        self.dropout = dropout
        self.activation = activation
        self.image_shape = image_shape
        self.normalize = normalize
        self.init = init
        self.init_std = init_std
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.nesterov = nesterov
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.lr_schedule = lr_schedule
        self.lr_gamma = lr_gamma
        self.lr_milestones = lr_milestones
        self.lr_anneal_T = lr_anneal_T
        self.weight_decay = weight_decay
        self.weight_decay_layers = weight_decay_layers
        self.l2_convention = l2_convention
        self.random_flip = random_flip
        self.random_shift = random_shift
        self.device = device
        self.fast_path = fast_path
        self.callbacks = callbacks
        self.random_state = random_state
        self.checkpoint_dir = checkpoint_dir
        self.verbose = verbose

    # -- hooks (override in subclasses) -----------------------------------
    def _layer_specs(self):
        """The validated, overridden list of layer specs to build."""
        specs = resolve_architecture(self.architecture)
        return apply_overrides(specs, kernel_size=self.kernel_size, stride=self.stride,
                               padding=self.padding, filters=self.filters,
                               dropout=self.dropout, activation=self.activation)

    def _build_module(self, images, n_classes):
        """The torch module for training images ``images`` (n, C, H, W)."""
        mean, std = channel_stats(images) if self.normalize else (None, None)
        return build_network(self._layer_specs(), images.shape[1:], n_classes, mean=mean,
                             std=std)

    # -- scikit-learn API ---------------------------------------------------
    def fit(self, X, y):
        """Train the network on images ``X`` and labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, H, W, C) or (n, features)
        y : array-like of shape (n,)
            Class labels of any kind scikit-learn accepts (ints, strings, ...).

        Returns
        -------
        self
        """
        self._check_training_params()
        images, self.classes_, y_enc = self._check_xy(X, y, self.image_shape)
        seed = self._training_seed(images, y_enc)
        with torch_seed(seed, self.device):
            module = self._build_module(images, len(self.classes_))
            init_weights(module, self.init, self.init_std)
        self.layer_names_ = list(module.layer_names)
        decay_layers = self._decay_layers(module.layer_names)
        self._fit_net(module, torch.from_numpy(images), torch.from_numpy(y_enc.astype(np.int64)),
                      decay_layers=decay_layers, seed=seed,
                      classes=list(range(len(self.classes_))))
        return self

    def _images(self, X, lazy=False):
        check_is_fitted(self, "net_")
        return check_images(X, image_shape=self.image_shape, expected_shape=self.image_shape_,
                            estimator=type(self).__name__, lazy=lazy,
                            integer_fit=getattr(self, "integer_input_", None))

    def _net_inputs(self, X):
        return torch.from_numpy(self._images(X))

    def summary(self, input_shape=None, n_classes=10):
        """Per-layer table like Keras' ``model.summary()``.

        Parameters
        ----------
        input_shape : tuple (C, H, W), default=None
            Needed only before fitting, to build the network for that input.
        n_classes : int, default=10
            Output size when building before fitting.

        Returns
        -------
        pandas.DataFrame
            Columns name, type, output_shape, params, trainable; a last row
            ``total``. ``params`` counts every parameter plus BatchNorm running
            statistics (Keras' "Total params"); ``trainable`` only those trained.
        """
        if hasattr(self, "net_"):
            module = self.module_
        elif input_shape is None:
            raise ValueError("summary() before fit needs input_shape=(C, H, W)")
        else:
            shape = check_image_shape(input_shape, "input_shape")
            with torch_seed(0):
                module = build_network(self._layer_specs(), shape, n_classes)
        return summarize_network(module)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


def summarize_network(module):
    """Per-layer summary DataFrame of a :class:`~sklearn_cnn.architectures.Network`."""
    rows = []
    for name in module.layer_names:
        layer = getattr(module, name)
        params = [p for p in layer.parameters()]
        stats = sum(b.numel() for bname, b in layer.named_buffers()
                    if bname.split(".")[-1] in ("running_mean", "running_var"))
        rows.append({
            "name": name,
            "type": type(layer).__name__,
            "output_shape": module.output_shapes[name],
            "params": sum(p.numel() for p in params) + stats,
            "trainable": sum(p.numel() for p in params if p.requires_grad),
        })
    df = pd.DataFrame(rows)
    total = {"name": "total", "type": "", "output_shape": "",
             "params": int(df["params"].sum()), "trainable": int(df["trainable"].sum())}
    df = pd.concat([df, pd.DataFrame([total])], ignore_index=True)
    df.attrs.update(total_params=total["params"], trainable_params=total["trainable"],
                    non_trainable_params=total["params"] - total["trainable"])
    return df
