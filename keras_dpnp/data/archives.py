"""Readers for the original CIFAR binary archives and SVHN .mat files (no pickle)."""

import math
import os
import posixpath
import tarfile
import zlib

import numpy as np
import scipy.io

from keras_dpnp.data.catalog import catalog_entry
from keras_dpnp.data.info import DatasetNotFoundError

ArraySplit = tuple[np.ndarray, np.ndarray]

_CIFAR_PIXELS = 32 * 32 * 3
_CIFAR10_TRAIN_FILES = tuple(f"data_batch_{index}.bin" for index in range(1, 6))
_CIFAR10_TEST_FILE = "test_batch.bin"
_CIFAR100_NAMES_FILE = "fine_label_names.txt"
_SVHN_IMAGE_SHAPE = (32, 32, 3)
# The largest each archive member may be: the official files' sizes (10,000 or 50,000 records
# of label bytes and pixels; the 100 names take 852 bytes). A larger member is refused before
# it is read, so a small archive that expands to gigabytes never reaches memory.
_CIFAR10_MEMBER_BYTES = {
    name: 10_000 * (1 + _CIFAR_PIXELS) for name in (*_CIFAR10_TRAIN_FILES, _CIFAR10_TEST_FILE)
}
_CIFAR100_MEMBER_BYTES = {
    "train.bin": 50_000 * (2 + _CIFAR_PIXELS),
    "test.bin": 10_000 * (2 + _CIFAR_PIXELS),
    _CIFAR100_NAMES_FILE: 64 * 1024,
}
# The images in each official SVHN file; X is checked against it before it is read.
SVHN_IMAGES = {"train_32x32.mat": 73_257, "test_32x32.mat": 26_032}


def read_original_archives(
    name: str, manual_dir: str
) -> tuple[ArraySplit, ArraySplit, tuple[str, ...] | None]:
    """Reads `name` from its original files in `manual_dir`.

    Returns (train, test, class names); the class names are None where the
    files do not carry them.
    """
    entry = catalog_entry(name)
    sources = {}
    for filename, url in entry.archives.items():
        path = os.path.join(manual_dir, filename)
        if not os.path.isfile(path):
            raise DatasetNotFoundError(
                f"{filename} not found in the manual_dir folder {os.path.abspath(manual_dir)}. "
                f"Download it from {url} into that folder (do not extract it)."
            )
        sources[filename] = (path, url)
    if name == "cifar10":
        return (*_read_cifar10(*sources["cifar-10-binary.tar.gz"]), None)
    if name == "cifar100":
        return _read_cifar100(*sources["cifar-100-binary.tar.gz"])
    if name == "svhn_cropped":
        train = _read_svhn_mat(*sources["train_32x32.mat"])
        return train, _read_svhn_mat(*sources["test_32x32.mat"]), None
    raise ValueError(f"Dataset {name!r} has no original archive.")


def _corrupt(path: str, url: str, detail: str) -> DatasetNotFoundError:
    return DatasetNotFoundError(
        f"{path} is corrupt or truncated ({detail}). "
        f"Delete it and re-download it from its official URL {url}."
    )


def _read_tar_members(path: str, url: str, limits: dict[str, int]) -> dict[str, bytes]:
    """Returns the bytes of the members whose base names are keys of `limits`, refusing a
    member larger than its limit (in bytes) before reading it."""
    contents = {}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                basename = posixpath.basename(member.name)
                if not (member.isfile() and basename in limits):
                    continue
                if member.size > limits[basename]:
                    detail = (
                        f"{member.name} claims {member.size:,} bytes, more than the "
                        f"{limits[basename]:,} of the official file"
                    )
                    raise _corrupt(path, url, detail)
                contents[basename] = archive.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        raise _corrupt(path, url, f"{type(error).__name__}: {error}") from error
    missing = limits.keys() - contents.keys()
    if missing:
        raise _corrupt(path, url, f"missing {', '.join(sorted(missing))}")
    return contents


