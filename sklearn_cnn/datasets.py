"""Dataset loaders returning scikit-learn ``Bunch`` objects of uint8 images.

Every loader returns ``images`` of shape (n, H, W, C) uint8, ``target``
(int), ``target_names`` and ``DESCR``, like scikit-learn's own loaders, so
their output goes straight into any estimator of this package.

Shared copies of CIFAR-10 / MNIST and pretrained weights are found through
the ``SKLEARN_CNN_SHARED`` environment variable (a folder holding ``data/``
and ``weights/``); see :func:`shared_path`.
"""

import gzip
import io
import os
import tarfile
import zlib
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils import Bunch, check_random_state

__all__ = [
    "load_digits_images", "load_image_folder", "load_image_folder_splits", "load_cifar10", "load_mnist", "subsample",
    "shared_path", "load_train_test", "IMAGE_EXTENSIONS", "DataNotFoundError",
]


class DataNotFoundError(FileNotFoundError):
    """A data set (or the weights) the user asked for is not on this machine.

    A FileNotFoundError whose message says where to put the files; its own class
    lets the command line print it as one line, unlike an unexpected missing file.
    """

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff",
                    ".webp")
SHARED_ENV = "SKLEARN_CNN_SHARED"


def shared_path(*parts):
    """Path of a file below the shared-data folder, or None when it is not there.

    The folder is named by the environment variable ``SKLEARN_CNN_SHARED``
    (it holds ``data/cifar10-jpg.tar.gz``, ``weights/resnet20-12fca82f.th``, ...).

    Examples
    --------
    >>> p = shared_path("data", "cifar10-jpg.tar.gz")  # None unless the data is there
    """
    root = os.environ.get(SHARED_ENV)
    if not root:
        return None
    path = Path(root).expanduser().joinpath(*parts)
    return path if path.exists() else None


def load_digits_images():
    """scikit-learn's embedded 8x8 digits as uint8 images (1797, 8, 8, 1).

    Pixel values 0..16 are scaled to 0..255. This is the default dataset of
    sklearn_cnn: it ships with scikit-learn, so it needs no download.

    Examples
    --------
    >>> d = load_digits_images()
    >>> d.images.shape, d.images.dtype, d.target[:5]
    ((1797, 8, 8, 1), dtype('uint8'), array([0, 1, 2, 3, 4]))
    """
    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return Bunch(images=images, target=digits.target.astype(np.int64),
                 target_names=np.array([str(t) for t in digits.target_names]),
                 DESCR="scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), "
                       "scaled to uint8.")


