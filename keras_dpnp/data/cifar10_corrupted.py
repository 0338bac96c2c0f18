"""CIFAR-10-C (Hendrycks & Dietterich 2019) from prepared TFDS `cifar10_corrupted` data.

The 15 benchmark corruptions carry CIFAR-10-C's own file names here; TFDS names two of them
differently (`frosted_glass_blur`, `elastic`). Every TFDS config holds the 10,000 CIFAR-10 test
images in one order shared by all configs, so an index picks the same clean image everywhere.
The archive is 2.9 GB, so it is never downloaded from here: it must be prepared beforehand.
"""

import numpy as np
import tensorflow_datasets as tfds

from keras_dpnp.data.info import DatasetNotFoundError

CORRUPTIONS = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)
SEVERITIES = (1, 2, 3, 4, 5)
TFDS_NAME = "cifar10_corrupted"
_TFDS_CORRUPTION_NAMES = {"glass_blur": "frosted_glass_blur", "elastic_transform": "elastic"}
_CHUNK = 8192


def tfds_config(corruption, severity):
    """The TFDS builder name of one corruption at one severity, e.g. `cifar10_corrupted/fog_3`."""
    if corruption not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {corruption!r}; choose from {', '.join(CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
    return f"{TFDS_NAME}/{_TFDS_CORRUPTION_NAMES.get(corruption, corruption)}_{severity}"


def missing_configs(data_dir, corruptions=CORRUPTIONS, severities=SEVERITIES):
    """The TFDS configs among `corruptions` × `severities` not prepared in `data_dir`."""
    return [
        config
        for config in (tfds_config(c, s) for c in corruptions for s in severities)
        if not tfds.builder(config, data_dir=data_dir).is_prepared()
    ]


def require_prepared(data_dir, corruptions=CORRUPTIONS, severities=SEVERITIES):
    """Raises `DatasetNotFoundError`, saying how to get the data, unless every config is there."""
    missing = missing_configs(data_dir, corruptions, severities)
    if missing:
        shown = ", ".join(missing[:3]) + (
            f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        )
        folder = data_dir or "the default TFDS folder (~/tensorflow_datasets)"
        raise DatasetNotFoundError(
            f"CIFAR-10-C is not prepared in {folder} ({shown} missing). Prepare it where there "
            f"is internet with `tfds build {TFDS_NAME} --data_dir=<folder>` (a 2.9 GB download) "
            f"and pass --data_dir=<folder>, or use --corruption_source=generated to corrupt the "
            f"test set here."
        )


def load_corrupted(corruption, severity, data_dir):
    """uint8 images [N, 32, 32, 3] and int64 labels of one config.

    The data must be prepared (see `require_prepared`); nothing is downloaded.
    """
    builder = tfds.builder(tfds_config(corruption, severity), data_dir=data_dir)
    dataset = builder.as_dataset(split="test", as_supervised=True, shuffle_files=False)
    chunks = list(tfds.as_numpy(dataset.batch(_CHUNK)))
    images = np.concatenate([chunk for chunk, _ in chunks]).astype(np.uint8, copy=False)
    labels = np.concatenate([chunk for _, chunk in chunks]).astype(np.int64, copy=False)
    return images, labels
