"""A stride-1 "same" convolution of a one-channel (grayscale) input, with a faster input gradient.

oneDNN computes a convolution's input gradient as a convolution whose output channels are the
input's channels; with one of them it vectorises badly: the first layer's input gradient on
Fashion-MNIST's 28×28×1 images (batch 128, 32 filters) took 9–15 ms on this project's AVX2 CPU,
once per attack iteration. Here it is one matrix product, which gives every kernel tap's share of
the gradient at every pixel ([N·H·W, K] · [K, k·k]), and the sum of those k·k planes shifted into
place: 4.9 ms on two threads, 6.9 ms on one (docs/speed.md). Only the input gradient is provided
(the kernel is a constant, as in an attack). With three input channels oneDNN's own kernel is as
fast or faster, so RGB inputs keep it.
"""

import tensorflow as tf


def applies(kernel_size, strides, dilation_rate, padding, input_channels):
    """Whether `SingleChannelConv` can compute this convolution."""
    height, width = kernel_size
    return (
        height == width
        and height % 2 == 1
        and tuple(strides) == (1, 1)
        and tuple(dilation_rate) == (1, 1)
        and padding == "same"
        and input_channels == 1
    )


def _input_gradient(dy, taps):
    """dL/dx of `conv2d(x, kernel, 1, "SAME")` for x of one channel; `taps`: [K, k, k]."""
    size = taps.shape[1]
    pad = size // 2
    _, height, width, filters = dy.shape
    batch = tf.shape(dy)[0]
    # shares[a, b, n, i, j]: what output pixel (i, j) sends back through kernel tap (a, b).
    shares = tf.reshape(dy, (-1, filters)) @ tf.reshape(taps, (filters, size * size))
    shares = tf.transpose(shares)
    shares = tf.reshape(shares, (size, size, batch, height, width))
    shares = tf.pad(shares, [[0, 0], [0, 0], [0, 0], [pad, pad], [pad, pad]])
    # Tap (a, b) of output (i, j) read input (i + a - pad, j + b - pad).
    gradient = tf.add_n(
        [
            shares[a, b, :, 2 * pad - a : 2 * pad - a + height, 2 * pad - b : 2 * pad - b + width]
            for a in range(size)
            for b in range(size)
        ]
    )
    return gradient[..., None]


class SingleChannelConv:
    """`tf.nn.conv2d(x, kernel, 1, "SAME")` for a fixed [k, k, 1, K] `kernel` (k odd),
    differentiable in `x`."""

    def __init__(self, kernel, dtype):
        self._kernel = tf.cast(kernel, dtype)
        self._taps = tf.transpose(self._kernel[:, :, 0, :], [2, 0, 1])

    def __call__(self, x):
        @tf.custom_gradient
        def convolve(x):
            def input_gradient(dy):
                return _input_gradient(dy, self._taps)

            return tf.nn.conv2d(x, self._kernel, 1, "SAME"), input_gradient

        return convolve(tf.cast(x, self._kernel.dtype))