def _decode(data, mode, image_size, where):
    """Decode one image file's bytes to an (H, W, C) uint8 array with PIL."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            if mode and img.mode != mode:
                img = img.convert(mode)
            elif img.mode not in ("L", "RGB", "RGBA"):
                img = img.convert("RGB")
            if image_size is not None and img.size != (image_size[1], image_size[0]):
                img = img.resize((image_size[1], image_size[0]), Image.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except Exception as exc:  # PIL raises many types for broken files
        raise ValueError(f"cannot decode image {where}: {exc}") from None
    return arr[..., None] if arr.ndim == 2 else arr


def _split_and_class(relpath):
    parts = [p for p in relpath.replace("\\", "/").split("/") if p and p != "."]
    if len(parts) < 2:
        return None, None
    return (parts[-3] if len(parts) >= 3 else None), parts[-2]


def _iter_files(path):
    """Yield (relative path, read-bytes callable) for every file, in one sequential pass."""
    if path.is_dir():
        for dirpath, _, filenames in sorted(os.walk(path)):
            for fname in sorted(filenames):
                full = Path(dirpath) / fname
                yield str(full.relative_to(path)), full.read_bytes
    else:
        # A stream ("r|"): random access into a .tar.gz re-decompresses from the start.
        try:
            with open(path, "rb") as raw:
                is_gzip = raw.read(2) == b"\x1f\x8b"
            if not is_gzip:
                with tarfile.open(path, "r|*") as tar:
                    yield from _archive_members(path, tar)
                return
            # gzip, not tarfile, decompresses: tarfile takes a stream that ends on a header
            # boundary for the end of the archive, so a truncated copy would load as a
            # smaller data set; gzip checks its end-of-stream marker and CRC when read to
            # the end.
            with gzip.open(path, "rb") as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
                yield from _archive_members(path, tar)
                while stream.read(1 << 20):
                    pass
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise _unreadable_archive(path, exc) from exc


def _archive_members(path, tar):
    for member in tar:
        if member.isfile():
            yield member.name, _archive_reader(path, tar.extractfile(member))


def _archive_reader(path, fileobj):
    """``fileobj.read`` whose read errors (a truncated or corrupt archive) name ``path``."""
    def read():
        try:
            return fileobj.read()
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise _unreadable_archive(path, exc) from exc
    return read


def _unreadable_archive(path, exc):
    return ValueError(f"cannot read the archive {str(path)!r}: {exc or type(exc).__name__}. It "
                      "is not a .tar / .tar.gz file, or it is corrupt or truncated.")


def load_image_folder(path, split=None, *, image_size=None, mode=None):
    """Load an image-folder dataset ``[<split>/]<class>/<file>`` from a folder or a tar.

    Parameters
    ----------
    path : str or Path
        A directory, or a ``.tar`` / ``.tar.gz`` archive (read in one
        sequential pass). The class of an image is the name of its folder; the
        split is the folder above that (``train``, ``test``, ...).
    split : str, default=None
        Keep only this split. None keeps everything, which is an error when
        the data holds several splits (they would be mixed).
    image_size : int or (H, W), default=None
        Resize every image to this size; needed when images differ in size
        (e.g. Caltech-256).
    mode : {None, "L", "RGB"}, default=None
        Convert every image to grayscale or RGB; None keeps the files' mode.

    Returns
    -------
    Bunch with images (n, H, W, C) uint8, target (n,) int, target_names (sorted
    class folder names), filenames, split.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from PIL import Image
    >>> root = tempfile.mkdtemp()
    >>> for cls in ("cat", "dog"):
    ...     os.makedirs(f"{root}/train/{cls}")
    ...     Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(f"{root}/train/{cls}/0.png")
    >>> b = load_image_folder(root, split="train")
    >>> b.images.shape, [str(name) for name in b.target_names]
    ((2, 4, 4, 3), ['cat', 'dog'])
    """
    path = _check_folder_args(path, mode)
    image_size = _image_size(image_size)
    records = _read_records(path, None if split is None else {split}, image_size, mode)
    splits = {r[0] for r in records}
    if split is None and len(splits) > 1:
        raise ValueError(f"{path} holds several splits {sorted(map(str, splits))}; choose one "
                         "with split=...")
    return _records_to_bunch([r[1:] for r in records], path, split)


def load_image_folder_splits(path, splits=("train", "test"), *, image_size=None, mode=None):
    """Several splits of an image folder / tar in one sequential pass.

    Returns a dict ``{split: Bunch}`` with the same ``target_names`` in each
    (the union of the splits' classes). See :func:`load_image_folder`.
    """
    path = _check_folder_args(path, mode)
    image_size = _image_size(image_size)
    records = _read_records(path, set(splits), image_size, mode)
    names = np.array(sorted({r[2] for r in records}))
    return {s: _records_to_bunch([r[1:] for r in records if r[0] == s], path, s, names)
            for s in splits}


def _check_folder_args(path, mode):
    path = Path(path).expanduser()
    if not path.exists():
        raise DataNotFoundError(f"image folder or archive not found: {path}")
    if mode not in (None, "L", "RGB"):
        raise ValueError(f"mode must be None, 'L' or 'RGB', got {mode!r}")
    return path


def _image_size(image_size):
    if image_size is None:
        return None
    return (int(image_size),) * 2 if np.isscalar(image_size) else tuple(image_size)


def _read_records(path, splits, image_size, mode):
    """[(split, relpath, class, array)] of the images in ``splits`` (None: all)."""
    seen, files = set(), []
    for relpath, read in _iter_files(path):
        if not relpath.lower().endswith(IMAGE_EXTENSIONS):
            continue
        file_split, cls = _split_and_class(relpath)
        if cls is None:
            continue
        seen.add(file_split)
        if splits is None or file_split in splits:
            files.append((file_split, relpath, cls, read()))
    records = [(sp, rel, cls, _decode(data, mode, image_size, rel))
               for sp, rel, cls, data in files]
    missing = set(splits or ()) - seen
    if missing:
        raise ValueError(f"split(s) {sorted(missing)} not found in {path}; splits present: "
                         f"{sorted(s for s in seen if s)}")
    if not records:
        raise ValueError(f"no images in {path}: expected files <class>/<image> or "
                         f"<split>/<class>/<image> with extensions {IMAGE_EXTENSIONS}")
    return records


def _records_to_bunch(records, path, split, target_names=None):
    records = sorted(records, key=lambda r: (r[1], r[0]))
    shapes = {r[2].shape for r in records}
    if len(shapes) > 1:
        raise ValueError(f"images in {path} differ in size or channels ({sorted(shapes)[:4]}"
                         f"...); pass image_size=(H, W) and/or mode='RGB'")
    if target_names is None:
        target_names = np.array(sorted({r[1] for r in records}))
    index = {name: i for i, name in enumerate(target_names)}
    return Bunch(
        images=np.stack([r[2] for r in records]),
        target=np.array([index[r[1]] for r in records], dtype=np.int64),
        target_names=target_names,
        filenames=np.array([r[0] for r in records]),
        split=split,
        DESCR=f"image folder {path} (split={split!r})",
    )


def _torchvision_bunch(cls, name, root, split, download, url_hint):
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(root).expanduser()
    try:
        ds = cls(str(root), train=split == "train", download=download)
    except RuntimeError as exc:
        raise DataNotFoundError(
            f"{name} not found under {root} ({exc}). Pass download=True to fetch it with "
            f"torchvision (needs internet), put torchvision's {url_hint} files there, or load "
            f"an image-folder copy with load_image_folder(path, split={split!r})."
        ) from None
    images = np.asarray(ds.data, dtype=np.uint8)
    if images.ndim == 3:
        images = images[..., None]
    return Bunch(images=images, target=np.asarray(ds.targets, dtype=np.int64),
                 target_names=np.array(ds.classes), split=split,
                 DESCR=f"{name} {split} split via torchvision ({root})")


def load_cifar10(root, split="train", download=False):
    """CIFAR-10 via ``torchvision.datasets.CIFAR10``: images (n, 32, 32, 3) uint8.

    Raises FileNotFoundError saying how to get the data when it is missing.
    """
    from torchvision.datasets import CIFAR10

    return _torchvision_bunch(CIFAR10, "CIFAR-10", root, split, download,
                              "'cifar-10-batches-py'")


def load_mnist(root, split="train", download=False):
    """MNIST via ``torchvision.datasets.MNIST``: images (n, 28, 28, 1) uint8.

    Raises FileNotFoundError saying how to get the data when it is missing.
    """
    from torchvision.datasets import MNIST

    return _torchvision_bunch(MNIST, "MNIST", root, split, download, "'MNIST/raw'")


def subsample(X, y, n_per_class, random_state=None):
    """Stratified subsample: ``n_per_class`` samples of every class.

    For train-size sweeps (100 / 1,000 / 10,000 images). Samples keep their
    original order.

    Examples
    --------
    >>> d = load_digits_images()
    >>> Xs, ys = subsample(d.images, d.target, 10, random_state=0)
    >>> Xs.shape, np.bincount(ys).tolist() == [10] * 10
    ((100, 8, 8, 1), True)
    """
    y = np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"X and y have different lengths: {len(X)} and {len(y)}")
    if isinstance(n_per_class, bool) or not isinstance(n_per_class, (int, np.integer)) \
            or n_per_class < 1:
        raise ValueError(f"n_per_class must be a positive int, got {n_per_class!r}")
    rng = check_random_state(random_state)
    keep = []
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        if len(idx) < n_per_class:
            raise ValueError(f"class {cls!r} has only {len(idx)} samples, fewer than "
                             f"n_per_class={n_per_class}")
        keep.append(rng.choice(idx, n_per_class, replace=False))
    keep = np.sort(np.concatenate(keep))
    return X[keep], y[keep]


def load_train_test(dataset="digits", *, root=None, test_size=0.25, random_state=0):
    """(X_train, y_train, X_test, y_test, target_names) for a dataset name or path.

    ``dataset`` is ``"digits"`` (embedded), ``"cifar10"`` / ``"mnist"`` (the
    image-folder archives below ``SKLEARN_CNN_SHARED/data`` when present, else
    torchvision's files under ``root``), or the path of an image folder / tar.
    Data with ``train`` and ``test`` splits uses them; otherwise a stratified
    ``test_size`` split is made. The test images come in a random order seeded
    by ``random_state``: an image folder lists them class by class, so a prefix
    such as ``X_test[:2000]`` would otherwise hold only the first classes.
    (Training images of a train/test archive keep the archive's order;
    estimators shuffle their batches, and :func:`subsample` draws per class.)
    """
    shared = {"cifar10": "cifar10-jpg.tar.gz", "mnist": "mnist-test-png.tar.gz"}
    if dataset == "digits":
        d = load_digits_images()
        return _split(d, test_size, random_state)
    if dataset in shared:
        archive = shared_path("data", shared[dataset])
        if archive is not None and root is None:
            dataset = str(archive)
        else:
            if root is None:
                raise DataNotFoundError(
                    f"no local copy of {dataset}: set {SHARED_ENV} to a folder holding "
                    f"data/{shared[dataset]}, or pass a torchvision root folder")
            loader = load_cifar10 if dataset == "cifar10" else load_mnist
            tr, te = loader(root, "train"), loader(root, "test")
            return (tr.images, tr.target, *_shuffled(te.images, te.target, random_state),
                    tr.target_names)
    path = Path(dataset).expanduser()
    if not path.exists():
        raise DataNotFoundError(
            f"dataset {dataset!r} is neither 'digits', 'mnist', 'cifar10' nor an existing "
            "image folder / archive")
    records = _read_records(path, None, None, None)
    splits = {r[0] for r in records}
    if {"train", "test"} <= splits:
        names = np.array(sorted({r[2] for r in records if r[0] in ("train", "test")}))
        tr, te = (_records_to_bunch([r[1:] for r in records if r[0] == s], path, s, names)
                  for s in ("train", "test"))
        return (tr.images, tr.target, *_shuffled(te.images, te.target, random_state), names)
    if len(splits) > 1:
        raise ValueError(f"{path} holds splits {sorted(map(str, splits))}; expected 'train' "
                         "and 'test', or a single one")
    full = _records_to_bunch([r[1:] for r in records], path, None)
    return _split(full, test_size, random_state)


def _shuffled(X, y, random_state):
    order = check_random_state(random_state).permutation(len(y))
    return X[order], y[order]


def _split(bunch, test_size, random_state):
    X_tr, X_te, y_tr, y_te = train_test_split(bunch.images, bunch.target, test_size=test_size,
                                              stratify=bunch.target, random_state=random_state)
    return X_tr, y_tr, X_te, y_te, bunch.target_names
