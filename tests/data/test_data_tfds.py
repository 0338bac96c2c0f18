"""The TFDS path: mocked prepared data, and failing fast when offline."""

import socket
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_dpnp.data import DatasetNotFoundError, load_dataset, tfds_source


@pytest.fixture
def host_reachable(monkeypatch):
    monkeypatch.setattr(tfds_source, "is_reachable", lambda url: True)


@pytest.fixture
def host_unreachable(monkeypatch):
    monkeypatch.setattr(tfds_source, "is_reachable", lambda url: False)

    def refuse(*args, **kwargs):
        raise AssertionError("download_and_prepare must not run offline")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", refuse)


@pytest.mark.parametrize(
    "name, num_classes, augment",
    [
        ("cifar10", 10, "crop_flip"),
        ("svhn_cropped", 10, "crop"),
    ],
)
def test_mocked_tfds_dataset_loads_as_arrays(tmp_path, host_reachable, name, num_classes, augment):
    with tfds.testing.mock_data(num_examples=24):
        splits = load_dataset(name, data_dir=str(tmp_path), validation_fraction=0.25, seed=1)
    train_images, train_labels = splits.train
    assert train_images.shape == (18, 32, 32, 3) and train_images.dtype == np.uint8
    assert splits.validation[0].shape == (6, 32, 32, 3)
    assert splits.test[0].shape == (24, 32, 32, 3)
    assert train_labels.dtype == np.int64
    assert train_labels.min() >= 0 and train_labels.max() < num_classes
    info = splits.info
    assert (info.num_classes, info.image_shape, info.augment) == (num_classes, (32, 32, 3), augment)
    assert len(info.mean) == len(info.std) == 3 and len(info.class_names) == num_classes
    np.testing.assert_allclose(info.mean, train_images.reshape(-1, 3).mean(axis=0) / 255)
    assert info.source.startswith(f"TFDS {name}")


@pytest.mark.parametrize("name", ["fashion_mnist", "mnist"])
def test_mocked_tfds_idx_datasets_load_through_tfds_when_data_dir_is_given(
    tmp_path, host_reachable, name
):
    with tfds.testing.mock_data(num_examples=12):
        splits = load_dataset(name, data_dir=str(tmp_path))
    assert splits.train[0].shape == (12, 28, 28, 1) and splits.train[0].dtype == np.uint8
    assert splits.info.augment == "none" and splits.info.source.startswith(f"TFDS {name}")


def test_offline_fashion_mnist_message_offers_the_debian_package(tmp_path, host_unreachable):
    with pytest.raises(DatasetNotFoundError) as error:
        load_dataset("fashion_mnist", data_dir=str(tmp_path), download=False)
    message = str(error.value)
    assert "`apt-get install dataset-fashion-mnist`" in message
    assert "t10k-labels-idx1-ubyte.gz" in message and "fashion_mnist/3.0.1/" in message


def test_mocked_cifar100_has_100_classes(tmp_path, host_reachable):
    with tfds.testing.mock_data(num_examples=5):
        splits = load_dataset("cifar100", data_dir=str(tmp_path))
    assert splits.info.num_classes == 100 and len(splits.info.class_names) == 100
    assert splits.train[0].shape == (5, 32, 32, 3)


@pytest.mark.parametrize("download", [False, True])
def test_offline_missing_data_fails_fast_with_instructions(tmp_path, host_unreachable, download):
    started = time.monotonic()
    with pytest.raises(DatasetNotFoundError) as error:
        load_dataset("cifar10", data_dir=str(tmp_path), download=download)
    assert time.monotonic() - started < 5
    message = str(error.value)
    for expected in (
        "--data_dir",
        "--manual_dir",
        "cifar10/3.0.2/",
        str(tmp_path),
        "cifar-10-binary.tar.gz",
        "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    ):
        assert expected in message


def test_offline_svhn_message_names_both_mat_files(tmp_path, host_unreachable):
    with pytest.raises(DatasetNotFoundError) as error:
        load_dataset("svhn_cropped", data_dir=str(tmp_path), download=False)
    assert "train_32x32.mat" in str(error.value) and "test_32x32.mat" in str(error.value)


def test_probe_reports_unreachable_hosts_within_its_timeout():
    started = time.monotonic()
    # Port 9 on loopback: refused at once; TEST-NET-1 (RFC 5737): never answers.
    assert not tfds_source.is_reachable("http://127.0.0.1:9/", timeout=0.5)
    assert not tfds_source.is_reachable("http://192.0.2.1/", timeout=0.5)
    assert time.monotonic() - started < 2.5


def test_probe_reports_a_listening_host():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        assert tfds_source.is_reachable(f"http://127.0.0.1:{port}/", timeout=2.0)
