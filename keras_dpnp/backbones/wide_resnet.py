"""Wide residual networks (Zagoruyko & Komodakis, 2016), WRN-34-10 default."""

import numbers

from keras import layers

from keras_dpnp.backbones.conventions import batch_norm_relu, conv2d
from keras_dpnp.backbones.resnet import preact_basic_block

GROUP_WIDTHS = (16, 32, 64)
GROUP_STRIDES = (1, 2, 2)


def wide_resnet_features(x, *, depth=34, widen_factor=10, prefix="", sync_batchnorm=False):
    """WRN-`depth`-`widen_factor` with pre-activation wide basic blocks.

    A 16-channel 3x3 stem, then three groups of `(depth - 4) / 6` blocks of
    width `16, 32, 64` times `widen_factor`, then a final BN-ReLU.

    Args:
        x: normalised images, channels-last.
        depth: `6 n + 4` for `n >= 1` blocks per group (34 gives 5).
        widen_factor: positive integer channel multiplier of the groups.
        prefix: prepended to every layer name.
        sync_batchnorm: batch statistics over all replicas of a
            `tf.distribute` strategy.

    Returns:
        Globally average-pooled, post-ReLU features, `64 * widen_factor` wide.
    """
    if not isinstance(depth, numbers.Integral) or depth < 10 or (depth - 4) % 6:
        raise ValueError(f"`depth` must be 6 n + 4 with n >= 1, got {depth!r}.")
    if (
        not isinstance(widen_factor, numbers.Integral)
        or isinstance(widen_factor, bool)
        or widen_factor < 1
    ):
        raise ValueError(f"`widen_factor` must be a positive integer, got {widen_factor!r}.")
    blocks_per_group = (depth - 4) // 6
    x = conv2d(x, GROUP_WIDTHS[0], 3, name=f"{prefix}stem_conv")
    for group, (channels, strides) in enumerate(zip(GROUP_WIDTHS, GROUP_STRIDES), start=1):
        for index in range(1, blocks_per_group + 1):
            x = preact_basic_block(
                x,
                channels * widen_factor,
                strides=strides if index == 1 else 1,
                name=f"{prefix}group{group}_block{index}",
                sync=sync_batchnorm,
            )
    x = batch_norm_relu(x, f"{prefix}final", sync_batchnorm)
    return layers.GlobalAveragePooling2D(name=f"{prefix}pool")(x)
