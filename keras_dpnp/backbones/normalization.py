"""Per-channel pixel normalisation inside the model."""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops


def _as_float_tuple(value, argument_name):
    flat = np.asarray(value, dtype="float64").reshape(-1)
    values = tuple(float(v) for v in flat)
    if not values:
        raise ValueError(f"`{argument_name}` must not be empty.")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"`{argument_name}` must be finite, got {values}.")
    return values


def unit_range_pixels(images):
    """Images as float32 pixels in [0, 1]: uint8 images (0..255) are divided by 255.

    Floating images are taken to be in [0, 1] already and are only cast. Other integer types
    are refused, since their scale is unknown.

    Raises:
        TypeError: for integer images that are not uint8.
    """
    images = tf.convert_to_tensor(images)
    if images.dtype == tf.uint8:
        return tf.cast(images, tf.float32) / 255.0
    if not images.dtype.is_floating:
        raise TypeError(
            f"images of dtype {images.dtype.name} have no known pixel scale; pass "
            "uint8 images in 0..255 or floating images in [0, 1]"
        )
    return tf.cast(images, tf.float32)


@keras.saving.register_keras_serializable(package="keras_dpnp")
class PixelNormalization(keras.layers.Layer):
    """Maps channels-last pixels to `(x - mean) / std`, channel by channel.

    Keeping the normalisation in the model lets every caller, attacks included,
    work in pixel space. `mean` and `std` are constants, never weights. The
    layer computes in float32 whatever the global policy (bfloat16 would round
    pixels near 1 to steps of 1/256, coarser than 1/255 and than small attack
    steps); the next layer casts its output to that layer's compute dtype.

    Args:
        mean: a float, or one float per channel.
        std: a positive float, or one positive float per channel.
        **kwargs: base `Layer` arguments (`name`, `dtype`, ...).
    """

    def __init__(self, mean, std, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.mean = _as_float_tuple(mean, "mean")
        self.std = _as_float_tuple(std, "std")
        if not all(s > 0 for s in self.std):
            raise ValueError(f"`std` must be positive, got {self.std}.")

    def build(self, input_shape):
        channels = input_shape[-1]
        for argument_name, values in (("mean", self.mean), ("std", self.std)):
            if channels is not None and len(values) not in (1, channels):
                raise ValueError(
                    f"`{argument_name}` has {len(values)} values; expected 1 "
                    f"or one per channel ({channels})."
                )

    def call(self, inputs):
        inputs = ops.cast(inputs, self.compute_dtype)
        mean = ops.convert_to_tensor(self.mean, dtype=self.compute_dtype)
        std = ops.convert_to_tensor(self.std, dtype=self.compute_dtype)
        return (inputs - mean) / std

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"mean": list(self.mean), "std": list(self.std)})
        return config
