"""Data sets named by a prefix: `tfds:<name>` (any TFDS image-classification set) and
`folder:<path>` (a folder of images, one subfolder per class)."""

import numpy as np

from keras_dpnp.data.catalog import DATASETS
from keras_dpnp.data.folder import load_folder
from keras_dpnp.data.image_files import ImageFiles, streamed_mean_std
from keras_dpnp.data.info import DatasetInfo, Splits
from keras_dpnp.data.splitting import split_validation
from keras_dpnp.data.stats import channel_mean_std
from keras_dpnp.data.tfds_source import load_tfds_source

TFDS_PREFIX = "tfds:"
FOLDER_PREFIX = "folder:"
DATASET_FORMS = (*DATASETS, f"{TFDS_PREFIX}<name>", f"{FOLDER_PREFIX}<path>")


def is_prefixed(name: str) -> bool:
    """Whether `name` is a `tfds:` or `folder:` data set."""
    return name.startswith((TFDS_PREFIX, FOLDER_PREFIX))


def check_dataset_name(name: str) -> str:
    """Returns `name` if it is a catalog name, `tfds:<name>` or `folder:<path>`, else raises
    ValueError listing the forms."""
    if name in DATASETS or (is_prefixed(name) and name.partition(":")[2].strip()):
        return name
    raise ValueError(f"--dataset={name!r} is not a data set; use one of {', '.join(DATASET_FORMS)}")


def parse_image_size(value) -> tuple[int, int] | None:
    """(height, width) from 32, (28, 32), "32" or "28,32"; None or "" gives None."""
    if value is None or value == "":
        return None
    text = value if isinstance(value, str) else ",".join(str(side) for side in np.atleast_1d(value))
    parts = [part.strip() for part in text.split(",")]
    if len(parts) in (1, 2) and all(part.isdigit() and int(part) > 0 for part in parts):
        return int(parts[0]), int(parts[-1])
    raise ValueError(
        f"--image_size={value!r} must be SIDE or HEIGHT,WIDTH in pixels (e.g. 32 or 28,32)"
    )


def load_prefixed(
    name: str,
    *,
    data_dir,
    download,
    validation_fraction,
    seed,
    tfds_split_train,
    tfds_split_test,
    image_size,
    folder_test_fraction,
    max_in_memory_mb,
) -> Splits:
    """`load_dataset` for a `tfds:` or `folder:` name (the arguments are `load_dataset`'s)."""
    size = parse_image_size(image_size)
    body = name.partition(":")[2]
    if name.startswith(TFDS_PREFIX):
        read = load_tfds_source(
            body,
            data_dir=data_dir,
            download=download,
            split_train=tfds_split_train,
            split_test=tfds_split_test,
            image_size=size,
        )
    else:
        read = load_folder(
            body,
            image_size=size,
            test_fraction=folder_test_fraction,
            max_in_memory_mb=max_in_memory_mb,
        )
    train, validation = split_validation(*read.train, validation_fraction, seed)
    images = train[0]
    mean, std = (
        streamed_mean_std(images) if isinstance(images, ImageFiles) else channel_mean_std(images)
    )
    info = DatasetInfo(
        name=name,
        num_classes=len(read.class_names),
        image_shape=read.image_shape,
        mean=mean,
        std=std,
        class_names=read.class_names,
        augment="none",
        source=read.source,
    )
    return Splits(train=train, validation=validation, test=read.test, info=info)
