"""The IDX reader (MNIST, Fashion-MNIST) on crafted files and, when installed, the real ones."""

import gzip
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_dpnp.data import DatasetNotFoundError, catalog, load_dataset
from keras_dpnp.data.idx import IMAGE_MAGIC, LABEL_MAGIC, IdxFormatError, read_idx_splits

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEBIAN_DIR = catalog.CATALOG["fashion_mnist"].system_dirs[0]
needs_debian_files = pytest.mark.skipif(
    not os.path.isdir(DEBIAN_DIR),
    reason=f"Debian's dataset-fashion-mnist is not installed ({DEBIAN_DIR} is missing; "
    "apt-get install dataset-fashion-mnist)",
)


def _idx_bytes(magic, array):
    dims = np.asarray(array.shape, dtype=">u4").tobytes()
    return magic.to_bytes(4, "big") + dims + array.astype(np.uint8).tobytes()


def _write(path, data, compress):
    if compress:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def _write_split(folder, prefix, images, labels, compress=True):
    image_path = _write(
        folder / f"{prefix}-images-idx3-ubyte", _idx_bytes(IMAGE_MAGIC, images), compress
    )
    label_path = _write(
        folder / f"{prefix}-labels-idx1-ubyte", _idx_bytes(LABEL_MAGIC, labels), compress
    )
    return image_path, label_path


def _write_dataset(folder, rng, train_count=12, test_count=5, compress=True):
    data = {}
    for prefix, count in (("train", train_count), ("t10k", test_count)):
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = np.arange(count) % 10
        data[prefix] = (images, labels, _write_split(folder, prefix, images, labels, compress))
    return data


@pytest.mark.parametrize("compress", [True, False])
def test_crafted_files_are_read_exactly_gzip_or_plain(tmp_path, compress):
    data = _write_dataset(tmp_path, np.random.default_rng(0), compress=compress)
    splits = load_dataset("mnist", manual_dir=str(tmp_path))
    for (images, labels), prefix in ((splits.train, "train"), (splits.test, "t10k")):
        assert images.shape == (len(labels), 28, 28, 1) and images.dtype == np.uint8
        np.testing.assert_array_equal(images[..., 0], data[prefix][0])
        np.testing.assert_array_equal(labels, data[prefix][1])
        assert labels.dtype == np.int64
    assert splits.info.source == f"original IDX files in {tmp_path}"
    assert splits.info.class_names == tuple(str(d) for d in range(10))


def _damage(path, how):
    data = gzip.decompress(path.read_bytes())
    if how == "magic":
        data = (0x00000802).to_bytes(4, "big") + data[4:]
    elif how == "truncated":
        data = data[:-7]
    elif how == "trailing":
        data = data + b"\x00"
    elif how == "huge_count":
        data = data[:4] + (10**9).to_bytes(4, "big") + data[8:]
    path.write_bytes(gzip.compress(data))


@pytest.mark.parametrize(
    "how, message",
    [
        ("magic", "magic number 0x00000802, expected 0x00000803"),
        ("truncated", "is truncated"),
        ("trailing", "has bytes after its 12 items"),
        ("huge_count", "claims 1000000000 items"),
    ],
)
def test_damaged_image_file_is_refused_naming_it(tmp_path, how, message):
    data = _write_dataset(tmp_path, np.random.default_rng(0))
    image_path = data["train"][2][0]
    _damage(image_path, how)
    with pytest.raises(IdxFormatError, match=message) as error:
        read_idx_splits(str(tmp_path))
    assert str(image_path) in str(error.value) and "\n" not in str(error.value)


def test_image_and_label_counts_must_agree(tmp_path):
    rng = np.random.default_rng(0)
    _write_dataset(tmp_path, rng)
    _write_split(tmp_path, "train", rng.integers(0, 256, (12, 28, 28)), np.arange(11) % 10)
    with pytest.raises(IdxFormatError, match="holds 12 images but .* holds 11 labels"):
        read_idx_splits(str(tmp_path))


def test_labels_outside_ten_classes_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    _write_dataset(tmp_path, rng)
    _write_split(tmp_path, "t10k", rng.integers(0, 256, (3, 28, 28)), np.array([0, 10, 2]))
    with pytest.raises(IdxFormatError, match="label 10 outside 0..9"):
        read_idx_splits(str(tmp_path))


def test_missing_file_names_what_is_missing(tmp_path):
    data = _write_dataset(tmp_path, np.random.default_rng(0))
    os.remove(data["t10k"][2][1])
    with pytest.raises(DatasetNotFoundError, match="lacks t10k-labels-idx1-ubyte"):
        load_dataset("fashion_mnist", manual_dir=str(tmp_path))


def test_installed_files_are_found_without_flags_and_flags_take_precedence(tmp_path, monkeypatch):
    installed, manual = tmp_path / "installed", tmp_path / "manual"
    installed.mkdir()
    manual.mkdir()
    _write_dataset(installed, np.random.default_rng(0), train_count=12)
    _write_dataset(manual, np.random.default_rng(1), train_count=20)
    entry = catalog.CATALOG["fashion_mnist"]
    monkeypatch.setitem(
        catalog.CATALOG,
        "fashion_mnist",
        catalog.dataclasses.replace(entry, system_dirs=(str(installed),)),
    )
    found = load_dataset("fashion_mnist")
    assert found.info.source == f"original IDX files in {installed}"
    assert len(found.train[1]) == 12
    assert len(load_dataset("fashion_mnist", manual_dir=str(manual)).train[1]) == 20


@pytest.mark.slow
def test_truncated_file_through_the_cli_is_one_line_naming_it(tmp_path):
    archives = tmp_path / "idx"
    archives.mkdir()
    data = _write_dataset(archives, np.random.default_rng(0))
    _damage(data["train"][2][1], "truncated")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_dpnp.train",
            "--dataset=mnist",
            f"--manual_dir={archives}",
            "--epochs=1",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = [line for line in result.stderr.splitlines() if ": error:" in line]
    assert result.returncode == 1 and len(errors) == 1, result.stderr[-2000:]
    assert "train-labels-idx1-ubyte.gz is truncated" in errors[0]
    assert not (tmp_path / "runs").exists()


@needs_debian_files
def test_real_fashion_mnist_from_the_debian_package():
    splits = load_dataset("fashion_mnist", validation_fraction=5000 / 60000)
    assert splits.info.source == f"original IDX files in {DEBIAN_DIR}"
    assert len(splits.train[1]) == 55_000 and len(splits.validation[1]) == 5_000
    images, labels = splits.test
    assert images.shape == (10_000, 28, 28, 1) and images.dtype == np.uint8
    assert labels[0] == 9 and splits.info.class_names[labels[0]] == "Ankle boot"
    assert np.array_equal(np.bincount(labels), np.full(10, 1000))
    all_train = np.concatenate([splits.train[1], splits.validation[1]])
    assert np.array_equal(np.bincount(all_train), np.full(10, 6000))
    assert splits.info.mean[0] == pytest.approx(0.2860, abs=2e-3)
