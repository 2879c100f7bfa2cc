"""CNNClassifier: a scikit-learn classifier that trains a CNN with skorch's loop."""


import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin

from ._deprecation import warn_renamed
from ._base import NetClassifierMixin, TrainingMixin, init_weights, torch_seed
from ._input import channel_stats, check_image_shape
from ._params import Param, declare
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
    normalize : bool, default=True
        Standardise each input channel with the training set's mean and std
        (stored in the network's fixed ``input`` layer).
    {training_parameters}

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
    fast_path_ : tuple of str
        The fast path the training used: ``fast_path`` itself, or what
        ``fast_path="auto"`` chose (printed when ``verbose``).

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
    def fit(self, X, y, test_data=None):
        """Train the network on images ``X`` and labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, H, W, C) or (n, features)
        y : array-like of shape (n,)
            Class labels of any kind scikit-learn accepts (ints, strings, ...).
        test_data : (X_test, y_test), default=None
            Adds ``test_loss`` / ``test_acc`` per epoch to ``history_`` (for
            learning curves; never used for training). Checked like ``X, y``
            before training: images of the shape of ``X``, as many labels as
            images, and only labels that occur in ``y`` (ValueError otherwise).

        Returns
        -------
        self
        """
        self._check_training_params()
        images, self.classes_, y_enc = self._check_xy(X, y, self.image_shape)
        test_data = self._check_test_data(test_data)
        seed = self._training_seed(images, y_enc)
        with torch_seed(seed, self.device):
            module = self._build_module(images, len(self.classes_))
            init_weights(module, self.init, self.init_std)
        self.layer_names_ = list(module.layer_names)
        decay_layers = self._decay_layers(module.layer_names)
        self._fit_net(module, torch.from_numpy(images), torch.from_numpy(y_enc.astype(np.int64)),
                      decay_layers=decay_layers, seed=seed,
                      classes=list(range(len(self.classes_))), test_data=test_data)
        return self

    def _net_inputs(self, X):
        return self._images(X, lazy=True)  # converted batch by batch (SkorchNet.forward_iter)

    def summary(self, image_shape=None, n_classes=10, *, input_shape=None):
        """Per-layer table like Keras' ``model.summary()``.

        Parameters
        ----------
        image_shape : tuple (C, H, W), default=None
            Needed only before fitting, to build the network for that input.
        n_classes : int, default=10
            Output size when building before fitting.
        input_shape : tuple, default=None
            Deprecated old name of ``image_shape`` (removed in 0.3).

        Returns
        -------
        pandas.DataFrame
            Columns name, type, output_shape, params, trainable; a last row
            ``total``. ``params`` counts every parameter plus BatchNorm running
            statistics (Keras' "Total params"); ``trainable`` only those trained.
        """
        if input_shape is not None:
            warn_renamed("summary's input_shape", "image_shape")
            image_shape = input_shape if image_shape is None else image_shape
        if hasattr(self, "net_"):
            module = self.module_
        elif image_shape is None:
            raise ValueError("summary() before fit needs image_shape=(C, H, W)")
        else:
            shape = check_image_shape(image_shape, "image_shape")
            with torch_seed(0):
                module = build_network(self._layer_specs(), shape, n_classes)
        return summarize_network(module)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


declare(CNNClassifier, [
    Param("architecture", "default", [str, list, tuple], "", positional=True),
    # checked by apply_overrides, which knows the layers they apply to
    *(Param(name, None, "no_validation", "") for name in
      ("kernel_size", "stride", "padding", "filters", "dropout")),
    Param("activation", None, [str, None], ""),
    Param("normalize", True, ["boolean"], ""),
])


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
