"""Winograd's F(2×2, 3×3) computes the 3×3 "same" convolution and its input gradient."""

import numpy as np
import pytest
import tensorflow as tf
from input_gradients import value_and_input_gradient

from keras_dpnp.backbones import winograd


@pytest.mark.parametrize("shape", [(3, 4, 4, 5), (2, 2, 6, 3), (1, 8, 2, 4)])
def test_matches_conv2d_and_its_input_gradient(shape):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=shape), tf.float32)
    kernel = tf.constant(rng.normal(size=(3, 3, shape[-1], 7)), tf.float32)
    probe = tf.constant(rng.normal(size=shape[:3] + (7,)), tf.float32)
    expected = value_and_input_gradient(lambda t: tf.nn.conv2d(t, kernel, 1, "SAME"), x, probe)
    got = value_and_input_gradient(winograd.Winograd3x3(kernel, tf.float32), x, probe)
    for want, have in zip(expected, got):
        np.testing.assert_allclose(have, want, atol=1e-5 * np.abs(want).max())


def test_unknown_batch_size_in_a_traced_function():
    rng = np.random.default_rng(1)
    kernel = tf.constant(rng.normal(size=(3, 3, 2, 3)), tf.float32)
    convolve = tf.function(
        winograd.Winograd3x3(kernel, tf.float32),
        input_signature=[tf.TensorSpec((None, 4, 4, 2), tf.float32)],
    )
    x = tf.constant(rng.normal(size=(5, 4, 4, 2)), tf.float32)
    np.testing.assert_allclose(convolve(x), tf.nn.conv2d(x, kernel, 1, "SAME"), atol=1e-5)


@pytest.mark.parametrize(
    "kernel_size,strides,dilation,padding,height,width,expected",
    [
        ((3, 3), (1, 1), (1, 1), "same", 4, 4, True),
        ((3, 3), (2, 2), (1, 1), "same", 4, 4, False),
        ((1, 1), (1, 1), (1, 1), "same", 4, 4, False),
        ((3, 3), (1, 1), (2, 2), "same", 4, 4, False),
        ((3, 3), (1, 1), (1, 1), "valid", 4, 4, False),
        ((3, 3), (1, 1), (1, 1), "same", 5, 4, False),
        ((3, 3), (1, 1), (1, 1), "same", None, 4, False),
    ],
)
def test_applies_only_to_what_it_computes(
    kernel_size, strides, dilation, padding, height, width, expected
):
    assert winograd.applies(kernel_size, strides, dilation, padding, height, width) is expected
