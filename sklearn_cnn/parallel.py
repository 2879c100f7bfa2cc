"""Running sweeps on a dask.distributed cluster without oversubscribing the cores.

scikit-learn spreads ``GridSearchCV(n_jobs=...)`` through joblib; under
``joblib.parallel_backend("dask")`` the candidates run on a dask.distributed
cluster. Each worker process must use few torch threads, or ``workers x
threads`` exceeds the cores and everything slows down:

>>> from dask.distributed import Client, LocalCluster     # doctest: +SKIP
>>> cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True)  # doctest: +SKIP
>>> client = Client(cluster)                               # doctest: +SKIP
>>> client.register_plugin(TorchThreads(1))                # doctest: +SKIP
>>> with joblib.parallel_backend("dask"):                  # doctest: +SKIP
...     search.fit(X, y)
"""

__all__ = ["TorchThreads", "torch_threads_per_worker"]


def torch_threads_per_worker(n_workers, threads_per_worker=1, cores=None):
    """Torch threads each worker may use so that workers x threads <= cores (at least 1)."""
    import os

    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(1, n_workers * threads_per_worker))


try:
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # the optional "distributed" extra is not installed
    WorkerPlugin = object


class TorchThreads(WorkerPlugin):
    """dask WorkerPlugin: ``torch.set_num_threads(n)`` in every worker process."""

    name = "sklearn-cnn-torch-threads"

    def __init__(self, n_threads=1):
        self.n_threads = n_threads

    def setup(self, worker):
        import torch

        torch.set_num_threads(self.n_threads)
