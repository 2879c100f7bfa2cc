"""GridSearchCV on a dask.distributed LocalCluster (processes on loopback)."""

import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from sklearn_cnn import CNNClassifier, LayerFeatures
from sklearn_cnn.parallel import TorchThreads, torch_threads_per_worker

distributed = pytest.importorskip("distributed", reason="the 'distributed' extra is not installed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None,
                                       worker_dashboard_address=None)
    c = distributed.Client(cluster, timeout="60s")
    c.register_plugin(TorchThreads(torch_threads_per_worker(2)))
    yield c
    c.close(timeout=30)
    cluster.close(timeout=30)


def test_threads_per_worker():
    assert torch_threads_per_worker(2, cores=2) == 1
    assert torch_threads_per_worker(2, cores=16) == 8
    assert torch_threads_per_worker(4, 2, cores=2) == 1


def test_workers_use_one_torch_thread(client):
    def threads():
        import torch

        return torch.get_num_threads()

    assert set(client.run(threads).values()) == {1}


def test_grid_search_on_dask_matches_n_jobs_1(client, small_digits):
    import torch

    X, y, _, _ = small_digits
    X, y = X[:240], y[:240]
    pipe = Pipeline([("features", LayerFeatures(CNNClassifier("cifar_3x3", max_epochs=1,
                                                              verbose=0, random_state=0), "fc1")),
                     ("svm", LinearSVC())])
    grid = {"features__estimator__kernel_size": [3, 5], "svm__C": [0.1, 1.0]}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' setting, so float sums run in the same order
    try:
        local = GridSearchCV(pipe, grid, cv=2, n_jobs=1).fit(X, y)
    finally:
        torch.set_num_threads(threads)
    with joblib.parallel_backend("dask"):
        remote = GridSearchCV(pipe, grid, cv=2, n_jobs=-1).fit(X, y)
    np.testing.assert_array_equal(local.cv_results_["mean_test_score"],
                                  remote.cv_results_["mean_test_score"])
    assert local.best_params_ == remote.best_params_
    np.testing.assert_array_equal(local.predict(X[:50]), remote.predict(X[:50]))
