import tarfile

import numpy as np
import pytest
from PIL import Image

from sklearn_cnn.datasets import (load_cifar10, load_image_folder,
                                  load_image_folder_splits, load_mnist, load_train_test,
                                  subsample)

from .conftest import shared_file


def _make_folder(root, splits=("train", "test"), classes=("cat", "dog"), n=3, size=(6, 5)):
    rng = np.random.RandomState(0)
    for split in splits:
        for cls in classes:
            d = root / split / cls if split else root / cls
            d.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.randint(0, 255, size + (3,), dtype=np.uint8)).save(
                    d / f"{i}.png")
    return root


def test_digits_images(digits):
    assert digits.images.shape == (1797, 8, 8, 1) and digits.images.dtype == np.uint8
    assert digits.images.max() == 255 and len(digits.target_names) == 10


def test_image_folder_directory_and_tar_agree(tmp_path):
    root = _make_folder(tmp_path / "data")
    a = load_image_folder(root, split="train")
    assert a.images.shape == (6, 6, 5, 3) and list(a.target_names) == ["cat", "dog"]
    assert np.bincount(a.target).tolist() == [3, 3]
    archive = tmp_path / "data.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="data")
    b = load_image_folder(archive, split="train")
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.target, b.target)
    both = load_image_folder_splits(archive)
    assert both["test"].images.shape == (6, 6, 5, 3)


def test_image_folder_options_and_errors(tmp_path):
    root = _make_folder(tmp_path / "data")
    with pytest.raises(ValueError, match="several splits"):
        load_image_folder(root)
    with pytest.raises(ValueError, match=r"split\(s\) \['valid'\] not found"):
        load_image_folder(root, split="valid")
    gray = load_image_folder(root, split="test", mode="L", image_size=4)
    assert gray.images.shape == (6, 4, 4, 1)
    with pytest.raises(FileNotFoundError):
        load_image_folder(tmp_path / "nope")
    with pytest.raises(ValueError, match="mode must be"):
        load_image_folder(root, split="test", mode="CMYK")


def test_mixed_sizes_need_image_size(tmp_path):
    root = _make_folder(tmp_path / "a", splits=(None,), classes=("x",))
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(root / "x" / "big.png")
    with pytest.raises(ValueError, match="pass image_size"):
        load_image_folder(root)
    assert load_image_folder(root, image_size=(6, 5)).images.shape == (4, 6, 5, 3)


def test_load_train_test_on_a_folder_without_splits(tmp_path):
    root = _make_folder(tmp_path / "a", splits=(None,), n=4)
    X_tr, y_tr, X_te, y_te, names = load_train_test(str(root), test_size=0.5)
    assert len(X_tr) == len(X_te) == 4 and list(names) == ["cat", "dog"]


def test_load_train_test_shuffles_the_test_split_of_a_folder(tmp_path):
    # folders list images class by class: without the seeded shuffle, X_test[:n] of
    # CIFAR-10 held one or two classes (a t-SNE of 2,000 test images showed two)
    root = _make_folder(tmp_path / "d", classes=("a", "b", "c", "d"), n=8)
    folder = load_image_folder(root, split="test")
    X_tr, y_tr, X_te, y_te, names = load_train_test(str(root), random_state=0)
    assert list(names) == ["a", "b", "c", "d"]
    assert np.bincount(y_te).tolist() == [8] * 4
    assert len(np.unique(y_te[:8])) > 1                 # a prefix mixes classes
    # every image keeps its own label
    key = {img.tobytes(): t for img, t in zip(folder.images, folder.target)}
    assert [key[img.tobytes()] for img in X_te] == y_te.tolist()
    again = load_train_test(str(root), random_state=0)
    np.testing.assert_array_equal(again[3], y_te)       # seeded
    assert load_train_test(str(root), random_state=1)[3].tolist() != y_te.tolist()
    np.testing.assert_array_equal(y_tr, np.sort(y_tr))  # the training split keeps its order


def test_torchvision_loaders_say_how_to_get_missing_data(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_cifar10(tmp_path)
    with pytest.raises(FileNotFoundError, match="load_image_folder"):
        load_mnist(tmp_path, split="test")


def test_subsample_is_stratified_and_seeded(digits):
    X, y = subsample(digits.images, digits.target, 5, random_state=0)
    assert np.bincount(y).tolist() == [5] * 10
    X2, _ = subsample(digits.images, digits.target, 5, random_state=0)
    np.testing.assert_array_equal(X, X2)
    with pytest.raises(ValueError, match="fewer than n_per_class=1000"):
        subsample(digits.images, digits.target, 1000)


@pytest.mark.shared
def test_shared_cifar10_loads_in_one_pass():
    path = shared_file("data", "cifar10-jpg.tar.gz")
    splits = load_image_folder_splits(path)
    assert splits["train"].images.shape == (50000, 32, 32, 3)
    assert splits["test"].images.shape == (10000, 32, 32, 3)
    assert np.bincount(splits["test"].target).tolist() == [1000] * 10
    assert splits["train"].target_names[0] == "airplane"


@pytest.mark.shared
def test_shared_mnist_test_images():
    path = shared_file("data", "mnist-test-png.tar.gz")
    b = load_image_folder(path)
    assert b.images.shape == (10000, 28, 28, 1) and list(b.target_names) == list("0123456789")


@pytest.mark.parametrize("damage", ["truncated", "random bytes", "empty"])
def test_corrupt_archive_error_names_the_file(tmp_path, damage):
    archive = tmp_path / "data.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(_make_folder(tmp_path / "data", n=20), arcname="data")
    data = archive.read_bytes()
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes({"truncated": data[:len(data) // 2],
                     "random bytes": np.random.RandomState(0).bytes(5000),
                     "empty": b""}[damage])
    message = rf"cannot read the archive '{bad}': .*corrupt or truncated"
    with pytest.raises(ValueError, match=message):
        load_image_folder(bad, split="train")
    with pytest.raises(ValueError, match=message):
        load_image_folder_splits(bad)
    with pytest.raises(ValueError, match=message):
        load_train_test(str(bad))


def test_archive_truncated_at_any_point_is_an_error_not_a_smaller_data_set(tmp_path):
    # tarfile takes a stream that ends on a member boundary for the end of the archive;
    # before gzip checked the end of the stream, 12 of 300 cut points loaded silently.
    archive = tmp_path / "data.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(_make_folder(tmp_path / "data", n=20), arcname="data")
    data = archive.read_bytes()
    bad = tmp_path / "bad.tar.gz"
    for cut in range(100, len(data) - 8, max(1, len(data) // 300)):
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="corrupt or truncated"):
            load_image_folder_splits(bad)
    assert load_image_folder_splits(archive)["train"].images.shape[0] == 40
