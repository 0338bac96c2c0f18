"""Loading prepared TFDS data, downloading it only when the host answers quickly.

Serves the catalog's TFDS data sets and `tfds:<name>`: any TFDS image-classification set with
an Image feature and a ClassLabel label.
"""

import glob
import json
import os
import socket
import threading
import urllib.parse

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_dpnp.data.catalog import CatalogEntry
from keras_dpnp.data.image_files import fit_to_size
from keras_dpnp.data.info import DatasetNotFoundError, SourceSplits

ArraySplit = tuple[np.ndarray, np.ndarray]

PROBE_TIMEOUT_S = 3.0
_NUMPY_CHUNK = 8192
# Probed before downloading a `tfds:` set whose builder names no homepage.
_TFDS_HOST = "https://storage.googleapis.com/"


def is_reachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the host of `url` opens within `timeout` seconds."""
    parts = urllib.parse.urlsplit(url)
    address = (parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    connected = threading.Event()

    def connect():
        try:
            with socket.create_connection(address, timeout=timeout):
                connected.set()
        except OSError:
            pass

    # A thread bounds the DNS lookup too, which ignores the socket timeout.
    threading.Thread(target=connect, daemon=True).start()
    return connected.wait(timeout)


def _unparsable_info_file(name: str, data_dir: str | None) -> str | None:
    """The first dataset_info.json of `name` under `data_dir` that is not UTF-8 JSON, or None."""
    base = name.split(":")[0].split("/")[0]
    root = os.path.join(os.path.expanduser(data_dir or tfds.core.constants.DATA_DIR), base)
    for path in sorted(glob.glob(os.path.join(root, "**", "dataset_info.json"), recursive=True)):
        try:
            with open(path, encoding="utf-8") as f:
                json.load(f)
        except ValueError:
            return path
    return None


def _builder(name: str, data_dir: str | None):
    """`tfds.builder(name)`, or `DatasetNotFoundError` for an unknown name or a corrupt
    dataset_info.json of its prepared data (which TFDS reads on construction)."""
    try:
        return tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as error:
        raise DatasetNotFoundError(
            f"TFDS has no data set {name!r} (--dataset=tfds:{name}); check the name against "
            f"the TFDS catalog (tfds.list_builders())"
        ) from error
    except Exception as error:  # TFDS re-raises a bad file under varied types
        path = _unparsable_info_file(name, data_dir)
        if path is None:
            raise
        raise DatasetNotFoundError(
            f"{path} is corrupt ({type(error).__name__}), so the prepared TFDS data of {name} "
            f"cannot be read; delete its version folder and prepare it again"
        ) from error


def load_tfds_arrays(
    entry: CatalogEntry, data_dir: str | None, download: bool
) -> tuple[ArraySplit, ArraySplit, tuple[str, ...], str]:
    """Returns (train, test, class names, prepared-data folder) for `entry` from TFDS."""
    builder = _builder(entry.name, data_dir)
    prepare(
        builder,
        entry.name,
        download,
        next(iter(entry.archives.values())),
        entry.archives,
        entry.system_install,
    )
    train = _split_as_numpy(builder, "train")
    test = _split_as_numpy(builder, "test")
    class_names = tuple(builder.info.features["label"].names)
    return train, test, class_names, builder.data_dir


def prepare(
    builder,
    name: str,
    download: bool,
    probe_url: str,
    archives: dict[str, str],
    system_install: str = "",
):
    """Downloads and prepares `builder`'s data unless it is prepared already.

    `system_install`, when given, is the command of an operating-system package that provides
    the original files; the error message offers it.

    Raises `DatasetNotFoundError` at once when downloading is disabled, or within
    `PROBE_TIMEOUT_S` when the host of `probe_url` does not answer.
    """
    if builder.is_prepared():
        return
    if not download:
        reason = "downloading is disabled"
        raise DatasetNotFoundError(
            _not_prepared_message(name, builder, reason, archives, system_install)
        )
    if not is_reachable(probe_url):
        host = urllib.parse.urlsplit(probe_url).hostname
        reason = f"{host} is not reachable (no internet?)"
        raise DatasetNotFoundError(
            _not_prepared_message(name, builder, reason, archives, system_install)
        )
    builder.download_and_prepare()


def load_tfds_source(
    name: str,
    *,
    data_dir: str | None,
    download: bool,
    split_train: str = "train",
    split_test: str = "test",
    image_size: tuple[int, int] | None = None,
) -> SourceSplits:
    """Reads `tfds:<name>`, any TFDS set with an Image feature and a ClassLabel label.

    Args:
        name: the TFDS name, optionally with config and version (`name/config:1.0.0`).
        data_dir: folder of prepared TFDS data; None: TFDS's default.
        download: whether to download and prepare missing data (when the host answers).
        split_train, split_test: TFDS split expressions, e.g. `train[:90%]`.
        image_size: (height, width) to resize every image to; needed for varying sizes.

    Returns:
        `SourceSplits` with uint8 image arrays, the class names and image shape of the builder.
    """
    builder = _builder(name, data_dir)
    prepare(builder, name, download, builder.info.homepage or _TFDS_HOST, {})
    features = builder.info.features
    keys = _image_and_label_keys(name, features, builder.info.supervised_keys)
    image_shape = _image_shape(name, keys[0], features[keys[0]], image_size)
    for flag, split in (("--tfds_split_train", split_train), ("--tfds_split_test", split_test)):
        _check_split(name, tuple(builder.info.splits), flag, split)
    size = image_shape[:2] if image_size is not None else None
    train = _split_as_numpy(builder, split_train, keys, size)
    test = _split_as_numpy(builder, split_test, keys, size)
    resized = f", resized to {size[0]}×{size[1]}" if size else ""
    source = (
        f"TFDS {name} (data_dir={builder.data_dir}; train split {split_train!r}, test "
        f"split {split_test!r}{resized})"
    )
    return SourceSplits(train, test, tuple(features[keys[1]].names), image_shape, source)


def _image_and_label_keys(name: str, features, supervised_keys) -> tuple[str, str]:
    """The (image, label) feature names: the supervised keys, else the only Image and the only
    ClassLabel feature; raises ValueError when the features do not fit classification."""
    if (
        isinstance(supervised_keys, tuple)
        and len(supervised_keys) == 2
        and all(isinstance(key, str) for key in supervised_keys)
    ):
        image_key, label_key = supervised_keys
    else:
        image_key = _only_feature(features, tfds.features.Image)
        label_key = _only_feature(features, tfds.features.ClassLabel)
    described = ", ".join(f"{key}: {type(feature).__name__}" for key, feature in features.items())
    if image_key is None or not isinstance(features[image_key], tfds.features.Image):
        raise ValueError(
            f"tfds:{name} has no single image feature to classify (features: "
            f"{described}); only image-classification sets, with an Image and a "
            f"ClassLabel feature, work"
        )
    if label_key is None or not isinstance(features[label_key], tfds.features.ClassLabel):
        raise ValueError(
            f"tfds:{name} has no ClassLabel label (features: {described}); only "
            f"image-classification sets with integer class labels work"
        )
    return image_key, label_key


def _only_feature(features, kind) -> str | None:
    names = [key for key, feature in features.items() if isinstance(feature, kind)]
    return names[0] if len(names) == 1 else None


def _image_shape(name: str, key: str, feature, image_size) -> tuple[int, int, int]:
    """(H, W, C) of the images read: the feature's shape, or `image_size` with its channels."""
    height, width, channels = feature.shape
    if tf.as_dtype(feature.dtype) != tf.uint8 or channels not in (1, 3):
        raise ValueError(
            f"tfds:{name}'s image feature {key!r} is {feature.shape} "
            f"{tf.as_dtype(feature.dtype).name}; only uint8 grey or RGB images work"
        )
    if image_size is not None:
        return (*image_size, channels)
    if height is None or width is None:
        raise ValueError(
            f"tfds:{name} has images of varying size ({key!r} is "
            f"{feature.shape}); pass --image_size=SIDE or --image_size=HEIGHT,WIDTH "
            f"(e.g. --image_size=64) to resize them"
        )
    return (height, width, channels)


