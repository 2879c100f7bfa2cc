"""SiameseEmbedder: a CNN trained on image pairs with a contrastive loss.

Two branches sharing weights = one network applied to both images of a pair.
Pairs are drawn on the fly from the labels: each batch of anchors gets
partners of which a fixed fraction share the anchor's class (never the anchor
itself); the rest come from other classes.
"""


import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d
from skorch import NeuralNet
from skorch.dataset import Dataset
from skorch.helper import predefined_split
from torch import nn
from torch.nn import functional as F

from ._base import AugmentMixin, FastPathMixin, TrainingMixin, init_weights, torch_seed
from ._deprecation import DEPRECATED, is_unset, warn_renamed
from ._checkpoint import CheckpointMixin
from ._input import channel_stats
from ._layers import LayerAccessMixin
from ._params import Param, StrOptions, count, declare, real
from .architectures import build_network, resolve_architecture

__all__ = ["SiameseEmbedder", "ContrastiveLoss", "PairSampler", "PAIR_LOSSES"]


PAIR_LOSSES = ("contrastive", "hadsell", "hinge")


class ContrastiveLoss(nn.Module):
    """Contrastive loss of a batch of pairs, averaged over pairs.

    With ``d = ||x1 - x2||`` (Euclidean) and ``Y = 1`` for a same-class pair,
    ``Y = 0`` otherwise, the loss of one pair is, by ``kind``:

    * ``"contrastive"``, reference report 000 (task 2):
      ``L = Y d^2 + (1 - Y) max(margin - d^2, 0)``. The margin bounds the
      *squared* distance, and neither term has Hadsell's factor 1/2.
    * ``"hadsell"``, Hadsell, Chopra & LeCun, "Dimensionality Reduction by
      Learning an Invariant Mapping", CVPR 2006, eq. (4):
      ``L = Y d^2 / 2 + (1 - Y) max(margin - d, 0)^2 / 2``. The paper writes
      ``Y = 0`` for similar pairs; here ``Y = 1`` means similar in every kind.
    * ``"hinge"``: ``L = Y max(d - pos_margin, 0) + (1 - Y) max(neg_margin - d, 0)``,
      the per-pair loss of pytorch-metric-learning's ``ContrastiveLoss(pos_margin,
      neg_margin)`` with its default distance, ``LpDistance(p=2, power=1,
      normalize_embeddings=True)``: on L2-normalised embeddings (what
      :class:`SiameseEmbedder` trains with ``normalize_embeddings=True``) and its defaults
      ``pos_margin=0, neg_margin=1`` the pair terms are equal. The batch totals
      differ: pytorch-metric-learning's default ``AvgNonZeroReducer`` averages
      the positive and the negative terms separately, each over its non-zero
      terms only, and adds the two means; this loss averages over all pairs.

    Parameters
    ----------
    kind : {"contrastive", "hadsell", "hinge"}, default="contrastive"
    margin : float, default=0.2
        ``m`` of "contrastive" (a bound on ``d^2``) and "hadsell" (on ``d``).
    pos_margin, neg_margin : float, default=0.0, 1.0
        Margins on ``d`` of "hinge".

    Examples
    --------
    >>> import torch
    >>> x1, x2 = torch.zeros(2, 2), torch.tensor([[0.3, 0.4], [0.3, 0.4]])  # d = 0.5
    >>> same = torch.tensor([1, 0])
    >>> round(ContrastiveLoss("hadsell", margin=1.0)(x1, x2, same).item(), 4)
    0.125
    """

    def __init__(self, kind="contrastive", margin=0.2, pos_margin=0.0, neg_margin=1.0):
        super().__init__()
        # a module, not an estimator: checked here, as torch's own losses do
        if kind not in PAIR_LOSSES:
            raise ValueError(f"kind must be one of {PAIR_LOSSES}, got {kind!r}")
        self.kind, self.margin = kind, margin
        self.pos_margin, self.neg_margin = pos_margin, neg_margin

    def forward(self, x1, x2, same):
        d2 = (x1 - x2).pow(2).sum(dim=1)
        same = same.to(d2.dtype)
        if self.kind == "contrastive":
            return (same * d2 + (1 - same) * F.relu(self.margin - d2)).mean()
        d = torch.sqrt(d2 + 1e-12)  # eps: the gradient of sqrt at 0 is infinite
        if self.kind == "hadsell":
            # the positive term uses d2 itself, not d**2, so it is exact at d = 0
            loss = 0.5 * same * d2 + 0.5 * (1 - same) * F.relu(self.margin - d).pow(2)
        else:
            loss = same * F.relu(d - self.pos_margin) + (1 - same) * F.relu(self.neg_margin - d)
        return loss.mean()


