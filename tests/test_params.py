"""The training parameters are declared once (sklearn_cnn._params) and reach every trainer."""
import inspect

import numpy as np
import pytest

from sklearn_cnn import CNNClassifier, SiameseEmbedder, TransferClassifier
from sklearn_cnn._params import TRAINING_PARAMS, declare, Param

TRAINERS = (CNNClassifier, SiameseEmbedder, TransferClassifier)


@pytest.mark.parametrize("cls", TRAINERS)
def test_signature_constraints_and_docstring_agree(cls):
    names = [n for n in inspect.signature(cls).parameters]
    assert set(cls._parameter_constraints) == set(names)
    # every parameter is documented in the class docstring, once
    for name in names:
        assert cls.__doc__.count(f"\n    {name} : ") + cls.__doc__.count(f"\n    {name}, ") \
            + (cls.__doc__.count(f", {name}, ") + cls.__doc__.count(f", {name} : ")) >= 1, name
    assert "{training_parameters}" not in cls.__doc__


def test_shared_parameters_are_the_same_objects_everywhere():
    shared = [p.name for p in TRAINING_PARAMS]
    for cls in TRAINERS:
        params = inspect.signature(cls).parameters
        for name in shared:
            if name in params:
                assert cls._parameter_constraints[name] is next(
                    p.constraints for p in TRAINING_PARAMS if p.name == name)
    # the estimator's own default where it differs from the table's, documented as such
    assert inspect.signature(SiameseEmbedder).parameters["batch_size"].default == 64
    assert "batch_size : int, default=64" in SiameseEmbedder.__doc__
    assert "batch_size : int, default=32" in CNNClassifier.__doc__


def test_init_stores_arguments_and_rejects_unknown_ones():
    clf = CNNClassifier("cifar_3x3", lr=0.5)
    assert clf.architecture == "cifar_3x3" and clf.lr == 0.5 and clf.batch_size == 32
    assert clf.get_params()["lr"] == 0.5
    with pytest.raises(TypeError,
                       match=r"CNNClassifier\(\): got an unexpected keyword argument 'learning_"):
        CNNClassifier(learning_rate=0.5)
    with pytest.raises(TypeError, match=r"CNNClassifier\(\): too many positional"):
        CNNClassifier("default", None)  # only architecture may be positional
    from sklearn_cnn import VGGFeatures

    with pytest.raises(TypeError, match=r"VGGFeatures\(\): got an unexpected keyword"):
        VGGFeatures(pool="max")  # the front-ends' stored_init names the class too


@pytest.mark.parametrize("params, match", [
    (dict(batch_size=True), "'batch_size' parameter of CNNClassifier must be an int"),
    (dict(max_epochs=2.0), "'max_epochs' parameter of CNNClassifier must be an int"),
    (dict(lr=True), "'lr' parameter of CNNClassifier must be a float"),
    (dict(nesterov=1), "'nesterov' parameter of CNNClassifier must be an instance of 'bool'"),
    (dict(validation_fraction=0.0), r"'validation_fraction' .* range \(0.0, 1.0\) or None"),
])
def test_bools_are_not_counts_and_ranges_are_checked(params, match):
    X = np.random.RandomState(0).rand(8, 64)
    with pytest.raises(ValueError, match=match):
        CNNClassifier(verbose=0, **params).fit(X, np.arange(8) % 2)


def test_declare_refuses_unknown_shared_names():
    class Est:
        """Doc."""
    with pytest.raises(ValueError, match="not training parameters: \\['lr_rate'\\]"):
        declare(Est, [Param("a", 1, "no_validation", "")], defaults={"lr_rate": 1})
