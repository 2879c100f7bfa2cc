import numpy as np
import pytest
import scipy.sparse as sp

from sklearn_cnn._input import check_images, infer_image_shape


@pytest.mark.parametrize("n,shape", [(64, (1, 8, 8)), (784, (1, 28, 28)), (3072, (3, 32, 32)),
                                     (2, (1, 1, 2)), (1, (1, 1, 1)), (10, (1, 1, 10)), (12, (3, 2, 2))])
def test_infer_image_shape(n, shape):
    assert infer_image_shape(n) == shape


def test_uint8_is_scaled_and_float_is_not():
    u = check_images(np.full((1, 2, 2), 255, np.uint8))
    f = check_images(np.full((1, 2, 2), 255.0))
    assert u.dtype == f.dtype == np.float32
    assert u.max() == 1.0 and f.max() == 255.0


def test_channels_last_becomes_channels_first():
    X = np.arange(2 * 4 * 5 * 3).reshape(2, 4, 5, 3).astype(np.float32)
    out = check_images(X)
    assert out.shape == (2, 3, 4, 5)
    np.testing.assert_array_equal(out[1, 2], X[1, :, :, 2])


def test_sparse_and_objects_rejected():
    with pytest.raises(TypeError, match="sparse input is not supported"):
        check_images(sp.csr_matrix(np.eye(3)))
    with pytest.raises(TypeError, match="must be an array of images"):
        check_images("images.png")


def test_expected_shape_uses_fit_shape_for_flat_input():
    out = check_images(np.zeros((2, 12)), expected_shape=(3, 2, 2))
    assert out.shape == (2, 3, 2, 2)


@pytest.mark.parametrize("X", [
    np.random.RandomState(0).randint(0, 256, (7, 5, 4, 3)).astype(np.uint8),
    np.random.RandomState(0).rand(7, 5, 4).astype(np.float32),
    np.random.RandomState(0).rand(7, 12),
])
def test_lazy_batches_equal_eager_conversion(X):
    import pickle

    import joblib

    eager = check_images(X, image_shape=(3, 4) if X.ndim == 2 else None)
    lazy = check_images(X, image_shape=(3, 4) if X.ndim == 2 else None, lazy=True)
    assert lazy.shape == eager.shape and len(lazy) == 7
    np.testing.assert_array_equal(np.concatenate([lazy[0:3], lazy[3:7]]), eager)
    np.testing.assert_array_equal(np.asarray(lazy), eager)
    again = pickle.loads(pickle.dumps(lazy))
    np.testing.assert_array_equal(again[:], eager)
    assert joblib.hash(lazy) == joblib.hash(check_images(X.copy(), image_shape=(3, 4)
                                                         if X.ndim == 2 else None, lazy=True))


def _estimators_with_device(device):
    from sklearn_cnn import CNNClassifier, SiameseEmbedder, TransferClassifier
    from sklearn_cnn.features.cifar_resnet import CifarResNetFeatures
    from sklearn_cnn.features.pretrained import VGGFeatures

    return [CNNClassifier(device=device, verbose=0), SiameseEmbedder(device=device, verbose=0),
            TransferClassifier(device=device, verbose=0),
            VGGFeatures("conv1_1", arch="vgg11", weights=None, device=device),
            CifarResNetFeatures(weights=None, device=device)]


@pytest.mark.parametrize("device,error,match", [
    ("nope", ValueError, "device must be a torch device such as 'cpu' or 'cuda', got 'nope'"),
    ("cuda", ValueError, r"device='cuda', but this machine has no cuda device"),
    ("meta", ValueError, "holds no data"),
    (3, TypeError, "device must be a str"),
])
def test_every_estimator_checks_device_in_fit(device, error, match):
    import torch

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    X = np.random.RandomState(0).randint(0, 256, (4, 8, 8, 3)).astype(np.uint8)
    y = np.array([0, 1, 0, 1])
    for est in _estimators_with_device(device):
        with pytest.raises(error, match=match):
            est.fit(X, y)


def test_check_device_accepts_cpu_and_torch_devices():
    import torch

    from sklearn_cnn._input import check_device

    assert check_device("cpu") == check_device(torch.device("cpu")) == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no cuda device"):
            check_device(torch.device("cuda", 1))