def _decode_cifar_records(
    data: bytes, label_bytes: int, num_classes: int, member: str, path: str, url: str
) -> ArraySplit:
    """Decodes records of label bytes then 3072 CHW pixels; the last label byte is the label."""
    record_size = label_bytes + _CIFAR_PIXELS
    if not data or len(data) % record_size:
        detail = f"{member} holds {len(data)} bytes, not whole {record_size}-byte records"
        raise _corrupt(path, url, detail)
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, record_size)
    labels = records[:, label_bytes - 1].astype(np.int64)
    if labels.max() >= num_classes:
        raise _corrupt(path, url, f"{member} has label {labels.max()} outside 0..{num_classes - 1}")
    images = records[:, label_bytes:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _read_cifar10(path: str, url: str) -> tuple[ArraySplit, ArraySplit]:
    contents = _read_tar_members(path, url, _CIFAR10_MEMBER_BYTES)
    batches = [
        _decode_cifar_records(contents[member], 1, 10, member, path, url)
        for member in _CIFAR10_TRAIN_FILES
    ]
    batch_sizes = {len(labels) for _, labels in batches}
    if len(batch_sizes) != 1:
        raise _corrupt(path, url, f"train batches differ in record count: {sorted(batch_sizes)}")
    train = (
        np.concatenate([images for images, _ in batches]),
        np.concatenate([labels for _, labels in batches]),
    )
    test = _decode_cifar_records(contents[_CIFAR10_TEST_FILE], 1, 10, _CIFAR10_TEST_FILE, path, url)
    return train, test


def _read_cifar100(path: str, url: str) -> tuple[ArraySplit, ArraySplit, tuple[str, ...]]:
    contents = _read_tar_members(path, url, _CIFAR100_MEMBER_BYTES)
    lines = contents[_CIFAR100_NAMES_FILE].decode().splitlines()
    class_names = tuple(line.strip() for line in lines if line.strip())
    if len(class_names) != 100:
        detail = f"{_CIFAR100_NAMES_FILE} lists {len(class_names)} names instead of 100"
        raise _corrupt(path, url, detail)
    train = _decode_cifar_records(contents["train.bin"], 2, 100, "train.bin", path, url)
    test = _decode_cifar_records(contents["test.bin"], 2, 100, "test.bin", path, url)
    return train, test, class_names


def _check_svhn_size(path: str, url: str) -> None:
    """Refuses a file whose X (read from its header) holds more values than the official one."""
    limit = SVHN_IMAGES[os.path.basename(path)] * _CIFAR_PIXELS
    shapes = {name: shape for name, shape, _ in scipy.io.whosmat(path)}
    values = math.prod(shapes.get("X", ()))
    if values > limit:
        detail = f"X claims shape {shapes['X']}, over the {limit:,} values of the official file"
        raise _corrupt(path, url, detail)


def _read_svhn_mat(path: str, url: str) -> ArraySplit:
    """Reads an SVHN cropped-digits MATLAB v5 file; label 10 stands for digit 0."""
    # scipy's MAT parser reports damaged files through many exception types.
    try:
        _check_svhn_size(path, url)
        contents = scipy.io.loadmat(path, variable_names=("X", "y"))
    except DatasetNotFoundError:
        raise
    except Exception as error:
        raise _corrupt(path, url, f"{type(error).__name__}: {error}") from error
    images, labels = contents.get("X"), contents.get("y")
    if images is None or labels is None:
        raise _corrupt(path, url, "the variables X and y are missing")
    if images.ndim != 4 or images.shape[:3] != _SVHN_IMAGE_SHAPE or images.dtype != np.uint8:
        detail = f"X has shape {images.shape} and dtype {images.dtype}, expected uint8 32x32x3xN"
        raise _corrupt(path, url, detail)
    labels = labels.reshape(-1).astype(np.int64)
    if len(labels) != images.shape[3]:
        raise _corrupt(path, url, f"{images.shape[3]} images but {len(labels)} labels")
    if not labels.size or labels.min() < 1 or labels.max() > 10:
        raise _corrupt(path, url, "no labels, or labels outside 1..10")
    return np.ascontiguousarray(images.transpose(3, 0, 1, 2)), labels % 10
