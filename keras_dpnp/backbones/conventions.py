"""Layer conventions shared by the backbones (PyTorch-like BN, He init)."""

from keras import layers

from keras_dpnp.backbones.fused_batch_norm import FusedBatchNormalization
from keras_dpnp.backbones.symmetric_conv import SymmetricPaddingConv2D


def scaled_width(channels, width):
    """Returns `channels * width` rounded, at least 1."""
    if width <= 0:
        raise ValueError(f"`width` must be positive, got {width}.")
    return max(1, round(channels * width))


def conv2d(x, filters, kernel_size, name, strides=1):
    """Applies a bias-free, `he_normal`-initialised convolution to `x`.

    The output keeps `ceil(size / strides)` pixels like `padding="same"`.
    """
    options = dict(use_bias=False, kernel_initializer="he_normal", name=name)
    if strides > 1 and kernel_size > 1:
        # TF's "same" pads strided convolutions only at the bottom/right, which
        # shifts the sampling grid half a pixel away from a strided 1x1
        # shortcut; symmetric padding keeps both branches aligned, as in
        # PyTorch.
        return SymmetricPaddingConv2D(
            filters, kernel_size, strides=strides, pad=kernel_size // 2, **options
        )(x)
    return layers.Conv2D(filters, kernel_size, strides=strides, padding="same", **options)(x)


def batch_norm(x, name, sync=False):
    """Applies batch normalisation with PyTorch's momentum and epsilon.

    `sync`: batch statistics over all replicas of a `tf.distribute` strategy.
    """
    return FusedBatchNormalization(momentum=0.9, epsilon=1e-5, synchronized=sync, name=name)(x)


def batch_norm_relu(x, name, sync=False):
    """Applies batch normalisation (`{name}_bn`) then ReLU (`{name}_relu`)."""
    x = batch_norm(x, f"{name}_bn", sync)
    return layers.ReLU(name=f"{name}_relu")(x)
