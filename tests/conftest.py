import os

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def digits():
    from sklearn_cnn.datasets import load_digits_images

    d = load_digits_images()
    for a in (d.images, d.target):  # shared by every test: none may change it in place
        a.setflags(write=False)
    return d


@pytest.fixture(scope="session")
def small_digits(digits):
    """400 training and 200 test digits: enough to learn, quick to fit."""
    return digits.images[:400], digits.target[:400], digits.images[400:600], digits.target[400:600]


def shared_file(*parts):
    """Path below SKLEARN_CNN_SHARED, or skip the test with a reason."""
    from sklearn_cnn.datasets import shared_path

    path = shared_path(*parts)
    if path is None:
        pytest.skip(f"shared file {'/'.join(parts)} not available: set SKLEARN_CNN_SHARED "
                    "to the folder holding data/ and weights/")
    return path
