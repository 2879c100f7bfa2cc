"""The one input-conversion path of sklearn_cnn.

Every estimator turns user input into a float32 array of shape ``(n, C, H, W)``
through :func:`check_images`; nothing else in the package reshapes or rescales
images. Accepted inputs:

* ``(n, H, W)``: grayscale images;
* ``(n, H, W, C)``: channels-last images (C is 1, 3 or 4), as numpy, PIL and
  the dataset loaders of this package produce them;
* ``(n, features)``: flattened images, reshaped with ``image_shape`` (rows in
  channels-first ``C, H, W`` order) or, when that is None, an inference (see
  :func:`infer_image_shape`). A row holds one layout or the other and the
  numbers cannot tell which, so flattened images of several channels (and
  more than one pixel) need ``image_shape``, or to be passed 4-D: they are
  never silently read in one layout when they may be in the other.

Pixel values, one rule: integers of any dtype (uint8, int64, Python ints from
``X.tolist()``, ...) are 0-255 values, divided by 255 (outside 0..255 is a
ValueError); floats are used as they are, and bools as 0 and 1. An estimator
fit on integers that is later given floats outside [-0.5, 1.5] warns
(UserWarning): those are most likely 0-255 values given as floats.
"""

import math
import numbers
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import check_array

__all__ = ["check_images", "infer_image_shape", "check_image_shape", "check_positive_int",
           "check_device", "channel_stats", "ImageBatches"]


