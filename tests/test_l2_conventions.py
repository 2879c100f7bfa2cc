"""weight_decay in each framework's terms (l2_convention): one SGD / Adam step on a tiny net."""

import numpy as np
import pytest
import torch

from sklearn_cnn import CNNClassifier
from sklearn_cnn.architectures import conv, dense, flatten

LAMBDA, LR = 0.05, 0.1


def weights_after(X, y, epochs, **kw):
    clf = CNNClassifier([conv(4, 3), flatten(), dense(8)], max_epochs=epochs, batch_size=len(y),
                        validation_fraction=None, lr=LR, random_state=0, verbose=0, **kw)
    clf.fit(X, y)
    return {k: v.detach().clone() for k, v in clf.module_.state_dict().items()
            if k.endswith("weight")}


@pytest.fixture(scope="module")
def data(digits):
    return digits.images[:64], digits.target[:64]


@pytest.mark.parametrize("convention, penalty", [
    ("pytorch", lambda w: LAMBDA * (w ** 2).sum() / 2),   # gradient lambda * w
    ("tf_l2_loss", lambda w: LAMBDA * (w ** 2).sum() / 2),  # lambda * tf.nn.l2_loss(w)
    ("keras", lambda w: LAMBDA * (w ** 2).sum()),          # kernel_regularizer=l2(lambda)
])
def test_coupled_l2_gradient_matches_the_frameworks_formula(data, convention, penalty):
    sgd = dict(optimizer="sgd", momentum=0.0)
    w0 = weights_after(*data, 0, **sgd)
    plain = weights_after(*data, 1, **sgd)
    decayed = weights_after(*data, 1, weight_decay=LAMBDA, l2_convention=convention, **sgd)
    for name, w in w0.items():
        w = w.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(penalty(w), w)
        # One SGD step: the penalty's gradient is the only difference between the runs.
        torch.testing.assert_close(decayed[name] - plain[name], -LR * grad,
                                   rtol=1e-4, atol=1e-7)


def test_decoupled_decay_is_adamws_outside_the_adaptive_scaling(data):
    w0 = weights_after(*data, 0)
    plain = weights_after(*data, 1)  # Adam
    decayed = weights_after(*data, 1, weight_decay=LAMBDA, l2_convention="decoupled")
    coupled = weights_after(*data, 1, weight_decay=LAMBDA)
    for name, w in w0.items():
        torch.testing.assert_close(decayed[name] - plain[name], -LR * LAMBDA * w,
                                   rtol=1e-4, atol=1e-7)
        # Coupled L2 goes through Adam's scaling: a different step.
        assert not torch.allclose(coupled[name] - plain[name], -LR * LAMBDA * w, atol=1e-6)


def test_adamw_without_weight_decay_decays_nothing(data):
    # torch's AdamW decays every parameter by 0.01 unless told otherwise.
    w0 = weights_after(*data, 0)
    adamw, adam = weights_after(*data, 1, optimizer="adamw"), weights_after(*data, 1)
    for name in w0:
        torch.testing.assert_close(adamw[name], adam[name], rtol=0, atol=0)


@pytest.mark.parametrize("kw, match", [
    (dict(l2_convention="tf"), "'l2_convention' parameter of CNNClassifier must be a str among"),
    (dict(l2_convention="decoupled", optimizer="sgd"), "decoupled.*optimizer='adam'"),
    (dict(l2_convention="keras", optimizer="adamw"), "adamw.*l2_convention='decoupled'"),
])
def test_bad_l2_convention_is_a_clear_error(data, kw, match):
    with pytest.raises(ValueError, match=match):
        CNNClassifier(weight_decay=0.01, max_epochs=1, verbose=0, **kw).fit(*data)


@pytest.mark.parametrize("convention, per_weight", [
    ("pytorch", lambda w: LAMBDA * (w ** 2).sum() / 2),
    ("tf_l2_loss", lambda w: LAMBDA * (w ** 2).sum() / 2),
    ("keras", lambda w: LAMBDA * (w ** 2).sum()),
])
def test_l2_penalty_is_the_term_each_convention_adds_to_the_loss(data, convention, per_weight):
    # Keras' evaluate() reports cross-entropy + this term: a report's loss is compared with it
    clf = CNNClassifier([conv(4, 3), flatten(), dense(8)], max_epochs=1, validation_fraction=None,
                        weight_decay=LAMBDA, l2_convention=convention, random_state=0,
                        verbose=0).fit(*data)
    weights = [p for name, p in clf.module_.named_parameters() if name.endswith("weight")]
    assert len(weights) == 3  # two dense layers and the conv: no bias is regularised
    want = sum(float(per_weight(w.detach().double())) for w in weights)
    assert clf.l2_penalty() == pytest.approx(want, rel=1e-9)
    only_conv = clf.set_params(weight_decay_layers=["conv1"]).fit(*data)
    conv_w = only_conv.module_.get_submodule("conv1").weight.detach().double()
    assert only_conv.l2_penalty() == pytest.approx(float(per_weight(conv_w)), rel=1e-9)


def test_l2_penalty_is_zero_without_decay_and_nan_when_decoupled(data):
    plain = CNNClassifier([conv(4, 3), flatten(), dense(8)], max_epochs=1, verbose=0,
                          random_state=0).fit(*data)
    assert plain.l2_penalty() == 0.0
    adamw = CNNClassifier([conv(4, 3), flatten(), dense(8)], max_epochs=1, verbose=0,
                          weight_decay=LAMBDA, l2_convention="decoupled", random_state=0).fit(*data)
    assert np.isnan(adamw.l2_penalty())
