"""Batch normalisation on TensorFlow's fused kernel, 16-bit activations included."""

import keras
import tensorflow as tf

# TensorFlow's own floor for the fused kernel (cuDNN refuses smaller values).
_MIN_FUSED_EPSILON = 1.001e-5


@keras.saving.register_keras_serializable(package="keras_dpnp")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` computed by `FusedBatchNormV3` for 4-D channels-last input.

    Same statistics and moving averages as the Keras layer (biased batch variance in the moving
    average), in one kernel per direction. Under a mixed policy Keras's layer casts every
    activation to float32 and back and normalises with separate ops; the fused kernel reads the
    16-bit activations and keeps its statistics and parameters in float32, which on CPU makes a
    bfloat16 training step several times cheaper in normalisation. Synchronised statistics
    (`synchronized=True`), masks, renormalisation and other ranks use the Keras implementation.
    """

    def _fusable(self, rank, mask):
        return (
            keras.backend.backend() == "tensorflow"
            and rank == 4
            and self.axis in (-1, 3)
            and mask is None
            and not self.synchronized
            and not self.renorm
            and self.scale
            and self.center
        )

    def image_epsilon(self):
        """The ε added to the variance for 4-D (image) input."""
        if self._fusable(4, None):
            return max(self.epsilon, _MIN_FUSED_EPSILON)
        return self.epsilon

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(len(inputs.shape), mask):
            return super().call(inputs, training=training, mask=mask)
        x = tf.cast(inputs, self.compute_dtype)
        gamma = tf.cast(self.gamma, tf.float32)
        beta = tf.cast(self.beta, tf.float32)
        epsilon = self.image_epsilon()
        if training and self.trainable:
            empty = tf.constant([], tf.float32)
            y, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
                x=x,
                scale=gamma,
                offset=beta,
                mean=empty,
                variance=empty,
                epsilon=epsilon,
                data_format="NHWC",
                is_training=True,
            )
            # The kernel returns the unbiased variance; Keras averages the biased one.
            count = tf.cast(tf.size(x) // tf.shape(x)[-1], tf.float32)
            variance = variance * (count - 1.0) / tf.maximum(count, 1.0)
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(
                self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
            )
            return y
        y, *_ = tf.raw_ops.FusedBatchNormV3(
            x=x,
            scale=gamma,
            offset=beta,
            mean=tf.cast(self.moving_mean, tf.float32),
            variance=tf.cast(self.moving_variance, tf.float32),
            epsilon=epsilon,
            data_format="NHWC",
            is_training=False,
        )
        return y
