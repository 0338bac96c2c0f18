"""ResNet-18 with the CIFAR stem, and PreAct-ResNet-18."""

from keras import layers

from keras_dpnp.backbones.conventions import batch_norm, batch_norm_relu, conv2d, scaled_width

STAGE_WIDTHS = (64, 128, 256, 512)
BLOCKS_PER_STAGE = (2, 2, 2, 2)


def basic_block(x, filters, strides, name, sync=False):
    """conv-BN-ReLU-conv-BN plus a shortcut, then ReLU (He et al., 2016a)."""
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = conv2d(x, filters, 1, strides=strides, name=f"{name}_shortcut_conv")
        shortcut = batch_norm(shortcut, f"{name}_shortcut_bn", sync)
    x = conv2d(x, filters, 3, strides=strides, name=f"{name}_conv1")
    x = batch_norm_relu(x, f"{name}_conv1", sync)
    x = conv2d(x, filters, 3, name=f"{name}_conv2")
    x = batch_norm(x, f"{name}_conv2_bn", sync)
    x = layers.Add(name=f"{name}_add")([x, shortcut])
    return layers.ReLU(name=f"{name}_out")(x)


def preact_basic_block(x, filters, strides, name, sync=False):
    """BN-ReLU-conv-BN-ReLU-conv plus a shortcut (He et al., 2016b).

    When the shape changes, the shortcut is a 1x1 convolution of the
    pre-activated input, as in the pre-activation and wide ResNet papers.
    """
    preactivated = batch_norm_relu(x, f"{name}_preact", sync)
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = conv2d(
            preactivated,
            filters,
            1,
            strides=strides,
            name=f"{name}_shortcut_conv",
        )
    x = conv2d(preactivated, filters, 3, strides=strides, name=f"{name}_conv1")
    x = batch_norm_relu(x, f"{name}_conv1", sync)
    x = conv2d(x, filters, 3, name=f"{name}_conv2")
    return layers.Add(name=f"{name}_add")([x, shortcut])


def _residual_stages(x, block, width, prefix, sync):
    for stage, (channels, blocks) in enumerate(zip(STAGE_WIDTHS, BLOCKS_PER_STAGE), start=1):
        for index in range(1, blocks + 1):
            x = block(
                x,
                scaled_width(channels, width),
                strides=2 if stage > 1 and index == 1 else 1,
                name=f"{prefix}stage{stage}_block{index}",
                sync=sync,
            )
    return x


def resnet18_features(x, *, width=1.0, prefix="", sync_batchnorm=False):
    """ResNet-18 for 32x32 images: 3x3 stride-1 stem, no max-pooling.

    Args:
        x: normalised images, channels-last.
        width: channel multiplier on the widths 64, 128, 256, 512.
        prefix: prepended to every layer name.
        sync_batchnorm: batch statistics over all replicas of a
            `tf.distribute` strategy.

    Returns:
        Globally average-pooled, post-ReLU features, `512 * width` wide.
    """
    stem_width = scaled_width(STAGE_WIDTHS[0], width)
    x = conv2d(x, stem_width, 3, name=f"{prefix}stem_conv")
    x = batch_norm_relu(x, f"{prefix}stem_conv", sync_batchnorm)
    x = _residual_stages(x, basic_block, width, prefix, sync_batchnorm)
    return layers.GlobalAveragePooling2D(name=f"{prefix}pool")(x)


def preact_resnet18_features(x, *, width=1.0, prefix="", sync_batchnorm=False):
    """PreAct-ResNet-18 for 32x32 images, with a final BN-ReLU before pooling.

    Args:
        x: normalised images, channels-last.
        width: channel multiplier on the widths 64, 128, 256, 512.
        prefix: prepended to every layer name.
        sync_batchnorm: batch statistics over all replicas of a
            `tf.distribute` strategy.

    Returns:
        Globally average-pooled, post-ReLU features, `512 * width` wide.
    """
    stem_width = scaled_width(STAGE_WIDTHS[0], width)
    x = conv2d(x, stem_width, 3, name=f"{prefix}stem_conv")
    x = _residual_stages(x, preact_basic_block, width, prefix, sync_batchnorm)
    x = batch_norm_relu(x, f"{prefix}final", sync_batchnorm)
    return layers.GlobalAveragePooling2D(name=f"{prefix}pool")(x)
