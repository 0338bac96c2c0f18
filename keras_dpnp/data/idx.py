"""Reader for the IDX files of MNIST and Fashion-MNIST (gzip or plain, no pickle).

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions),
one big-endian uint32 per dimension, then the values. Both data sets store uint8 values:
images [N, 28, 28] (magic 0x00000803) and labels [N] (magic 0x00000801).
"""

import gzip
import os
import zlib

import numpy as np

from keras_dpnp.data.info import DatasetNotFoundError

ArraySplit = tuple[np.ndarray, np.ndarray]

IMAGE_MAGIC = 0x00000803
LABEL_MAGIC = 0x00000801
IMAGE_SIDE = 28
NUM_CLASSES = 10
# The original files: (images, labels) per split, each found with or without ".gz".
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# Far above the 60,000 and 10,000 of the real files: a header claiming more is not trusted.
MAX_EXAMPLES = 1_000_000


class IdxFormatError(DatasetNotFoundError):
    """An IDX file is damaged or is not the file it is named as."""


def find_split_files(folder: str) -> dict[str, tuple[str, str]] | None:
    """The paths of the four original files in `folder`, or None when any is missing."""
    found = {}
    for split, names in SPLIT_FILES.items():
        paths = tuple(_existing(folder, name) for name in names)
        if None in paths:
            return None
        found[split] = paths
    return found


def missing_files(folder: str) -> list[str]:
    """The base names (without ".gz") of the original files that `folder` lacks."""
    names = [name for pair in SPLIT_FILES.values() for name in pair]
    return [name for name in names if _existing(folder, name) is None]


def read_idx_splits(folder: str) -> tuple[ArraySplit, ArraySplit]:
    """Reads (train, test) as uint8 images [N, 28, 28, 1] and int64 labels [N] from `folder`."""
    paths = find_split_files(folder)
    if paths is None:
        raise DatasetNotFoundError(
            f"{os.path.abspath(folder)} lacks {', '.join(missing_files(folder))} "
            "(each as .gz or uncompressed)"
        )
    return read_idx_pair(*paths["train"]), read_idx_pair(*paths["test"])


def read_idx_pair(images_path: str, labels_path: str) -> ArraySplit:
    """One split: the images file and the labels file, checked against each other."""
    images = read_idx(images_path, IMAGE_MAGIC, (IMAGE_SIDE, IMAGE_SIDE))
    labels = read_idx(labels_path, LABEL_MAGIC, ()).astype(np.int64)
    if len(images) != len(labels):
        raise IdxFormatError(
            f"{images_path} holds {len(images)} images but {labels_path} "
            f"holds {len(labels)} labels; re-download both files"
        )
    if labels.size and labels.max() >= NUM_CLASSES:
        raise IdxFormatError(
            f"{labels_path} has label {labels.max()} outside 0..{NUM_CLASSES - 1}; re-download it"
        )
    return images[..., np.newaxis], labels


def read_idx(path: str, magic: int, item_shape: tuple[int, ...]) -> np.ndarray:
    """The uint8 array in the IDX file `path`, whose magic and per-item shape must match.

    Raises:
        IdxFormatError: naming `path`, for a wrong magic number or shape, a count beyond
            `MAX_EXAMPLES`, a truncated file or trailing bytes.
    """
    try:
        with _open(path) as stream:
            count = _read_header(stream, path, magic, item_shape)
            expected = count * int(np.prod(item_shape, dtype=np.int64))
            payload = stream.read(expected)
            trailing = stream.read(1)
    except (OSError, EOFError, zlib.error) as error:
        raise IdxFormatError(
            f"{path} cannot be read ({type(error).__name__}: {error}); re-download it"
        ) from error
    if len(payload) != expected:
        raise IdxFormatError(
            f"{path} is truncated: {len(payload)} of {expected} data bytes; re-download it"
        )
    if trailing:
        raise IdxFormatError(f"{path} has bytes after its {count} items; re-download it")
    return np.frombuffer(payload, dtype=np.uint8).reshape((count,) + item_shape)


def _read_header(stream, path: str, magic: int, item_shape: tuple[int, ...]) -> int:
    """Checks the magic number and dimensions; returns the item count."""
    head = stream.read(4)
    found = int.from_bytes(head, "big") if len(head) == 4 else None
    if found != magic:
        shown = "nothing" if found is None else f"0x{found:08x}"
        raise IdxFormatError(
            f"{path} is not an IDX file of this kind: magic number {shown}, "
            f"expected 0x{magic:08x}; check the file name and re-download it"
        )
    dims_bytes = stream.read(4 * (1 + len(item_shape)))
    if len(dims_bytes) != 4 * (1 + len(item_shape)):
        raise IdxFormatError(f"{path} is truncated inside its header; re-download it")
    dims = np.frombuffer(dims_bytes, dtype=">u4").astype(np.int64)
    count, shape = int(dims[0]), tuple(int(d) for d in dims[1:])
    if shape != item_shape:
        raise IdxFormatError(f"{path} holds items of shape {shape}, expected {item_shape}")
    if count > MAX_EXAMPLES:
        raise IdxFormatError(
            f"{path} claims {count} items, more than the {MAX_EXAMPLES} "
            "this reader accepts; the file is damaged"
        )
    return count


def _open(path: str):
    with open(path, "rb") as probe:
        compressed = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if compressed else open(path, "rb")


def _existing(folder: str, name: str) -> str | None:
    for candidate in (name + ".gz", name):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    return None