class PairSampler:
    """Draw partners for anchors: ``round(fraction * n)`` of them same-class, the rest not.

    Same-class partners are never the anchor itself; an anchor whose class has
    no other member gets a different-class partner.

    Parameters
    ----------
    labels : ndarray of shape (n,)
        Labels of the pool partners are drawn from.
    same_class_fraction : float
    random_state : int or RandomState
    """

    def __init__(self, labels, same_class_fraction, random_state=None):
        self.labels = np.asarray(labels)
        self.fraction = same_class_fraction
        self.rng = np.random.RandomState(random_state) if not isinstance(
            random_state, np.random.RandomState) else random_state
        self.by_class = {c: np.flatnonzero(self.labels == c) for c in np.unique(self.labels)}

    def sample(self, anchor_idx):
        """Partner indices (into the pool) for anchors given by their pool indices."""
        anchor_idx = np.asarray(anchor_idx)
        n = len(anchor_idx)
        same = np.zeros(n, dtype=bool)
        same[self.rng.permutation(n)[:int(round(self.fraction * n))]] = True
        partners = np.empty(n, dtype=np.int64)
        for i, (a, want_same) in enumerate(zip(anchor_idx, same)):
            cls = self.labels[a]
            members = self.by_class[cls]
            if want_same and len(members) > 1:
                j = members[self.rng.randint(len(members) - 1)]
                partners[i] = j if j != a else members[-1]  # skip the anchor itself
            else:
                while True:  # rejection: other classes make up most of the pool
                    j = self.rng.randint(len(self.labels))
                    if self.labels[j] != cls or len(self.by_class) == 1:
                        break
                partners[i] = j
        return partners


class EmbeddingNet(LayerAccessMixin, nn.Module):
    """A :class:`~sklearn_cnn.architectures.Network` ending in ``embedding``, plus an
    optional ``l2norm`` layer; ``forward_intermediates`` as for every network."""

    def __init__(self, network, normalize):
        super().__init__()
        self.network, self.normalize = network, normalize
        self.layer_names = list(network.layer_names) + (["l2norm"] if normalize else [])

    def forward(self, x):
        e = self.network(x)
        return F.normalize(e, dim=1) if self.normalize else e

    def module_for(self, name):
        if name == "l2norm":  # a function of the embedding, no parameters
            return None
        return self.network.module_for(name)

    def forward_intermediates(self, x, layers):
        inner = [name for name in layers if name != "l2norm"]
        if "l2norm" in layers and "embedding" not in inner:
            inner.append("embedding")
        out = self.network.forward_intermediates(x, inner)
        if "l2norm" in layers:
            out["l2norm"] = F.normalize(out["embedding"], dim=1)
        return out