def _check_split(name: str, known: tuple[str, ...], flag: str, split: str):
    """Raises ValueError when `split` names a split the prepared data does not have."""
    # Without split metadata (data not prepared, as under mock data) TFDS itself decides.
    if not known:
        return
    for part in split.split("+"):
        base = part.split("[")[0].strip()
        if base in known:
            continue
        if flag == "--tfds_split_test" and "validation" in known:
            example = f"{flag}=validation"
        else:
            example = (
                f"a slice such as --tfds_split_train='{known[0]}[:90%]' "
                f"--tfds_split_test='{known[0]}[90%:]'"
            )
        raise ValueError(
            f"tfds:{name} has no split {base!r} ({flag}={split}; its splits: "
            f"{', '.join(known)}); pass another, e.g. {example}"
        )


def _split_as_numpy(builder, split: str, keys=("image", "label"), size=None) -> ArraySplit:
    """(uint8 images, int64 labels) of a split, its images resized to `size` when given."""
    image_key, label_key = keys
    dataset = builder.as_dataset(split=split).map(
        lambda example: (example[image_key], example[label_key])
    )
    if size is not None:
        dataset = dataset.map(
            lambda image, label: (fit_to_size(image, size), label),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    # Chunked rather than batch_size=-1: without split metadata (as under
    # tfds.testing.mock_data) TFDS would ask TF for a batch of sys.maxsize.
    dataset = dataset.batch(_NUMPY_CHUNK)
    chunks = list(tfds.as_numpy(dataset))
    images = np.concatenate([chunk_images for chunk_images, _ in chunks])
    labels = np.concatenate([chunk_labels for _, chunk_labels in chunks])
    return images.astype(np.uint8, copy=False), labels.astype(np.int64, copy=False)


def _not_prepared_message(
    name: str, builder, reason: str, archives: dict[str, str], system_install: str
) -> str:
    variant = f"{builder.name}/{builder.version}/"
    files = " and ".join(f"{file} ({url})" for file, url in archives.items())
    manual = (
        (
            f"  * pass --manual_dir (manual_dir=) pointing at a folder holding the original "
            f"{files};\n"
        )
        if archives
        else ""
    )
    if system_install:
        manual += f"  * `{system_install}` (its files are then found with no data flag);\n"
    return (
        f"The TFDS data for {name} is not prepared in {builder.data_dir} and {reason}. "
        "Either:\n"
        f"  * pass --data_dir (data_dir=) pointing at a folder with prepared TFDS data, i.e. one "
        f"that contains {variant} (e.g. built where there is internet with "
        f"`tfds build {name} --data_dir=<folder>`);\n"
        f"{manual}"
        "  * or run once with internet access so TFDS can download and prepare it."
    )