def infer_image_shape(n_features):
    """Guess ``(C, H, W)`` for flattened images of ``n_features`` values.

    A perfect square ``s*s`` is one grayscale ``s x s`` image (64 -> 8x8
    digits, 784 -> 28x28 MNIST); ``3*s*s`` is an RGB ``s x s`` image (3072 ->
    32x32 CIFAR); anything else is a one-row grayscale image ``1 x n_features``
    (how scikit-learn's own tabular test data is treated). The three cases
    cannot overlap, because ``3*s*s`` is never a perfect square.

    Examples
    --------
    >>> infer_image_shape(64), infer_image_shape(3072), infer_image_shape(5)
    ((1, 8, 8), (3, 32, 32), (1, 1, 5))
    """
    side = math.isqrt(n_features)
    if side * side == n_features:
        return (1, side, side)
    if n_features % 3 == 0:
        side = math.isqrt(n_features // 3)
        if 3 * side * side == n_features:
            return (3, side, side)
    return (1, 1, n_features)


def check_image_shape(image_shape, name="image_shape"):
    """Validate a user-given ``image_shape``: (H, W) or (C, H, W) of positive ints."""
    if image_shape is None:
        return None
    try:
        shape = tuple(int(s) for s in image_shape)
    except TypeError:
        raise TypeError(
            f"{name} must be a tuple (H, W) or (C, H, W) of ints, got {image_shape!r}"
        ) from None
    if len(shape) == 2:
        shape = (1,) + shape
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(
            f"{name} must be (H, W) or (C, H, W) with positive sizes, got {image_shape!r}"
        )
    return shape


class ImageBatches:
    """Validated images whose float32 ``(n, C, H, W)`` form is made batch by batch.

    What :func:`check_images` returns with ``lazy=True``: slicing gives a
    converted C-contiguous float32 batch, so feature extraction over 50,000
    images never holds a float copy of all of them. ``np.asarray`` converts all.
    Pickling (and joblib hashing) sees the validated array in its original
    layout, so no copy is made for that either.
    """

    def __init__(self, source, shape, scale):
        self._source, self._shape, self._scale = source, tuple(shape), scale
        self._view = _to_nchw(source, self._shape)

    @property
    def shape(self):
        return self._view.shape

    @property
    def source(self):
        """The validated input array (its original layout and dtype), not converted."""
        return self._source

    def __len__(self):
        return self._view.shape[0]

    def __getitem__(self, index):
        if not isinstance(index, slice):
            raise TypeError("ImageBatches supports slices only")
        batch = np.ascontiguousarray(self._view[index], dtype=np.float32)
        if self._scale:
            batch /= np.float32(255)
        return batch

    def __array__(self, dtype=None, copy=None):
        return self[:] if dtype is None else self[:].astype(dtype)

    def __reduce__(self):
        return (ImageBatches, (self._source, self._shape, self._scale))


def _to_nchw(arr, image_shape):
    """(n, C, H, W) view of a validated 2-D, 3-D or channels-last 4-D array."""
    if arr.ndim == 2:
        return arr.reshape((arr.shape[0],) + tuple(image_shape))
    if arr.ndim == 3:
        return arr[:, None, :, :]
    return arr.transpose(0, 3, 1, 2)


def check_images(X, *, image_shape=None, expected_shape=None, name="X", estimator=None,
                 lazy=False, integer_fit=None, return_integer=False):
    """Validate images and convert them to float32 ``(n, C, H, W)``.

    Parameters
    ----------
    X : array-like of shape (n, H, W), (n, H, W, C) or (n, features)
        Images. Integer values (any integer dtype) are 0-255 and divided by
        255; floats are used as they are.
    image_shape : tuple (H, W) or (C, H, W), default=None
        How to unflatten 2-D ``X``, whose rows are read in channels-first
        (C, H, W) order. None infers it with :func:`infer_image_shape` (or
        uses ``expected_shape``), which is an error for several channels of
        more than one pixel: their row layout is ambiguous.
    expected_shape : tuple (C, H, W), default=None
        The shape seen in ``fit``; a different one raises ValueError.
    name : str
        Name of the argument, used in error messages.
    estimator : str, default=None
        Name of the calling estimator, used in error messages.
    lazy : bool, default=False
        Validate now but convert batch by batch: return an :class:`ImageBatches`
        (uint8 and float32 input are then never copied whole).
    integer_fit : bool, default=None
        Whether the estimator was fit on integer (0-255) images. True warns
        when float ``X`` has values outside [-0.5, 1.5]. None: no check.
    return_integer : bool, default=False
        Also return whether ``X`` held integers (what ``fit`` records as
        ``integer_input_``).

    Returns
    -------
    images : ndarray of shape (n, C, H, W), float32, C-contiguous (or ImageBatches)
    integer : bool
        Only with ``return_integer``.

    Examples
    --------
    >>> import numpy as np
    >>> check_images(np.zeros((2, 8, 8), dtype=np.uint8)).shape
    (2, 1, 8, 8)
    >>> check_images(np.ones((2, 12)), image_shape=(3, 4)).shape
    (2, 1, 3, 4)
    """
    if hasattr(X, "detach") and hasattr(X, "numpy"):  # a torch tensor
        X = X.detach().cpu().numpy()
    if sp.issparse(X):
        raise TypeError(
            f"sparse input is not supported: {name} must be a dense array of images; "
            f"convert it with {name}.toarray()"
        )
    if isinstance(X, (str, bytes)) or X is None:
        raise TypeError(f"{name} must be an array of images, got {type(X).__name__}")
    raw = X if isinstance(X, np.ndarray) else np.asarray(X)
    if raw.dtype.kind in "OUSV" and raw.dtype != object:
        raise TypeError(f"{name} must hold numbers, got dtype {raw.dtype}")
    if raw.ndim not in (2, 3, 4):
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features), 3-D (n, H, W) or 4-D "
            f"(n, H, W, C) images; got an array with {raw.ndim} dimension(s) of "
            f"shape {raw.shape}. Reshape your data: a single image with X[None], a "
            "1-D feature vector with X.reshape(1, -1)."
        )
    integer = raw.dtype.kind in "iu"
    arr = check_array(
        raw,
        dtype=None if integer else np.float32,
        ensure_2d=False,
        allow_nd=True,
        ensure_min_samples=1,
        input_name=name,
    )
    if integer:
        _check_pixel_range(arr, name)
    elif integer_fit:
        _warn_float_after_integer_fit(arr, name, estimator)
    if arr.ndim == 2:
        if expected_shape is not None and arr.shape[1] != int(np.prod(expected_shape)):
            raise ValueError(
                f"{name} has {arr.shape[1]} features, but {estimator or 'the estimator'} is "
                f"expecting {int(np.prod(expected_shape))} features as input (images of shape "
                f"(C, H, W)={tuple(expected_shape)})"
            )
        shape = check_image_shape(image_shape)
        if shape is None:
            shape = tuple(expected_shape) if expected_shape is not None else \
                infer_image_shape(arr.shape[1])
            _check_flat_layout(shape, name)
        if int(np.prod(shape)) != arr.shape[1]:
            raise ValueError(
                f"{name} has {arr.shape[1]} features, which cannot be reshaped to "
                f"image_shape={shape} ({int(np.prod(shape))} values)"
            )
    elif arr.ndim == 4 and arr.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"4-D {name} must be channels-last (n, H, W, C) with C in 1, 3 or 4; got "
            f"shape {arr.shape}. Transpose channels-first data with "
            "X.transpose(0, 2, 3, 1)."
        )
    source = arr
    arr = _to_nchw(arr, shape if arr.ndim == 2 else None)
    if min(arr.shape[1:]) < 1:
        raise ValueError(f"{name} has an empty image dimension: shape {arr.shape}")
    if expected_shape is not None and tuple(arr.shape[1:]) != tuple(expected_shape):
        c, h, w = expected_shape
        got_c = arr.shape[1]
        what = (f"{got_c} channel(s) but fit saw {c}" if got_c != c
                else f"images of {arr.shape[2]}x{arr.shape[3]} but fit saw {h}x{w}")
        raise ValueError(
            f"{name} has {what}: expected images of shape (C, H, W)={tuple(expected_shape)}, "
            f"got {tuple(arr.shape[1:])}"
        )
    if lazy:
        images = ImageBatches(source, arr.shape[1:], scale=integer)
    else:
        if integer:
            arr = arr.astype(np.float32) / np.float32(255)
        images = np.ascontiguousarray(arr, dtype=np.float32)
    return (images, integer) if return_integer else images


