"""The tf.data pipeline: scaling, batching, shuffling and augmentation."""

import numpy as np
import pytest
import tensorflow as tf

from keras_dpnp.data import make_dataset


def _images(count, height=32, width=32, channels=3, seed=0):
    shape = (count, height, width, channels)
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def _batches(dataset):
    return [(images.numpy(), labels.numpy()) for images, labels in dataset]


def _windows(image, padding):
    """All crops of the reflect-padded `image` back to its own size."""
    height, width, _ = image.shape
    padded = np.pad(image, [(padding, padding), (padding, padding), (0, 0)], mode="reflect")
    return {
        padded[top : top + height, left : left + width].tobytes()
        for top in range(2 * padding + 1)
        for left in range(2 * padding + 1)
    }


def test_eval_pipeline_scales_keeps_order_and_remainder():
    images, labels = _images(20), np.arange(20)
    batches = _batches(make_dataset(images, labels, batch_size=8, training=False))
    assert [len(batch_labels) for _, batch_labels in batches] == [8, 8, 4]
    first_images, first_labels = batches[0]
    assert first_images.dtype == np.float32 and first_labels.dtype == np.int64
    assert 0.0 <= first_images.min() and first_images.max() <= 1.0
    all_images = np.concatenate([batch_images for batch_images, _ in batches])
    np.testing.assert_allclose(all_images, images / np.float32(255), rtol=1e-6)
    all_labels = np.concatenate([batch_labels for _, batch_labels in batches])
    np.testing.assert_array_equal(all_labels, labels)


def test_training_drops_remainder_by_default_and_on_request():
    images, labels = _images(20), np.arange(20)
    training = _batches(make_dataset(images, labels, batch_size=8, training=True, seed=0))
    assert [len(batch_labels) for _, batch_labels in training] == [8, 8]
    kept = _batches(
        make_dataset(images, labels, batch_size=8, training=True, seed=0, drop_remainder=False)
    )
    assert [len(batch_labels) for _, batch_labels in kept] == [8, 8, 4]
    dropped = _batches(
        make_dataset(images, labels, batch_size=8, training=False, drop_remainder=True)
    )
    assert len(dropped) == 2


def test_shuffle_is_seeded_and_changes_each_epoch():
    images, labels = _images(64), np.arange(64)

    def epoch_orders(seed):
        dataset = make_dataset(images, labels, batch_size=64, training=True, seed=seed)
        return [_batches(dataset)[0][1] for _ in range(2)]

    first_epoch, second_epoch = epoch_orders(5)
    again_first, again_second = epoch_orders(5)
    np.testing.assert_array_equal(first_epoch, again_first)
    np.testing.assert_array_equal(second_epoch, again_second)
    assert not np.array_equal(first_epoch, second_epoch)
    assert not np.array_equal(first_epoch, epoch_orders(6)[0])
    np.testing.assert_array_equal(np.sort(first_epoch), labels)


@pytest.mark.parametrize("augment", ["crop", "crop_flip"])
def test_augmentation_is_reproducible_by_seed(augment):
    images, labels = _images(32), np.arange(32)

    def first_batch(seed):
        dataset = make_dataset(
            images, labels, batch_size=16, training=True, augment=augment, seed=seed
        )
        return _batches(dataset.take(1))[0][0]

    np.testing.assert_array_equal(first_batch(3), first_batch(3))
    assert not np.array_equal(first_batch(3), first_batch(4))


def _augmented(images, augment, seed=0):
    dataset = make_dataset(
        images,
        np.arange(len(images)),
        batch_size=len(images),
        training=True,
        augment=augment,
        seed=seed,
    )
    batch_images, batch_labels = _batches(dataset)[0]
    return np.rint(batch_images * 255).astype(np.uint8), batch_labels


def test_crop_keeps_shape_shifts_and_never_flips():
    images = _images(48)
    augmented, order = _augmented(images, "crop")
    assert augmented.shape == images.shape
    for image, index in zip(augmented, order):
        assert image.tobytes() in _windows(images[index], padding=4)
    moved = sum(not np.array_equal(image, images[index]) for image, index in zip(augmented, order))
    assert moved > 40


def test_crop_flip_flips_some_images():
    images = _images(48)
    augmented, order = _augmented(images, "crop_flip")
    flipped = 0
    for image, index in zip(augmented, order):
        plain, mirrored = _windows(images[index], 4), _windows(images[index][:, ::-1], 4)
        assert image.tobytes() in plain | mirrored
        flipped += image.tobytes() in mirrored
    assert 10 < flipped < 38


def test_small_images_are_cropped_with_one_pixel_padding():
    images = _images(32, height=8, width=8, channels=1)
    augmented, order = _augmented(images, "crop")
    assert augmented.shape == (32, 8, 8, 1)
    for image, index in zip(augmented, order):
        assert image.tobytes() in _windows(images[index], padding=1)


def test_no_augmentation_without_training():
    images = _images(16)
    dataset = make_dataset(
        images, np.arange(16), batch_size=16, training=False, augment="crop_flip", seed=0
    )
    np.testing.assert_allclose(_batches(dataset)[0][0], images / np.float32(255), rtol=1e-6)


def test_invalid_arguments_are_rejected():
    images, labels = _images(4), np.arange(4)
    with pytest.raises(ValueError, match="augment"):
        make_dataset(images, labels, batch_size=2, training=True, augment="mixup")
    with pytest.raises(ValueError, match="uint8"):
        make_dataset(images.astype(np.float32), labels, batch_size=2, training=True)
    with pytest.raises(ValueError, match="labels"):
        make_dataset(images, labels[:3], batch_size=2, training=True)


def test_each_epoch_is_keyed_by_seed_and_epoch_so_a_resumed_run_replays_it():
    images = np.arange(40, dtype=np.uint8).reshape(40, 1, 1, 1).repeat(8, 1).repeat(8, 2)
    labels = np.arange(40) % 10

    def epochs(counter, count):
        dataset = make_dataset(
            images,
            labels,
            batch_size=8,
            training=True,
            augment="crop",
            seed=3,
            epoch_counter=counter,
        )
        return [np.concatenate([x.numpy() for x, _ in dataset]) for _ in range(count)]

    straight = epochs(tf.Variable(-1, dtype=tf.int64), 3)
    assert not np.array_equal(straight[1], straight[2])
    resumed_counter = tf.Variable(1, dtype=tf.int64)  # as if epochs 0 and 1 ran elsewhere
    np.testing.assert_array_equal(epochs(resumed_counter, 1)[0], straight[2])
    assert int(resumed_counter.numpy()) == 2
    # Without a counter each pass still differs, and a rebuilt pipeline starts over.
    first, second = epochs(None, 2)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(epochs(None, 1)[0], first)
