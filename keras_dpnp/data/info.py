"""Containers describing a loaded dataset."""

import dataclasses

import numpy as np

AUGMENTATIONS = ("none", "crop", "crop_flip")


class DatasetNotFoundError(RuntimeError):
    """The dataset is not on disk (or is corrupt) and cannot be fetched."""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a dataset plus statistics of its train images."""

    name: str
    num_classes: int
    image_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]
    augment: str
    source: str


# eq=False: the fields hold numpy arrays, whose `==` is elementwise.
@dataclasses.dataclass(frozen=True, eq=False)
class Splits:
    """uint8 images [N, H, W, C] and int64 labels [N] for each split.

    A `folder:` split too large for memory holds `ImageFiles` in place of the image array.
    """

    train: tuple[np.ndarray, np.ndarray]
    validation: tuple[np.ndarray, np.ndarray] | None
    test: tuple[np.ndarray, np.ndarray]
    info: DatasetInfo


# eq=False: the fields hold numpy arrays, whose `==` is elementwise.
@dataclasses.dataclass(frozen=True, eq=False)
class SourceSplits:
    """What a `tfds:` or `folder:` source read: its train and test (images, labels), where the
    images are a uint8 array [N, H, W, C] or, streamed from disk, `ImageFiles`."""

    train: tuple
    test: tuple
    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int]
    source: str
