"""3×3 stride-1 "same" convolution in Winograd's form F(2×2, 3×3) (Lavin & Gray, 2016).

Each 2×2 output tile is computed from a 4×4 input tile with 16 multiplications per channel pair
instead of 36: the convolution becomes 16 matrix products of (images · tiles, C) by (C, K), with
cheap additions around them. oneDNN's direct kernels are inefficient on 4×4 maps (ResNet-18's
last stage on 32×32 images runs at about two thirds of the FLOP rate of the earlier stages), and
there the Winograd form is twice as fast for a forward pass plus input gradient in float32.
Only the input gradient is provided (weights are constants, as in an attack): it is the same
convolution with the kernel rotated by 180° and its channel axes swapped.
"""

import tensorflow as tf

# G: filter transform, 4×3.
_FILTER_TRANSFORM = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0))


def applies(kernel_size, strides, dilation_rate, padding, height, width):
    """Whether `Winograd3x3` can compute this convolution."""
    return (
        tuple(kernel_size) == (3, 3)
        and tuple(strides) == (1, 1)
        and tuple(dilation_rate) == (1, 1)
        and padding == "same"
        and height is not None
        and width is not None
        and height % 2 == 0
        and width % 2 == 0
    )


def _transformed_filters(kernel):
    """[3, 3, C, K] -> [16, C, K]: G g Gᵀ for every channel pair, in float32."""
    g = tf.constant(_FILTER_TRANSFORM, tf.float32)
    u = tf.einsum("ai,ijck,bj->abck", g, tf.cast(kernel, tf.float32), g)
    return tf.reshape(u, (16, kernel.shape[2], kernel.shape[3]))


def _input_transform(tiles_first, axis):
    """Bᵀ d along `axis` of a map padded by one: four components, one row per 2-row tile."""
    size = tiles_first.shape[axis] - 2
    d = [tf.gather(tiles_first, list(range(k, k + size, 2)), axis=axis) for k in range(4)]
    return [d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]]


def _output_transform(m):
    """Aᵀ m along the first axis (4 components -> 2 outputs)."""
    return [m[0] + m[1] + m[2], m[1] - m[2] - m[3]]


def _winograd(x, filters):
    batch, height, width, channels = x.shape
    batch = tf.shape(x)[0] if batch is None else batch
    padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
    v = [column for row in _input_transform(padded, 1) for column in _input_transform(row, 2)]
    tiles = (height // 2) * (width // 2)
    v = tf.reshape(tf.stack(v), (16, batch * tiles, channels))
    m = tf.matmul(v, filters)
    m = tf.reshape(m, (4, 4, batch, height // 2, width // 2, filters.shape[-1]))
    y = tf.stack([tf.stack(_output_transform(row)) for row in _output_transform(m)])
    # [row in tile, column in tile, image, tile row, tile column, K] -> images.
    y = tf.transpose(y, [2, 3, 0, 4, 1, 5])
    return tf.reshape(y, (batch, height, width, filters.shape[-1]))


class Winograd3x3:
    """`tf.nn.conv2d(x, kernel, 1, "SAME")` for a fixed 3×3 `kernel`, differentiable in `x`."""

    def __init__(self, kernel, dtype):
        self._filters = tf.cast(_transformed_filters(kernel), dtype)
        rotated = tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])
        self._gradient_filters = tf.cast(_transformed_filters(rotated), dtype)

    def __call__(self, x):
        @tf.custom_gradient
        def convolve(x):
            def input_gradient(dy):
                return _winograd(dy, self._gradient_filters)

            return _winograd(x, self._filters), input_gradient

        return convolve(tf.cast(x, self._filters.dtype))
