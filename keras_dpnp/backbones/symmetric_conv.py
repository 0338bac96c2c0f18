"""A strided convolution with the same zero padding on every side, in one kernel."""

import keras
import tensorflow as tf

# Widest layer (output channels) that takes the explicit padding in float32 on a CPU. Its input
# gradient has no oneDNN kernel (TensorFlow's im2col fallback), which is level with pad-first up
# to 128 channels and up to 2.7x slower beyond (docs/speed.md, stride-2 3x3 layers at 2 threads).
EXPLICIT_PADDING_MAX_FILTERS = 128


@keras.saving.register_keras_serializable(package="keras_dpnp")
class SymmetricPaddingConv2D(keras.layers.Conv2D):
    """`Conv2D` over the input padded with `pad` zeros on every side (PyTorch's `padding=pad`).

    It computes what `ZeroPadding2D(pad)` followed by a "valid" `Conv2D` computes. In float32 on
    a CPU, for layers of up to `EXPLICIT_PADDING_MAX_FILTERS` output channels, the padding is
    inside the convolution (`tf.nn.conv2d`'s explicit padding): its gradients then work on the
    unpadded maps, where the pair needed gradient convolutions over the padded ones and a slice
    (README "Speed"). Wider layers, other dtypes and GPUs pad first, as the pair did.
    (TensorFlow's "same" padding is no substitute: for strided convolutions it pads the bottom
    and right only.)

    Args:
        filters, kernel_size, strides, ...: as `keras.layers.Conv2D`, channels-last, except
            `padding`, which is always the explicit `pad`.
        pad: zeros added above, below, left and right of every map.

    Shapes: [N, H, W, C] -> [N, (H + 2 pad - k) // s + 1, (W + 2 pad - k) // s + 1, filters].
    """

    def __init__(self, filters, kernel_size, *, pad, **kwargs):
        if kwargs.get("data_format", "channels_last") != "channels_last":
            raise ValueError("SymmetricPaddingConv2D supports channels_last inputs only")
        super().__init__(filters, kernel_size, padding="valid", **kwargs)
        if not isinstance(pad, int) or pad < 0:
            raise ValueError(f"`pad` must be a non-negative integer, got {pad!r}")
        self.pad = pad

    @property
    def explicit_padding(self):
        """The padding as `tf.nn.conv2d` takes it."""
        return [[0, 0], [self.pad, self.pad], [self.pad, self.pad], [0, 0]]

    def pads_inside(self, dtype):
        """Whether inputs of `dtype` are convolved with the padding inside the kernel (float32
        on a CPU, up to `EXPLICIT_PADDING_MAX_FILTERS` output channels) or padded first."""
        return (
            dtype == tf.float32
            and self.filters <= EXPLICIT_PADDING_MAX_FILTERS
            and not tf.config.list_logical_devices("GPU")
        )

    def convolution_op(self, inputs, kernel, pad_first=False):
        """The convolution of the padded `inputs` with `kernel` (the layer's, or a folded one);
        `pad_first`: pad, then convolve, whatever `pads_inside` says."""
        options = dict(strides=list(self.strides), dilations=list(self.dilation_rate))
        if self.pads_inside(inputs.dtype) and not pad_first:
            return tf.nn.conv2d(inputs, kernel, padding=self.explicit_padding, **options)
        # In 16-bit on a CPU the explicit padding's gradients have no oneDNN kernel (the
        # fallback was 7x slower for ResNet-18 in bfloat16); elsewhere keep the pair's form.
        padded = tf.pad(inputs, self.explicit_padding)
        return tf.nn.conv2d(padded, kernel, padding="VALID", **options)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        padded = [None if size is None else size + 2 * self.pad for size in (height, width)]
        return super().compute_output_shape((batch, *padded, channels))

    def get_config(self):
        config = super().get_config()
        config.pop("padding")
        return {**config, "pad": self.pad}
