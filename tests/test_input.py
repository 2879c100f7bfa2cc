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
    out = check_images(np.zeros((2, 12)), expected_shape=(1, 3, 4))
    assert out.shape == (2, 1, 3, 4)
    assert check_images(np.zeros((2, 3)), expected_shape=(3, 1, 1)).shape == (2, 3, 1, 1)


@pytest.mark.parametrize("kw", [{}, dict(expected_shape=(3, 2, 2))])
def test_flat_multichannel_input_needs_an_explicit_layout(kw):
    # Flattened channels-last RGB used to be read channels-first without a word.
    R = np.random.RandomState(0).rand(2, 2, 2, 3)
    with pytest.raises(ValueError, match=r"12 values per row: flattened images of 3 channels "
                                         r"of 2x2 pixels.*X.reshape\(-1, 2, 2, 3\)"):
        check_images(R.reshape(2, -1), **kw)
    with pytest.raises(ValueError, match="cannot be told"):
        check_images(R.reshape(2, -1).tolist(), **kw)
    # the two explicit ways: 4-D images, or image_shape (rows read channels-first)
    four_d = check_images(R, **kw)
    np.testing.assert_array_equal(
        check_images(R.reshape(2, -1), image_shape=(3, 2, 2), **kw),
        R.reshape(2, 3, 2, 2).astype(np.float32))
    np.testing.assert_array_equal(
        check_images(R.transpose(0, 3, 1, 2).reshape(2, -1), image_shape=(3, 2, 2), **kw),
        four_d)


@pytest.mark.parametrize("convert", [
    lambda X: X.astype(np.int64), lambda X: X.astype(np.int16), lambda X: X.astype(np.uint16),
    lambda X: X.tolist(),
], ids=["int64", "int16", "uint16", "tolist"])
def test_integers_of_any_dtype_are_0_255(convert):
    X = np.random.RandomState(0).randint(0, 256, (3, 4, 4, 3)).astype(np.uint8)
    expected = check_images(X)
    np.testing.assert_array_equal(check_images(convert(X)), expected)
    np.testing.assert_array_equal(check_images(convert(X), lazy=True)[:], expected)
    images, integer = check_images(convert(X), return_integer=True)
    assert integer and images.max() <= 1.0


@pytest.mark.parametrize("X", [np.full((1, 2, 2), 256), np.full((1, 2, 2), -1, np.int8)])
def test_integers_outside_0_255_are_rejected(X):
    with pytest.raises(ValueError, match=r"integers from -?\d+ to -?\d+, but integer images "
                                         r"are read as 0-255"):
        check_images(X)


def test_bool_and_float_are_used_as_they_are():
    b, integer = check_images(np.array([[[True, False]]]), return_integer=True)
    assert not integer and b.tolist() == [[[[1.0, 0.0]]]]
    assert check_images(np.full((1, 2, 2), 0.5)).max() == 0.5


def test_float_0_255_after_an_integer_fit_warns():
    import warnings

    X = np.random.RandomState(0).randint(0, 256, (3, 4, 4)).astype(np.float64)
    with pytest.warns(UserWarning, match=r"fit on integer images .* values from \d+ to 25\d.*"
                                         r"astype\(np.uint8\)"):
        check_images(X, integer_fit=True, estimator="CNNClassifier")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_images(X / 255, integer_fit=True)  # floats in [0, 1]: fine
        check_images(X, integer_fit=False)  # fit on floats: floats are as expected
        check_images(X.astype(np.uint8), integer_fit=True)


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
    (3, TypeError, "device.* must be (a str|an instance of 'str')"),
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