def _check_pixel_range(arr, name):
    """Integer images are 0-255 pixel values: anything else would be scaled wrongly."""
    if arr.dtype == np.uint8 or arr.size == 0:
        return
    low, high = arr.min(), arr.max()
    if low < 0 or high > 255:
        raise ValueError(
            f"{name} holds integers from {low} to {high}, but integer images are read as 0-255 "
            "pixel values (and divided by 255). Pass 0-255 integers, or floats, which are "
            "used as they are.")


def _warn_float_after_integer_fit(arr, name, estimator):
    low, high = float(arr.min()), float(arr.max())
    if low < -0.5 or high > 1.5:
        warnings.warn(
            f"{estimator or 'the estimator'} was fit on integer images (0-255 values, divided "
            f"by 255), but {name} is float with values from {low:g} to {high:g}, which are used "
            "as they are. If these are 0-255 pixel values given as floats, pass them as "
            f"integers ({name}.astype(np.uint8)) or divide them by 255.", UserWarning,
            stacklevel=3)


def _check_flat_layout(shape, name):
    """Refuse to guess the layout of flattened rows of several channels and pixels."""
    c, h, w = shape
    if c == 1 or h * w == 1:
        return  # one layout only
    raise ValueError(
        f"{name} is 2-D with {c * h * w} values per row: flattened images of {c} channels of "
        f"{h}x{w} pixels, in an order that cannot be told from the numbers: channels-last "
        f"(what images.reshape(n, -1) of (n, H, W, C) images gives) or channels-first (the "
        f"order of CIFAR-10's own batches). Pass the images 4-D (n, H, W, C): "
        f"{name}.reshape(-1, {h}, {w}, {c}) for channels-last rows, "
        f"{name}.reshape(-1, {c}, {h}, {w}).transpose(0, 2, 3, 1) for channels-first rows; "
        f"or, where the estimator has it, set image_shape=({c}, {h}, {w}), which reads rows "
        "channels-first.")


def check_positive_int(value, name, *, allow_none=False, minimum=1):
    """Return ``value`` as int, or raise a ValueError/TypeError naming ``name``."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def check_positive_float(value, name):
    """Return ``value`` as float, or raise a ValueError naming ``name`` (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value <= 0:
        raise ValueError(f"{name} must be a float > 0, got {value!r}")
    return float(value)


def check_device(device, name="device"):
    """Return ``device`` as a :class:`torch.device` that this machine can run on.

    The one device check of the package: every trainer and feature extractor
    calls it in ``fit``, so a typo or a GPU that is not there is a ValueError
    naming ``name`` before any work, not a torch RuntimeError mid-training.

    Parameters
    ----------
    device : str or torch.device
        E.g. ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"``.
    name : str, default="device"
        Name of the parameter, used in error messages.

    Returns
    -------
    device : torch.device

    Raises
    ------
    TypeError
        ``device`` is neither a string nor a torch.device.
    ValueError
        ``device`` is not a torch device name, or names a backend (or a CUDA
        index) that this machine does not have.

    Examples
    --------
    >>> check_device("cpu")
    device(type='cpu')
    """
    import torch

    # torch.device(3) would mean "cuda:3": accept only what a user writes for a device
    if isinstance(device, bool) or not isinstance(device, (str, torch.device)):
        raise TypeError(f"{name} must be a str such as 'cpu' or 'cuda', or a torch.device; "
                        f"got {device!r}")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"{name} must be a torch device such as 'cpu' or 'cuda', "
                         f"got {device!r}") from None
    if dev.type == "meta":
        raise ValueError(f"{name}={device!r} holds no data; use 'cpu' or an accelerator")
    # torch.cuda, torch.mps, torch.xpu, ... each say whether this machine has one
    backend = getattr(torch, dev.type, None)
    if dev.type != "cpu" and callable(getattr(backend, "is_available", None)):
        if not backend.is_available():
            raise ValueError(f"{name}={device!r}, but this machine has no {dev.type} device "
                             f"(torch.{dev.type}.is_available() is False); use 'cpu'")
        count = getattr(backend, "device_count", None)
        if dev.index is not None and callable(count) and dev.index >= count():
            raise ValueError(f"{name}={device!r}, but this machine has only {count()} "
                             f"{dev.type} device(s), numbered from 0")
    return dev


def channel_stats(images):
    """Per-channel mean and std (float64 tensors) of float32 images (n, C, H, W).

    Computed with torch (multi-threaded, unlike numpy's reductions); a constant
    channel gets std 1 so that standardising it is harmless.
    """
    import torch

    t = torch.from_numpy(images)
    mean = t.mean(dim=(0, 2, 3), dtype=torch.float64)
    std = t.std(dim=(0, 2, 3), correction=0).double()
    return mean, torch.where(std > 1e-8, std, torch.ones_like(std))
