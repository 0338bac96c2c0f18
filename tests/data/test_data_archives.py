"""Reading the original CIFAR binary archives and SVHN .mat files."""

import gzip
import io
import tarfile

import numpy as np
import pytest
import scipy.io

from keras_dpnp.data import DatasetNotFoundError, archives, load_dataset

PIXELS = 3072


def _add_member(archive, name, data):
    member = tarfile.TarInfo(name)
    member.size = len(data)
    archive.addfile(member, io.BytesIO(data))


def _write_tar_gz(path, members):
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            _add_member(archive, name, data)


def _random_records(rng, count, label_bytes, num_classes):
    records = rng.integers(0, 256, size=(count, label_bytes + PIXELS), dtype=np.uint8)
    records[:, :label_bytes] = rng.integers(0, num_classes, size=(count, label_bytes))
    return records


def _assert_decoded(images, labels, records, label_byte):
    """Checks images against the documented layout: byte 1 + c*1024 + row*32 + col."""
    assert images.shape == (len(records), 32, 32, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels, records[:, label_byte].astype(np.int64))
    assert labels.dtype == np.int64
    rows, cols, channels = np.meshgrid(np.arange(32), np.arange(32), np.arange(3), indexing="ij")
    offsets = (label_byte + 1) + channels * 1024 + rows * 32 + cols
    for image, record in zip(images, records):
        np.testing.assert_array_equal(image, record[offsets])


def _cifar10_archive(path, rng, per_batch=3, test_count=4):
    train_records = [_random_records(rng, per_batch, 1, 10) for _ in range(5)]
    test_records = _random_records(rng, test_count, 1, 10)
    members = {
        f"cifar-10-batches-bin/data_batch_{i + 1}.bin": records.tobytes()
        for i, records in enumerate(train_records)
    }
    members["cifar-10-batches-bin/test_batch.bin"] = test_records.tobytes()
    members["cifar-10-batches-bin/batches.meta.txt"] = b"airplane\nautomobile\n"
    _write_tar_gz(path, members)
    return np.concatenate(train_records), test_records


def test_cifar10_archive_is_read_exactly(tmp_path):
    archive = tmp_path / "cifar-10-binary.tar.gz"
    train_records, test_records = _cifar10_archive(archive, np.random.default_rng(0))
    splits = load_dataset("cifar10", manual_dir=str(tmp_path))
    _assert_decoded(*splits.train, train_records, 0)
    _assert_decoded(*splits.test, test_records, 0)
    assert splits.info.num_classes == 10 and splits.info.augment == "crop_flip"
    assert splits.info.class_names[:2] == ("airplane", "automobile")
    assert "cifar-10-binary.tar.gz" in splits.info.source
    expected_mean = splits.train[0].reshape(-1, 3).mean(axis=0) / 255
    np.testing.assert_allclose(splits.info.mean, expected_mean)


def test_cifar100_archive_uses_fine_labels_and_names(tmp_path):
    rng = np.random.default_rng(1)
    train_records = _random_records(rng, 6, 2, 100)
    test_records = _random_records(rng, 3, 2, 100)
    train_records[:, 0] = rng.integers(0, 20, size=6)
    names = [f"fine_{i}" for i in range(100)]
    _write_tar_gz(
        tmp_path / "cifar-100-binary.tar.gz",
        {
            "cifar-100-binary/train.bin": train_records.tobytes(),
            "cifar-100-binary/test.bin": test_records.tobytes(),
            "cifar-100-binary/coarse_label_names.txt": b"vehicles_1\nvehicles_2\n",
            "cifar-100-binary/fine_label_names.txt": "\n".join(names).encode() + b"\n",
        },
    )
    splits = load_dataset("cifar100", manual_dir=str(tmp_path))
    _assert_decoded(*splits.train, train_records, 1)
    _assert_decoded(*splits.test, test_records, 1)
    assert splits.info.num_classes == 100 and splits.info.class_names == tuple(names)


def test_svhn_mat_files_are_read_with_label_10_as_0(tmp_path):
    rng = np.random.default_rng(2)
    for split, count in (("train", 5), ("test", 3)):
        images = rng.integers(0, 256, size=(32, 32, 3, count), dtype=np.uint8)
        labels = np.arange(6, 6 + count, dtype=np.uint8)[:, None]  # includes 10
        scipy.io.savemat(tmp_path / f"{split}_32x32.mat", {"X": images, "y": labels})
    splits = load_dataset("svhn_cropped", manual_dir=str(tmp_path))
    train_images, train_labels = splits.train
    np.testing.assert_array_equal(train_labels, [6, 7, 8, 9, 0])
    np.testing.assert_array_equal(splits.test[1], [6, 7, 8])
    saved = scipy.io.loadmat(tmp_path / "train_32x32.mat")["X"]
    for index in range(5):
        np.testing.assert_array_equal(train_images[index], saved[..., index])
    assert train_images.shape == (5, 32, 32, 3) and splits.info.augment == "crop"


