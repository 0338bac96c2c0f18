"""`make_dataset`: the tf.data input pipeline over in-memory uint8 images."""

import numpy as np
import tensorflow as tf

from keras_dpnp.data.info import AUGMENTATIONS

_CROP_PADDING = 4
_SMALL_IMAGE_CROP_PADDING = 1
_SMALL_IMAGE_SIDE = 16


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int,
    training: bool,
    augment: str = "none",
    seed: int | None = None,
    drop_remainder: bool | None = None,
) -> tf.data.Dataset:
    """Builds uint8 → cache → (shuffle → augment) → batch → [0, 1] float32 → prefetch.

    Shuffling and augmentation only happen when `training`; both are
    reproducible for a given `seed` and change from epoch to epoch.
    `batch_size` is the global batch; `drop_remainder` defaults to `training`.
    Yields (float32 images [B, H, W, C] in [0, 1], int64 labels [B]).
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"images must be uint8 [N, H, W, C], got {images.dtype} {images.shape}.")
    if labels.shape != (len(images),):
        raise ValueError(f"labels must have shape ({len(images)},), got {labels.shape}.")
    if augment not in AUGMENTATIONS:
        raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {augment!r}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    if drop_remainder is None:
        drop_remainder = training

    dataset = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int64))).cache()
    if training:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
        if augment != "none":
            augment_one = _augmenter(images.shape[1:], flip=augment == "crop_flip")
            # One random integer per element and epoch keys the stateless ops.
            element_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
            dataset = tf.data.Dataset.zip(dataset, element_seeds).map(
                augment_one, num_parallel_calls=tf.data.AUTOTUNE
            )
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(_to_unit_range, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _augmenter(image_shape: tuple[int, int, int], flip: bool):
    """Returns a map function: pad, random crop back, optionally random horizontal flip."""
    height, width, _ = image_shape
    small = min(height, width) < _SMALL_IMAGE_SIDE
    padding = _SMALL_IMAGE_CROP_PADDING if small else _CROP_PADDING
    paddings = [[padding, padding], [padding, padding], [0, 0]]

    def augment_one(element, element_seed):
        image, label = element
        crop_seed = tf.stack([element_seed, tf.constant(0, tf.int64)])
        padded = tf.pad(image, paddings, mode="REFLECT")
        image = tf.image.stateless_random_crop(padded, size=image_shape, seed=crop_seed)
        if flip:
            flip_seed = tf.stack([element_seed, tf.constant(1, tf.int64)])
            image = tf.image.stateless_random_flip_left_right(image, seed=flip_seed)
        return image, label

    return augment_one


def _to_unit_range(images, labels):
    return tf.cast(images, tf.float32) / 255.0, labels
