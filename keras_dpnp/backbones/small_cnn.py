"""A small convolutional network for small images (8x8 to 32x32)."""

from keras import layers

from keras_dpnp.backbones.conventions import batch_norm_relu, conv2d, scaled_width


def small_cnn_features(x, *, width=1.0, prefix="", sync_batchnorm=False):
    """Three conv-BN-ReLU stages, global average pooling, Dense-ReLU.

    Args:
        x: normalised images, channels-last.
        width: channel multiplier (0.125 gives a tiny model for tests).
        prefix: prepended to every layer name.
        sync_batchnorm: batch statistics over all replicas of a
            `tf.distribute` strategy.

    Returns:
        Post-ReLU features, `256 * width` wide.
    """
    stages = ((32, 1), (64, 2), (128, 2))
    for index, (filters, strides) in enumerate(stages, start=1):
        x = conv2d(
            x,
            scaled_width(filters, width),
            3,
            strides=strides,
            name=f"{prefix}conv{index}",
        )
        x = batch_norm_relu(x, f"{prefix}conv{index}", sync_batchnorm)
    x = layers.GlobalAveragePooling2D(name=f"{prefix}pool")(x)
    return layers.Dense(scaled_width(256, width), activation="relu", name=f"{prefix}hidden")(x)