def test_truncated_archive_says_corrupt_and_names_url(tmp_path):
    path = tmp_path / "cifar-10-binary.tar.gz"
    _cifar10_archive(path, np.random.default_rng(3), per_batch=40)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetNotFoundError, match="corrupt or truncated") as error:
        load_dataset("cifar10", manual_dir=str(tmp_path))
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz" in str(error.value)


def test_partial_record_says_corrupt(tmp_path):
    records = _random_records(np.random.default_rng(4), 2, 1, 10).tobytes()
    members = {f"cifar-10-batches-bin/data_batch_{i}.bin": records for i in range(1, 6)}
    members["cifar-10-batches-bin/test_batch.bin"] = records[:-7]
    _write_tar_gz(tmp_path / "cifar-10-binary.tar.gz", members)
    with pytest.raises(DatasetNotFoundError, match="corrupt or truncated.*test_batch.bin"):
        load_dataset("cifar10", manual_dir=str(tmp_path))


def test_missing_member_says_corrupt(tmp_path):
    _write_tar_gz(tmp_path / "cifar-100-binary.tar.gz", {"cifar-100-binary/train.bin": b""})
    with pytest.raises(DatasetNotFoundError, match="corrupt or truncated.*fine_label_names.txt"):
        load_dataset("cifar100", manual_dir=str(tmp_path))


def test_truncated_mat_says_corrupt(tmp_path):
    images = np.zeros((32, 32, 3, 4), dtype=np.uint8)
    for split in ("train", "test"):
        contents = {"X": images, "y": np.ones((4, 1), np.uint8)}
        scipy.io.savemat(tmp_path / f"{split}_32x32.mat", contents)
    path = tmp_path / "test_32x32.mat"
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DatasetNotFoundError, match="corrupt or truncated.*test_32x32.mat"):
        load_dataset("svhn_cropped", manual_dir=str(tmp_path))


@pytest.mark.parametrize(
    "name, filename",
    [
        ("cifar10", "cifar-10-binary.tar.gz"),
        ("cifar100", "cifar-100-binary.tar.gz"),
        ("svhn_cropped", "train_32x32.mat"),
    ],
)
def test_missing_file_names_file_and_folder(tmp_path, name, filename):
    with pytest.raises(DatasetNotFoundError) as error:
        load_dataset(name, manual_dir=str(tmp_path))
    assert filename in str(error.value) and str(tmp_path) in str(error.value)


def test_a_member_larger_than_the_official_file_is_refused_before_it_is_read(tmp_path):
    claimed = tarfile.TarInfo("cifar-10-batches-bin/test_batch.bin")
    claimed.size = 6 * 2**30  # what a small archive of zeros expands to; its data is absent
    with gzip.open(tmp_path / "cifar-10-binary.tar.gz", "wb") as f:
        f.write(claimed.tobuf(format=tarfile.GNU_FORMAT) + bytes(4096))
    with pytest.raises(
        DatasetNotFoundError,
        match=r"corrupt or truncated \(cifar-10-batches-bin/test_batch\.bin claims "
        r"6,442,450,944 bytes, more than the 30,730,000 of the official file\)",
    ):
        load_dataset("cifar10", manual_dir=str(tmp_path))


def test_an_svhn_file_claiming_more_images_than_the_official_one_is_refused(tmp_path, monkeypatch):
    monkeypatch.setitem(archives.SVHN_IMAGES, "train_32x32.mat", 4)
    for split, count in (("train", 5), ("test", 2)):
        contents = {"X": np.zeros((32, 32, 3, count), np.uint8), "y": np.ones((count, 1))}
        scipy.io.savemat(tmp_path / f"{split}_32x32.mat", contents)
    with pytest.raises(
        DatasetNotFoundError,
        match=r"train_32x32\.mat is corrupt or truncated \(X claims shape \(32, 32, 3, 5\), "
        r"over the 12,288 values of the official file\)",
    ):
        load_dataset("svhn_cropped", manual_dir=str(tmp_path))
