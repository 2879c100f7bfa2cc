import numpy as np
import pandas as pd
import pytest
from sklearn.neighbors import KNeighborsClassifier

from sklearn_cnn import CNNClassifier, probe_layers


def test_probe_layers_table(small_digits):
    X, y, Xt, yt = small_digits
    cnn = CNNClassifier("cifar_3x3", max_epochs=3, verbose=0, random_state=0)
    table, fitted = probe_layers(cnn, X, y, Xt, yt, verbose=0, return_estimator=True)
    assert list(table.columns) == ["layer", "probe", "n_features", "train_acc", "test_acc",
                                   "fit_seconds"]
    assert table["layer"].unique().tolist() == ["flatten", "fc1", "fc2"]
    assert table["probe"].unique().tolist() == ["linear_svc", "knn"]
    assert table.set_index(["layer", "probe"]).loc[("fc1", "knn"), "n_features"] == 64
    assert (table["test_acc"] > 0.5).all()
    assert not hasattr(cnn, "net_") and hasattr(fitted, "net_")  # the argument is not fitted


def test_probe_layers_custom_probes_cv_and_fitted_net(small_digits):
    X, y, Xt, yt = small_digits
    cnn = CNNClassifier("mnist_5x5", max_epochs=2, verbose=0, random_state=0).fit(X, y)
    table = probe_layers(cnn, X, y, Xt, yt, layers=["conv3"], pooling="avg", cv=3,
                         probes={"1nn": KNeighborsClassifier(1)}, verbose=0)
    assert table.shape[0] == 1 and table.loc[0, "n_features"] == 16
    assert table.loc[0, "train_acc"] < 1.0  # cross-validated, not 1-NN on its own data
    with pytest.raises(ValueError, match="unknown layers 'fc7'"):
        probe_layers(cnn, X, y, Xt, yt, layers=["fc7"], verbose=0)
    # probes by name, the same form as the experiments' and --probes
    by_name = probe_layers(cnn, X, y, Xt, yt, layers=["conv3"], pooling="avg", probes="knn",
                           verbose=0)
    assert by_name["probe"].tolist() == ["knn"]
    for bad, error, match in [({}, ValueError, "empty dict"),
                              ({"x": 3}, TypeError, r"map names to classifiers"),
                              (3, TypeError, "probes must be None, a probe name"),
                              (["knn", "svm"], ValueError, r"unknown probe\(s\) \['svm'\]")]:
        with pytest.raises(error, match=match):
            probe_layers(cnn, X, y, Xt, yt, layers=["conv3"], probes=bad, verbose=0)


def test_default_probes_by_name():
    from sklearn.svm import LinearSVC

    from sklearn_cnn.linear_probe import LinearProbe
    from sklearn_cnn.probing import default_probes

    assert sorted(default_probes()) == ["knn", "linear_svc"]
    probes = default_probes(3, names=["logistic", "linear_svc", "liblinear_svc"])
    assert probes["logistic"].get_params()["loss"] == "log_loss"
    assert isinstance(probes["linear_svc"], LinearProbe)
    assert probes["linear_svc"].loss == "squared_hinge"
    # standardised inside: no StandardScaler (and its copy of the features) in front
    assert probes["linear_svc"].standardize and probes["logistic"].standardize
    assert isinstance(probes["liblinear_svc"][-1], LinearSVC)
    assert probes["liblinear_svc"][-1].random_state == 3
    # every call builds fresh, unfitted probes
    assert default_probes()["knn"] is not default_probes()["knn"]
    with pytest.raises(ValueError, match=r"unknown probe\(s\) \['svm9'\]; choose from"):
        default_probes(names=["svm9"])
    with pytest.raises(ValueError, match="names must name at least one of"):
        default_probes(names=[])


def test_train_acc_samples_bounds_the_training_score_and_is_checked(small_digits):
    """train_acc is measured on the seeded subset (its old name gives the same table);
    a count that is not a positive int is a ValueError naming the parameter."""
    X, y, Xt, yt = small_digits
    cnn = CNNClassifier("cifar_3x3", max_epochs=1, verbose=0, random_state=0).fit(X, y)
    small = probe_layers(cnn, X, y, Xt, yt, layers=["fc1"], probes="knn",
                         train_acc_samples=7, verbose=0)
    # 7 samples: the accuracy is a multiple of 1/7
    assert np.isclose(small["train_acc"].iloc[0] * 7, round(small["train_acc"].iloc[0] * 7))
    with pytest.warns(FutureWarning, match="use train_acc_samples"):
        old = probe_layers(cnn, X, y, Xt, yt, layers=["fc1"], probes="knn",
                           train_score_samples=7, verbose=0)
    pd.testing.assert_frame_equal(small.drop(columns="fit_seconds"),
                                  old.drop(columns="fit_seconds"))
    for bad in (0, 2.5, True, "all"):
        with pytest.raises(ValueError, match="train_acc_samples must be a positive int or None"):
            probe_layers(cnn, X, y, Xt, yt, layers=["fc1"], probes="knn",
                         train_acc_samples=bad, verbose=0)
    with pytest.raises(ValueError, match="got both train_acc_samples=7 and train_score_samples=5"):
        probe_layers(cnn, X, y, Xt, yt, layers=["fc1"], probes="knn", train_acc_samples=7,
                     train_score_samples=5, verbose=0)