class SiameseNet(CheckpointMixin, AugmentMixin, FastPathMixin, NeuralNet):
    """skorch net whose steps draw partners and apply the pair loss.

    The targets it is fitted on are pool indices; ``pools`` holds, per phase
    ("train", "valid"), the images, labels and a :class:`PairSampler`.
    """

    def __init__(self, *args, pools=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.pools = pools

    def checkpoint_generators(self):
        # The training partners are drawn from this generator batch by batch.
        return {"pairs": self.pools["train"][2].rng}

    def _pair_loss(self, Xi, idx, phase, training):
        images, labels, sampler, fixed = self.pools[phase]
        idx = idx.cpu().numpy()
        partners = fixed[idx] if fixed is not None else sampler.sample(idx)
        Xp = images[torch.from_numpy(partners)].to(Xi.device)
        if training and self.augment is not None:
            Xi, Xp = self.augment(Xi), self.augment(Xp)
        same = torch.from_numpy(labels[idx] == labels[partners]).to(Xi.device)
        e1, e2 = self.infer(Xi), self.infer(Xp)
        return self.criterion_(e1, e2, same), e1

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, idx = batch
        loss, e1 = self._pair_loss(Xi, idx, "train", True)
        loss.backward()
        return {"loss": loss, "y_pred": e1}

    def validation_step(self, batch, **fit_params):
        self._set_training(False)
        Xi, idx = batch
        with torch.no_grad():
            loss, e1 = self._pair_loss(Xi, idx, "valid", False)
        return {"loss": loss, "y_pred": e1}


class SiameseEmbedder(TrainingMixin, TransformerMixin, BaseEstimator):
    """CNN embedding trained with a contrastive loss on pairs drawn from labels.

    ``transform`` returns the embeddings (L2-normalised when ``normalize_embeddings``), so
    ``Pipeline([("siamese", SiameseEmbedder()), ("svm", LinearSVC())])`` probes
    them like any features.

    Parameters
    ----------
    architecture : str or list of dict, default="default"
        Any :class:`CNNClassifier` architecture; its output layer is the
        ``embedding`` layer of ``embedding_dim`` units (no activation).
    embedding_dim : int, default=32
    loss : {"contrastive", "hadsell", "hinge"}, default="contrastive"
        The pair loss: report 000's ("contrastive"), Hadsell et al. (2006)'s
        ("hadsell") or pytorch-metric-learning's per-pair form ("hinge"); see
        :class:`ContrastiveLoss` for the formulas.
    margin : float, default=0.2
        Margin of "contrastive" (on the squared distance) and "hadsell" (on
        the distance).
    pos_margin, neg_margin : float, default=0.0, 1.0
        Margins on the distance of the "hinge" loss.
    same_class_fraction : float, default=0.2
        Fraction of pairs in each batch whose images share a class.
    normalize_embeddings : bool, default=True
        L2-normalise the embedding (an ``l2norm`` layer) before the loss and
        in ``transform`` (pytorch-metric-learning's name).
    normalize : "deprecated" or bool, default="deprecated"
        The old name of ``normalize_embeddings`` (removed in 0.3; a
        FutureWarning when set): ``normalize`` means input standardisation in
        :class:`CNNClassifier`.
    {training_parameters}

    Validation pairs are drawn once (fixed) from the held-out images.

    Attributes
    ----------
    module_ : EmbeddingNet
    layer_names_ : list of str
    history_ : pandas.DataFrame
        epoch, train_loss, valid_loss (pair losses), lr, dur.
    fast_path_ : tuple of str
        The fast path the training used: ``fast_path`` itself, or what
        ``fast_path="auto"`` chose (printed when ``verbose``).

    Examples
    --------
    >>> from sklearn_cnn import SiameseEmbedder
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> d = load_digits_images()
    >>> emb = SiameseEmbedder(max_epochs=2, verbose=0, random_state=0)
    >>> emb.fit(d.images[:200], d.target[:200]).transform(d.images[:3]).shape
    (3, 32)
    """

    _history_columns = ["epoch", "train_loss", "valid_loss", "lr", "dur"]
    _renamed_params = {"normalize": "normalize_embeddings"}  # old: new (checkpoints too)

    def _normalize_embeddings(self):
        if not is_unset(self.normalize):
            warn_renamed("SiameseEmbedder(normalize=...)", "normalize_embeddings=...",
                         note="normalize means input standardisation elsewhere")
            return bool(self.normalize)
        return self.normalize_embeddings

    def fit(self, X, y):
        """Train the embedding on pairs drawn from images ``X`` with labels ``y``."""
        self._check_training_params()
        images, _, labels = self._check_xy(X, y, self.image_shape)
        seed = self._training_seed(images, labels)
        rng = np.random.RandomState(seed)
        train_idx, valid_idx = self._split(labels, rng)
        with torch_seed(seed, self.device):
            mean, std = channel_stats(images[train_idx])
            network = build_network(resolve_architecture(self.architecture),
                                    self.image_shape_, self.embedding_dim, mean=mean, std=std,
                                    output_name="embedding")
            init_weights(network, self.init, self.init_std)
        module = EmbeddingNet(network, self._normalize_embeddings())
        self.layer_names_ = module.layer_names
        pools, datasets = {}, {}
        for phase, idx in (("train", train_idx), ("valid", valid_idx)):
            if idx is None:
                continue
            X_phase = torch.from_numpy(images[idx])
            sampler = PairSampler(labels[idx], self.same_class_fraction, rng)
            fixed = sampler.sample(np.arange(len(idx))) if phase == "valid" else None
            pools[phase] = (X_phase, labels[idx], sampler, fixed)
            datasets[phase] = (X_phase, torch.arange(len(idx)))
        criterion = ContrastiveLoss(self.loss, self.margin, self.pos_margin, self.neg_margin)
        valid = datasets.get("valid")
        self._fit_net(module, *datasets["train"], seed=seed, net_cls=SiameseNet,
                      decay_layers=self._decay_layers(network.layer_names),
                      decay_prefix="network.", criterion=criterion, pools=pools,
                      train_split=predefined_split(Dataset(*valid)) if valid else None)
        return self

    def _split(self, labels, rng):
        vf = self.validation_fraction
        n = len(labels)
        if vf is None or int(vf * n) < 2 or n - int(vf * n) < 2:
            return np.arange(n), None
        counts = np.bincount(labels)
        strat = labels if counts.min() >= 2 and int(vf * n) >= len(counts) else None
        tr, va = train_test_split(np.arange(n), test_size=vf, stratify=strat,
                                  random_state=rng.randint(2 ** 31 - 1))
        return np.sort(tr), np.sort(va)

    def transform(self, X):
        """Embeddings of ``X`` (L2-normalised when ``normalize_embeddings``), float32
        (n, embedding_dim)."""
        view = self.layer_view()
        layer = "l2norm" if "l2norm" in view.names else "embedding"
        return view.extract(X, [layer], batch_size=256)

    def pair_loss(self, X, y, random_state=0):
        """Mean pair loss on pairs drawn from (X, y) as in training (e.g. a test loss)."""
        Z = torch.from_numpy(self.transform(X))
        y = column_or_1d(y)
        check_consistent_length(Z, y)
        partners = PairSampler(y, self.same_class_fraction, random_state).sample(
            np.arange(len(y)))
        same = torch.from_numpy(y == y[partners])
        criterion = ContrastiveLoss(self.loss, self.margin, self.pos_margin, self.neg_margin)
        return float(criterion(Z, Z[torch.from_numpy(partners)], same))

    def get_feature_names_out(self, input_features=None):
        """``embedding_<i>``."""
        check_is_fitted(self, "net_")
        return np.array([f"embedding_{i}" for i in range(self.embedding_dim)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.non_deterministic = self.random_state is None
        return tags


declare(SiameseEmbedder, [
    Param("architecture", "default", [str, list, tuple], "", positional=True),
    Param("embedding_dim", 32, [count()], ""),
    Param("loss", "contrastive", [StrOptions(set(PAIR_LOSSES))], ""),
    *(Param(name, default, [real()], "") for name, default in
      (("margin", 0.2), ("pos_margin", 0.0), ("neg_margin", 1.0))),
    Param("same_class_fraction", 0.2, [real(0.0, 1.0, "both")], ""),
    Param("normalize_embeddings", True, ["boolean"], ""),
    Param("normalize", DEPRECATED, [StrOptions({DEPRECATED}), "boolean"], ""),
], defaults={"batch_size": 64})
