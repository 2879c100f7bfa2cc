"""TransferClassifier: a new head on a pretrained backbone, frozen, fine-tuned or in between."""

import numbers

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from torch import nn

from ._deprecation import DEPRECATED
from ._base import NetClassifierMixin, TrainingMixin, init_weights, torch_seed
from ._layers import LayerAccessMixin, pool_and_flatten
from ._params import Param, count, declare, real
from .callbacks import UnfreezeAtStep
from .features.base import NetworkFeatures

__all__ = ["TransferClassifier", "TransferNet", "UnfreezeAtStep", "BACKBONES"]


def _cifar_resnet20():
    from .features.cifar_resnet import CifarResNetFeatures, pretrained_weights_path

    return CifarResNetFeatures(20, weights=pretrained_weights_path())


def _vgg16():
    from .features import VGGFeatures

    return VGGFeatures("pool4", arch="vgg16")


def _resnet18():
    from .features import ResNetFeatures

    return ResNetFeatures("avgpool", arch="resnet18")


# Backbones by name (the pretrained weights are looked up where each transformer says; a
# missing file raises FileNotFoundError saying where to put it).
BACKBONES = {"cifar_resnet20": _cifar_resnet20, "vgg16": _vgg16, "resnet18": _resnet18}


class TransferNet(LayerAccessMixin, nn.Module):
    """Preprocess -> backbone up to ``layer`` -> pool/flatten -> ``head`` (-> logits).

    BatchNorm layers of the backbone whose parameters are all frozen stay in
    eval mode when the net trains: a frozen layer must not drift through its
    running statistics either.
    """

    def __init__(self, backbone, preprocess, layer, pooling, head):
        super().__init__()
        self.backbone, self.preprocess = backbone, preprocess
        self.layer, self.pooling = layer, pooling
        self.head = head

    @property
    def layer_names(self):
        """The backbone's layers up to ``layer``, then ``head`` (the classifier's logits)."""
        names = list(self.backbone.layer_names)
        return names[:names.index(self.layer) + 1] + ["head"]

    def forward_intermediates(self, x, layers):
        if self.preprocess is not None:
            x = self.preprocess(x)
        inner = [name for name in layers if name != "head"]
        if "head" in layers and self.layer not in inner:
            inner.append(self.layer)
        out = self.backbone.forward_intermediates(x, inner)
        if "head" in layers:
            out["head"] = self.head(pool_and_flatten(out[self.layer], self.pooling))
        return {name: out[name] for name in layers}

    def forward(self, x):
        return self.forward_intermediates(x, ["head"])["head"]

    def module_for(self, name):
        """A backbone layer by its name (``conv1``, ``layer3``, ...) or ``"head"``."""
        if name == "head":
            return self.head
        paths = dict(self.named_modules())  # a full module path works too
        if name in paths and name:
            return paths[name]
        try:
            return self.backbone.module_for(name)
        except ValueError as e:
            raise ValueError(f"{e} (or 'head')") from None

    def train(self, mode=True):
        super().train(mode)
        if mode:
            for m in self.backbone.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.weight is not None \
                        and not m.weight.requires_grad:
                    m.eval()
        return self


