"""Image files that stand where an in-memory uint8 image array stands, decoded by TensorFlow."""

import dataclasses

import numpy as np
import tensorflow as tf

from keras_dpnp.data.stats import mean_std_of_chunks

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
_DECODE_BATCH = 256


@dataclasses.dataclass(frozen=True, eq=False)
class ImageFiles:
    """Image files read as uint8 images of `image_shape` (H, W, C), in place of a [N, H, W, C]
    array: a data set too large for memory keeps its paths and decodes them in the pipeline.

    Indexing with a slice or an index array gives those images' files, still on disk; `decode`
    reads them into memory.
    """

    paths: np.ndarray
    image_shape: tuple[int, int, int]

    def __post_init__(self):
        object.__setattr__(self, "paths", np.asarray(self.paths, dtype=str).reshape(-1))
        object.__setattr__(self, "image_shape", tuple(int(side) for side in self.image_shape))

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, indices):
        if isinstance(indices, (int, np.integer)):
            raise TypeError("index ImageFiles with a slice or an index array, not one integer")
        return ImageFiles(self.paths[indices], self.image_shape)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self), *self.image_shape)

    @property
    def nbytes(self) -> int:
        """Bytes the decoded images would take in memory."""
        return len(self) * int(np.prod(self.image_shape))

    def decode(self) -> np.ndarray:
        """All the images as one uint8 array [N, H, W, C]."""
        images = np.empty(self.shape, np.uint8)
        start = 0
        for batch in decoded_batches(self):
            images[start : start + len(batch)] = batch
            start += len(batch)
        return images


def decode_image_file(path: tf.Tensor, image_shape: tuple[int, int, int]) -> tf.Tensor:
    """The uint8 image [H, W, C] in the file at `path` (a string tensor).

    PNG, JPEG, BMP or GIF (its first frame); grey becomes RGB when C is 3, alpha is dropped, and
    an image of another size is resized to (H, W).
    """
    height, width, channels = image_shape
    image = tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
    return tf.ensure_shape(fit_to_size(to_channels(image, channels), (height, width)), image_shape)


def to_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    """`image` (grey, grey+alpha, RGB or RGBA) with `channels` (1: grey only, or 3) channels."""
    if channels == 1:
        return image[..., :1]
    native = tf.shape(image)[-1]
    image = tf.cond(native < 3, lambda: tf.tile(image[..., :1], [1, 1, 3]), lambda: image[..., :3])
    image.set_shape((None, None, 3))
    return image


def fit_to_size(image: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """uint8 `image` resized (bilinear, antialiased, rounded) to `size` unless already that size."""
    same_size = tf.reduce_all(tf.shape(image)[:2] == tf.constant(size))

    def resized():
        scaled = tf.image.resize(image, size, method="bilinear", antialias=True)
        return tf.cast(tf.round(tf.clip_by_value(scaled, 0.0, 255.0)), tf.uint8)

    return tf.cond(same_size, lambda: image, resized)


def decoded_batches(files: ImageFiles, batch_size: int = _DECODE_BATCH):
    """Yields the decoded uint8 images of `files` in order, `batch_size` at a time."""
    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(files.paths, tf.string))
    dataset = dataset.map(
        lambda path: decode_image_file(path, files.image_shape), num_parallel_calls=tf.data.AUTOTUNE
    )
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE).as_numpy_iterator()


def streamed_mean_std(files: ImageFiles) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std (on the [0, 1] scale) of `files`, decoded batch by batch."""
    return mean_std_of_chunks(decoded_batches(files), files.image_shape[-1])
