"""`folder:` splits over the in-memory limit stream from disk and give the same batches."""

import os

import numpy as np
import pytest
import tensorflow as tf
from test_data_folder import write_image

from keras_dpnp.data import ImageFiles, load_dataset, make_dataset
from keras_dpnp.evaluation.robustness import evaluate_robustness


@pytest.fixture
def image_folder(tmp_path):
    """Three classes of random RGB PNG and JPEG images of two sizes (resized to 8×8)."""
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c"):
        for index in range(6):
            shape = (8, 8, 3) if index % 2 else (11, 9, 3)
            suffix = ".jpg" if index % 3 == 0 else ".png"
            write_image(
                os.path.join(tmp_path, name, f"{index}{suffix}"), rng.integers(0, 256, shape)
            )
    return f"folder:{tmp_path}"


def _load(name, **options):
    return load_dataset(name, image_size=8, validation_fraction=0.2, seed=1, **options)


def _batches(images, labels, **options):
    return [
        (x.numpy(), y.numpy()) for x, y in make_dataset(images, labels, batch_size=4, **options)
    ]


def test_streamed_splits_are_image_files_with_the_same_statistics(image_folder):
    in_memory, streamed = _load(image_folder), _load(image_folder, max_in_memory_mb=0)
    for split in ("train", "validation", "test"):
        images, labels = getattr(streamed, split)
        assert isinstance(images, ImageFiles) and images.shape == (len(labels), 8, 8, 3)
        np.testing.assert_array_equal(images.decode(), getattr(in_memory, split)[0])
        np.testing.assert_array_equal(labels, getattr(in_memory, split)[1])
    assert isinstance(in_memory.train[0], np.ndarray)
    np.testing.assert_allclose(streamed.info.mean, in_memory.info.mean, rtol=1e-12)
    np.testing.assert_allclose(streamed.info.std, in_memory.info.std, rtol=1e-12)
    assert "train and test streamed from disk" in streamed.info.source


def test_only_the_split_over_the_limit_streams(image_folder):
    # 14 training images of 8·8·3 bytes exceed 3 kB; 4 test images do not.
    splits = load_dataset(image_folder, image_size=8, max_in_memory_mb=2.5 / 1024)
    assert isinstance(splits.train[0], ImageFiles)
    assert isinstance(splits.test[0], np.ndarray)
    assert "; train streamed from disk" in splits.info.source


def test_streamed_training_batches_equal_the_in_memory_ones_epoch_by_epoch(image_folder):
    in_memory, streamed = _load(image_folder), _load(image_folder, max_in_memory_mb=0)
    epochs = {}
    for kind, splits in (("memory", in_memory), ("streamed", streamed)):
        counter = tf.Variable(-1, dtype=tf.int64)
        dataset = make_dataset(
            *splits.train,
            batch_size=4,
            training=True,
            augment="crop_flip",
            seed=5,
            epoch_counter=counter,
        )
        epochs[kind] = [[(x.numpy(), y.numpy()) for x, y in dataset] for _ in range(2)]
    for memory_epoch, streamed_epoch in zip(epochs["memory"], epochs["streamed"]):
        for (memory_x, memory_y), (streamed_x, streamed_y) in zip(memory_epoch, streamed_epoch):
            np.testing.assert_array_equal(streamed_x, memory_x)
            np.testing.assert_array_equal(streamed_y, memory_y)
    first, second = epochs["streamed"]
    assert not np.array_equal(first[0][0], second[0][0])


def test_a_resumed_streamed_epoch_replays_its_batches(image_folder):
    streamed = _load(image_folder, max_in_memory_mb=0)
    counter = tf.Variable(-1, dtype=tf.int64)
    options = {"training": True, "augment": "crop", "seed": 2, "epoch_counter": counter}
    dataset = make_dataset(*streamed.train, batch_size=4, **options)
    list(dataset)
    second_epoch = [x.numpy() for x, _ in dataset]
    resumed_counter = tf.Variable(0, dtype=tf.int64)
    resumed = make_dataset(
        *streamed.train, batch_size=4, **{**options, "epoch_counter": resumed_counter}
    )
    for replayed, original in zip([x.numpy() for x, _ in resumed], second_epoch):
        np.testing.assert_array_equal(replayed, original)


def test_streamed_evaluation_batches_keep_the_order(image_folder):
    in_memory, streamed = _load(image_folder), _load(image_folder, max_in_memory_mb=0)
    memory_batches = _batches(*in_memory.test, training=False)
    streamed_batches = _batches(*streamed.test, training=False)
    assert len(streamed_batches) == len(memory_batches) == 1
    np.testing.assert_array_equal(streamed_batches[0][0], memory_batches[0][0])
    np.testing.assert_array_equal(streamed_batches[0][1], memory_batches[0][1])


def test_robustness_suite_needs_a_subset_of_a_streamed_test_split(image_folder):
    streamed = _load(image_folder, max_in_memory_mb=0)
    with pytest.raises(ValueError, match="streamed from disk.*--num_points"):
        evaluate_robustness(None, *streamed.test, epsilon=0.1, suite="quick")


def test_image_files_index_like_an_array_but_not_by_one_integer(image_folder):
    files = _load(image_folder, max_in_memory_mb=0).train[0]
    subset = files[np.array([2, 0])]
    assert isinstance(subset, ImageFiles) and len(subset) == 2
    np.testing.assert_array_equal(subset.decode(), files.decode()[[2, 0]])
    assert len(files[:3]) == 3 and files.nbytes == len(files) * 8 * 8 * 3
    with pytest.raises(TypeError, match="slice or an index array"):
        files[0]
