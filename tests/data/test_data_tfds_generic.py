"""`tfds:<name>`: any TFDS image-classification set, on mock data and on tiny prepared builders."""

import glob
import re
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_dpnp.data import DatasetNotFoundError, load_dataset, tfds_source


@pytest.fixture
def host_reachable(monkeypatch):
    monkeypatch.setattr(tfds_source, "is_reachable", lambda url: True)


class TinyShapesNoTest(tfds.core.GeneratorBasedBuilder):
    """4×4 grey images of two classes with train and validation splits, and no test split."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(4, 4, 1)),
                    "label": tfds.features.ClassLabel(names=["dark", "light"]),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(8), "validation": self._generate_examples(4)}

    def _generate_examples(self, count):
        for index in range(count):
            label = index % 2
            yield index, {"image": np.full((4, 4, 1), 40 + 160 * label, np.uint8), "label": label}


class TinyCaptions(tfds.core.GeneratorBasedBuilder):
    """Text with a class label: no image to classify."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {"text": tfds.features.Text(), "label": tfds.features.ClassLabel(num_classes=2)}
            ),
        )

    def _split_generators(self, dl_manager):
        return {"train": iter(())}

    def _generate_examples(self):
        yield from ()


class TinyRegression(tfds.core.GeneratorBasedBuilder):
    """Images with a float target: no ClassLabel."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(4, 4, 3)),
                    "target": tfds.features.Scalar(dtype=np.float32),
                }
            ),
            supervised_keys=("image", "target"),
        )

    def _split_generators(self, dl_manager):
        return {"train": iter(())}

    def _generate_examples(self):
        yield from ()


@pytest.fixture
def prepared_no_test(tmp_path):
    TinyShapesNoTest(data_dir=str(tmp_path)).download_and_prepare()
    return str(tmp_path)


def test_mocked_tfds_set_takes_shape_and_class_names_from_the_builder(tmp_path, host_reachable):
    with tfds.testing.mock_data(num_examples=12):
        splits = load_dataset("tfds:mnist", data_dir=str(tmp_path), validation_fraction=0.25)
    images, labels = splits.train
    assert images.shape == (9, 28, 28, 1) and images.dtype == np.uint8
    assert splits.validation[0].shape == (3, 28, 28, 1) and splits.test[0].shape == (12, 28, 28, 1)
    assert labels.dtype == np.int64 and 0 <= labels.min() and labels.max() < 10
    info = splits.info
    assert (info.name, info.num_classes, info.image_shape) == ("tfds:mnist", 10, (28, 28, 1))
    assert info.class_names == tuple(str(digit) for digit in range(10))
    np.testing.assert_allclose(info.mean, [images.mean() / 255])
    assert info.source.startswith("TFDS mnist") and "test split 'test'" in info.source


def test_varying_image_sizes_need_image_size(tmp_path, host_reachable):
    with tfds.testing.mock_data(num_examples=4):
        with pytest.raises(ValueError, match="varying size.*--image_size") as error:
            load_dataset("tfds:tf_flowers", data_dir=str(tmp_path))
        splits = load_dataset(
            "tfds:tf_flowers", data_dir=str(tmp_path), image_size="12,10", tfds_split_test="train"
        )
    assert "\n" not in str(error.value)
    assert splits.train[0].shape == (4, 12, 10, 3) and splits.info.image_shape == (12, 10, 3)
    assert splits.info.class_names == ("dandelion", "daisy", "tulips", "sunflowers", "roses")
    assert "resized to 12×10" in splits.info.source


def test_missing_test_split_says_so_and_suggests_validation(prepared_no_test):
    with pytest.raises(ValueError) as error:
        load_dataset("tfds:tiny_shapes_no_test", data_dir=prepared_no_test)
    message = str(error.value)
    assert "has no split 'test'" in message and "its splits: train, validation" in message
    assert "--tfds_split_test=validation" in message and "\n" not in message


def test_split_flags_choose_the_splits(prepared_no_test):
    splits = load_dataset(
        "tfds:tiny_shapes_no_test",
        data_dir=prepared_no_test,
        tfds_split_train="train[:50%]",
        tfds_split_test="validation",
    )
    assert len(splits.train[1]) == 4 and len(splits.test[1]) == 4
    assert splits.info.class_names == ("dark", "light") and splits.info.image_shape == (4, 4, 1)
    # Every image carries its label's brightness, so images and labels stay paired.
    np.testing.assert_array_equal(splits.test[0][:, 0, 0, 0], 40 + 160 * splits.test[1])
    sliced = load_dataset(
        "tfds:tiny_shapes_no_test",
        data_dir=prepared_no_test,
        tfds_split_train="train[:75%]",
        tfds_split_test="train[75%:]",
    )
    assert (len(sliced.train[1]), len(sliced.test[1])) == (6, 2)


def test_an_unknown_split_in_a_slice_is_named(prepared_no_test):
    with pytest.raises(ValueError, match="no split 'tran'.*--tfds_split_train=tran"):
        load_dataset(
            "tfds:tiny_shapes_no_test",
            data_dir=prepared_no_test,
            tfds_split_train="tran[:50%]",
            tfds_split_test="validation",
        )


@pytest.mark.parametrize(
    "name, needle",
    [
        ("tiny_captions", "has no single image feature"),
        ("tiny_regression", "has no ClassLabel label"),
    ],
)
def test_features_that_do_not_fit_classification_are_refused(
    tmp_path, host_reachable, name, needle
):
    with tfds.testing.mock_data(num_examples=2), pytest.raises(ValueError, match=needle) as error:
        load_dataset(f"tfds:{name}", data_dir=str(tmp_path))
    assert "\n" not in str(error.value) and f"tfds:{name}" in str(error.value)


def test_an_unknown_tfds_name_fails_in_one_line():
    with pytest.raises(DatasetNotFoundError) as error:
        load_dataset("tfds:no_such_data_set_here")
    assert str(error.value).startswith("TFDS has no data set 'no_such_data_set_here'")
    assert "\n" not in str(error.value)


def test_offline_unprepared_set_fails_fast_without_archive_advice(tmp_path, monkeypatch):
    monkeypatch.setattr(tfds_source, "is_reachable", lambda url: False)
    started = time.monotonic()
    with pytest.raises(DatasetNotFoundError) as error:
        load_dataset("tfds:beans", data_dir=str(tmp_path))
    assert time.monotonic() - started < 5
    message = str(error.value)
    assert "--data_dir" in message and "beans/" in message and str(tmp_path) in message
    assert "--manual_dir" not in message and "is not reachable" in message


@pytest.mark.parametrize("content", [b"{broken", b'{"name": "\xff"}'], ids=["json", "utf8"])
def test_a_corrupt_dataset_info_json_is_named(prepared_no_test, content):
    [info] = glob.glob(f"{prepared_no_test}/**/dataset_info.json", recursive=True)
    with open(info, "wb") as f:
        f.write(content)
    with pytest.raises(
        DatasetNotFoundError,
        match=rf"^{re.escape(info)} is corrupt \(\w+\), so the prepared TFDS data of "
        r"tiny_shapes_no_test cannot be read; delete its version folder and prepare it again$",
    ):
        load_dataset("tfds:tiny_shapes_no_test", data_dir=prepared_no_test)
