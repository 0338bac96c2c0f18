"""Loading prepared TFDS data, downloading it only when the host answers quickly."""

import socket
import threading
import urllib.parse

import numpy as np
import tensorflow_datasets as tfds

from keras_dpnp.data.catalog import CatalogEntry
from keras_dpnp.data.info import DatasetNotFoundError

ArraySplit = tuple[np.ndarray, np.ndarray]

PROBE_TIMEOUT_S = 3.0
_NUMPY_CHUNK = 8192


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


def load_tfds_arrays(
    entry: CatalogEntry, data_dir: str | None, download: bool
) -> tuple[ArraySplit, ArraySplit, tuple[str, ...], str]:
    """Returns (train, test, class names, prepared-data folder) for `entry` from TFDS."""
    builder = tfds.builder(entry.name, data_dir=data_dir)
    if not builder.is_prepared():
        download_url = next(iter(entry.archives.values()))
        if not download:
            reason = "downloading is disabled"
            raise DatasetNotFoundError(_not_prepared_message(entry, builder, reason))
        if not is_reachable(download_url):
            host = urllib.parse.urlsplit(download_url).hostname
            reason = f"{host} is not reachable (no internet?)"
            raise DatasetNotFoundError(_not_prepared_message(entry, builder, reason))
        builder.download_and_prepare()
    train = _split_as_numpy(builder, "train")
    test = _split_as_numpy(builder, "test")
    class_names = tuple(builder.info.features["label"].names)
    return train, test, class_names, builder.data_dir


def _split_as_numpy(builder, split: str) -> ArraySplit:
    # Chunked rather than batch_size=-1: without split metadata (as under
    # tfds.testing.mock_data) TFDS would ask TF for a batch of sys.maxsize.
    dataset = builder.as_dataset(split=split, as_supervised=True).batch(_NUMPY_CHUNK)
    chunks = list(tfds.as_numpy(dataset))
    images = np.concatenate([chunk_images for chunk_images, _ in chunks])
    labels = np.concatenate([chunk_labels for _, chunk_labels in chunks])
    return images.astype(np.uint8, copy=False), labels.astype(np.int64, copy=False)


def _not_prepared_message(entry: CatalogEntry, builder, reason: str) -> str:
    variant = f"{entry.name}/{builder.version}/"
    archives = " and ".join(f"{name} ({url})" for name, url in entry.archives.items())
    return (
        f"The TFDS data for {entry.name} is not prepared in {builder.data_dir} and {reason}. "
        "Either:\n"
        f"  * pass --data_dir (data_dir=) pointing at a folder with prepared TFDS data, i.e. one "
        f"that contains {variant} (e.g. built where there is internet with "
        f"`tfds build {entry.name} --data_dir=<folder>`);\n"
        f"  * pass --manual_dir (manual_dir=) pointing at a folder holding the original "
        f"{archives};\n"
        "  * or run once with internet access so TFDS can download and prepare it."
    )
