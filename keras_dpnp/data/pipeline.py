"""`make_dataset`: the tf.data input pipeline over in-memory uint8 images or image files."""

import numpy as np
import tensorflow as tf

from keras_dpnp.data.image_files import ImageFiles, decode_image_file
from keras_dpnp.data.info import AUGMENTATIONS

_CROP_PADDING = 4
_SMALL_IMAGE_CROP_PADDING = 1
_SMALL_IMAGE_SIDE = 16
_EPOCH_KEY_STRIDE = 1_000_003


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int,
    training: bool,
    augment: str = "none",
    seed: int | None = None,
    drop_remainder: bool | None = None,
    epoch_counter: tf.Variable | None = None,
) -> tf.data.Dataset:
    """Builds uint8 → (shuffle → augment) → batch → [0, 1] float32 → prefetch.

    Shuffling and augmentation only happen when `training`. Each pass over the data is keyed
    by `(seed, epoch)`: the pass adds one to `epoch_counter` (an int64 variable, starting
    value -1; a private one when None) and draws its order and augmentations from that key
    alone. So epoch k's batches are the same in every run with this seed, and a resumed run
    that sets the counter to k - 1 replays them exactly. `batch_size` is the global batch;
    `drop_remainder` defaults to `training`. `images` may be `ImageFiles`: the order is then
    drawn over the file paths and each image is decoded as its element is made, so the batches
    equal those of the decoded array.
    Yields (float32 images [B, H, W, C] in [0, 1], int64 labels [B]).
    """
    streamed = isinstance(images, ImageFiles)
    images = images if streamed else np.asarray(images)
    labels = np.asarray(labels)
    if not streamed and (images.dtype != np.uint8 or images.ndim != 4):
        raise ValueError(f"images must be uint8 [N, H, W, C], got {images.dtype} {images.shape}.")
    if labels.shape != (len(images),):
        raise ValueError(f"labels must have shape ({len(images)},), got {labels.shape}.")
    if augment not in AUGMENTATIONS:
        raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {augment!r}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    if drop_remainder is None:
        drop_remainder = training

    labels = labels.astype(np.int64)
    if training:
        dataset = _epoch_keyed(images, labels, augment, seed, epoch_counter)
    elif streamed:
        dataset = tf.data.Dataset.from_tensor_slices((images.paths, labels)).map(
            lambda path, label: (decode_image_file(path, images.image_shape), label),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    else:
        dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(_to_unit_range, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _epoch_keyed(images, labels, augment, seed, epoch_counter):
    """One shuffled (and augmented) pass per iteration, keyed by the seed and the epoch.

    The order is a stateless permutation of the indices (`index_shuffle`), so nothing depends
    on how many passes this process made before.
    """
    if seed is None:
        seed = int(np.random.default_rng().integers(2**31))
    if epoch_counter is None:
        epoch_counter = tf.Variable(-1, dtype=tf.int64, trainable=False)
    augment_one = (
        None if augment == "none" else _augmenter(images.shape[1:], flip=augment == "crop_flip")
    )
    all_images, read_image = _gatherable(images)
    all_labels = tf.constant(labels)
    last = len(images) - 1

    def one_epoch(_):
        key = tf.stack([tf.constant(seed, tf.int64), epoch_counter.assign_add(1)])

        def element(position):
            index = tf.random.experimental.index_shuffle(position, key, last)
            pair = (read_image(tf.gather(all_images, index)), tf.gather(all_labels, index))
            if augment_one is None:
                return pair
            return augment_one(pair, key * [1, _EPOCH_KEY_STRIDE] + [0, position])

        return tf.data.Dataset.range(len(images)).map(element, num_parallel_calls=tf.data.AUTOTUNE)

    epochs = tf.data.Dataset.range(1).flat_map(one_epoch)
    return epochs.apply(tf.data.experimental.assert_cardinality(len(images)))


def _gatherable(images):
    """(tensor the pipeline gathers elements from, function making an element a uint8 image):
    the images themselves, or the file paths and their decoder."""
    if isinstance(images, ImageFiles):
        return (
            tf.constant(images.paths, tf.string),
            lambda path: decode_image_file(path, images.image_shape),
        )
    return tf.constant(images), lambda image: image


def _augmenter(image_shape: tuple[int, int, int], flip: bool):
    """Returns a map function: pad, random crop back, optionally random horizontal flip."""
    height, width, _ = image_shape
    small = min(height, width) < _SMALL_IMAGE_SIDE
    padding = _SMALL_IMAGE_CROP_PADDING if small else _CROP_PADDING
    paddings = [[padding, padding], [padding, padding], [0, 0]]

    def augment_one(element, key):
        image, label = element
        padded = tf.pad(image, paddings, mode="REFLECT")
        image = tf.image.stateless_random_crop(padded, size=image_shape, seed=key)
        if flip:
            image = tf.image.stateless_random_flip_left_right(image, seed=key + [1, 0])
        return image, label

    return augment_one


def _to_unit_range(images, labels):
    return tf.cast(images, tf.float32) / 255.0, labels