def make_head(in_features, hidden, n_outputs, dropout):
    """fc(hidden[0]) - ReLU - [dropout] - ... - fc(n_outputs) (as ``build_network``'s)."""
    layers, width = [], in_features
    for units in hidden:
        layers += [nn.Linear(width, units), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = units
    layers.append(nn.Linear(width, n_outputs))
    return nn.Sequential(*layers)


class TransferClassifier(NetClassifierMixin, TrainingMixin, ClassifierMixin, BaseEstimator):
    """Classifier made of a pretrained backbone cut at ``layer`` and a new dense head.

    Covers the transfer-learning settings of the reference reports: frozen
    features + new head (``train_layers="none"``), training everything
    (``"all"``), frozen for the first k optimisation steps and then all layers
    (``unfreeze_after_steps=k``), only later blocks trained
    (``"from:conv3_1"`` or a list of layer names), a new last layer only
    (``head=()``), and truncated backbones (``layer="pool3"``).

    When nothing in the backbone trains (and no augmentation is asked for),
    the backbone's features are computed once per fit and only the head is
    trained on them ("fast frozen mode").

    Parameters
    ----------
    backbone : feature transformer or str, default="cifar_resnet20"
        A :class:`VGGFeatures`, :class:`ResNetFeatures`,
        :class:`CifarResNetFeatures` or :class:`TorchvisionFeatures` (its
        ``weights``, ``resize`` and ``pooling`` are used), or a name in
        :data:`BACKBONES`.
    layer : str, default=None
        Backbone layer the head reads; None keeps the backbone's own ``layers``.
    head : tuple of int, default=(256,)
        Hidden units of the head; ``()`` is a single new linear layer.
    head_dropout : float, default=0.0
    train_layers : "none", "all", "from:<layer>" or list of str, default="none"
        Backbone layers trained from the start: none, all, every layer from
        ``<layer>`` on, or the named layers.
    unfreeze_after_steps : int, default=None
        After this many optimisation steps every backbone layer is trained.
    backbone_lr : float, default=None
        Learning rate of the backbone's parameters (None: ``lr``).
    {training_parameters}

    ``weight_decay`` and ``init`` apply to the head.

    Attributes
    ----------
    backbone_ : fitted feature transformer
    module_ : TransferNet, or the head alone in fast frozen mode
    fast_frozen_ : bool
    integer_input_ : bool
        Whether the training images were integers (0-255, divided by 255).
    classes_, history_, steps_ (per-step train loss), net_
    fast_path_ : tuple of str
        The fast path the training used: ``fast_path`` itself, or what
        ``fast_path="auto"`` chose (printed when ``verbose``).

    Examples
    --------
    >>> from sklearn_cnn import CifarResNetFeatures, TransferClassifier
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> d = load_digits_images()
    >>> clf = TransferClassifier(CifarResNetFeatures(8, random_state=0), head=(32,),
    ...                          max_epochs=2, verbose=0, random_state=0)
    >>> clf.fit(d.images[:200], d.target[:200]).predict(d.images[:3]).shape
    (3,)
    """

    # ------------------------------------------------------------------ checks
    def _make_backbone(self):
        bb = self.backbone
        if isinstance(bb, str):
            if bb not in BACKBONES:
                raise ValueError(f"unknown backbone {bb!r}; pass a feature transformer or one "
                                 f"of {sorted(BACKBONES)}")
            bb = BACKBONES[bb]()
        if not isinstance(bb, NetworkFeatures):
            raise TypeError("backbone must be a VGGFeatures / ResNetFeatures / "
                            "CifarResNetFeatures / TorchvisionFeatures instance or a name, got "
                            f"{type(bb).__name__}")
        bb = clone(bb)
        if self.layer is not None:
            if not isinstance(self.layer, str):
                raise TypeError(f"layer must be one backbone layer name, got {self.layer!r}")
            names = bb.available_layers()  # before any weights are loaded
            if self.layer not in names:
                raise ValueError(f"layer {self.layer!r} is not a layer of the backbone; valid "
                                 f"layer names: {names}")
            # (and clears the backbone's deprecated layer=, which would win over layers)
            bb.set_params(layers=self.layer, layer=DEPRECATED)
        return bb

    def _check_params(self):
        self._check_training_params()
        if not all(isinstance(u, numbers.Integral) and not isinstance(u, bool) and u > 0
                   for u in self.head):
            raise ValueError(f"head must be a tuple of positive ints (hidden units), got "
                             f"{self.head!r}")

    def _trainable(self, net):
        """Names of backbone parameters trained from the start (within ``net.model``)."""
        tl = self.train_layers
        params = [n for n, _ in net.model.named_parameters()]
        if tl == "none":
            return set()
        if tl == "all":
            return set(params)
        modules = [n for n, _ in net.model.named_modules()]

        def module_of(layer):
            try:
                return net.layer_path(layer)
            except ValueError as e:
                raise ValueError(f"train_layers: {e}") from None

        if isinstance(tl, str) and tl.startswith("from:"):
            start = modules.index(module_of(tl[len("from:"):]))
            return {p for p in params if modules.index(p.rsplit(".", 1)[0]) >= start}
        if isinstance(tl, str) or not isinstance(tl, (list, tuple)):
            raise ValueError("train_layers must be 'none', 'all', 'from:<layer>' or a list of "
                             f"layer names, got {tl!r}")
        chosen = set()
        for layer in tl:
            prefix = module_of(layer) + "."
            chosen |= {p for p in params if p.startswith(prefix)}
        return chosen

    # --------------------------------------------------------------------- fit
    def fit(self, X, y, test_data=None):
        """Fit the head (and the chosen backbone layers) on images ``X``, labels ``y``.

        Parameters
        ----------
        X : array-like of images, (n, H, W), (n, H, W, C) or (n, features)
        y : array-like of shape (n,)
        test_data : (X_test, y_test), default=None
            Per-epoch ``test_loss`` / ``test_acc`` in ``history_``, as in
            :meth:`CNNClassifier.fit`.

        Returns
        -------
        self
        """
        self._check_params()
        images, self.classes_, y_enc = self._check_xy(X, y, lazy=True)
        test_data = self._check_test_data(test_data)
        seed = self._training_seed(images, y_enc)
        bb = self._make_backbone()
        bb.fit(X[:2] if hasattr(X, "__getitem__") else X)
        self.backbone_ = bb
        model = bb.model_.model
        trainable = self._trainable(bb.model_)
        self.fast_frozen_ = (not trainable and self.unfreeze_after_steps is None
                             and not self.random_flip and not self.random_shift)
        n_classes = len(self.classes_)
        with torch_seed(seed, self.device):
            head = make_head(bb.n_features_out_, tuple(self.head), n_classes, self.head_dropout)
            init_weights(head, self.init, self.init_std)
        y_t = torch.from_numpy(y_enc.astype(np.int64))
        callbacks = []
        if self.fast_frozen_:
            X_in = torch.from_numpy(bb.transform(X))
            self._fit_net(head, X_in, y_t, decay_layers=_linear_layers(head), seed=seed,
                          classes=list(range(n_classes)), extra_callbacks=callbacks,
                          test_data=test_data)
            return self
        for name, p in model.named_parameters():
            p.requires_grad_(name in trainable)
        module = TransferNet(bb.model_, bb.preprocess_, bb.layers_[0], bb.pooling, head)
        if self.unfreeze_after_steps is not None:
            callbacks.append(("unfreeze", UnfreezeAtStep(self.unfreeze_after_steps)))
        groups = []
        if self.backbone_lr is not None:
            groups.append(("backbone.*", {"lr": float(self.backbone_lr)}))
        self._fit_net(module, torch.from_numpy(np.asarray(images)), y_t,
                      decay_layers=["head"], seed=seed, classes=list(range(n_classes)),
                      extra_callbacks=callbacks, extra_param_groups=groups,
                      test_data=test_data)
        return self

    def _layer_module(self):
        if self.fast_frozen_:  # trained on cached features: join backbone and head to show
            bb = self.backbone_
            return TransferNet(bb.model_, bb.preprocess_, bb.layers_[0], bb.pooling,
                               self.module_).eval()
        return self.module_

    # ----------------------------------------------------------------- predict
    def _net_inputs(self, X):
        # _images checks that fit ran (NotFittedError) before anything fitted is used
        images = self._images(X, lazy=True)  # converted batch by batch (SkorchNet.forward_iter)
        if self.fast_frozen_:
            return torch.from_numpy(self.backbone_.transform(X))
        return images

    @property
    def steps_(self):
        """Per optimisation step: step, epoch, train_loss (DataFrame)."""
        rows, step = [], 0
        for epoch in self.net_.history:
            for batch in epoch["batches"]:
                if "train_loss" in batch:
                    step += 1
                    rows.append({"step": step, "epoch": epoch["epoch"],
                                 "train_loss": batch["train_loss"]})
        return pd.DataFrame(rows)


declare(TransferClassifier, [
    Param("backbone", "cifar_resnet20", [str, NetworkFeatures], "", positional=True),
    Param("layer", None, [str, None], "", positional=True),
    Param("head", (256,), [tuple, list], ""),
    Param("head_dropout", 0.0, [real(0.0, 1.0, "left")], ""),
    Param("train_layers", "none", [str, list, tuple], ""),
    Param("unfreeze_after_steps", None, [count(0), None], ""),
    Param("backbone_lr", None, [real(), None], ""),
], defaults={"batch_size": 64}, exclude=("image_shape", "weight_decay_layers"))


def _linear_layers(head):
    return [name for name, m in head.named_children() if isinstance(m, nn.Linear)]
