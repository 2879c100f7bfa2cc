"""scikit-learn's estimator checks over every public estimator of sklearn_cnn.

Expected failures are declared here, in one place, each with its reason.
"""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_cnn import CNNClassifier, LayerFeatures

# Instances configured for speed only: tiny widths, silent.
ESTIMATORS = [
    CNNClassifier(verbose=0, random_state=0),
    LayerFeatures(CNNClassifier(max_epochs=2, verbose=0, random_state=0)),
]

# {estimator class name: {check name: reason}}
EXPECTED_FAILED_CHECKS = {
    "CNNClassifier": {},
    "LayerFeatures": {},
}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_every_public_estimator_is_checked():
    import inspect

    import sklearn_cnn
    from sklearn.base import BaseEstimator

    public = {name for name in sklearn_cnn.__all__
              if inspect.isclass(getattr(sklearn_cnn, name))
              and issubclass(getattr(sklearn_cnn, name), BaseEstimator)}
    checked = {type(e).__name__ for e in ESTIMATORS}
    assert public <= checked, f"not in the common test: {sorted(public - checked)}"
