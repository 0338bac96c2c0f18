"""The one-channel convolution computes conv2d and its input gradient."""

import numpy as np
import pytest
import tensorflow as tf
from input_gradients import value_and_input_gradient

from keras_dpnp.backbones import single_channel


@pytest.mark.parametrize("shape,size", [((3, 8, 8, 1), 3), ((2, 5, 7, 1), 3), ((2, 6, 4, 1), 5)])
def test_matches_conv2d_and_its_input_gradient(shape, size):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=shape), tf.float32)
    kernel = tf.constant(rng.normal(size=(size, size, 1, 6)), tf.float32)
    probe = tf.constant(rng.normal(size=shape[:3] + (6,)), tf.float32)
    expected = value_and_input_gradient(lambda t: tf.nn.conv2d(t, kernel, 1, "SAME"), x, probe)
    got = value_and_input_gradient(single_channel.SingleChannelConv(kernel, tf.float32), x, probe)
    for want, have in zip(expected, got):
        assert np.abs(want).max() > 0
        np.testing.assert_allclose(have, want, atol=1e-5 * np.abs(want).max())


def test_unknown_batch_size_in_a_traced_function():
    rng = np.random.default_rng(1)
    kernel = tf.constant(rng.normal(size=(3, 3, 1, 4)), tf.float32)
    convolve = single_channel.SingleChannelConv(kernel, tf.float32)

    @tf.function(input_signature=[tf.TensorSpec((None, 6, 6, 1), tf.float32)])
    def input_gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            objective = tf.reduce_sum(tf.square(convolve(x)))
        return tape.gradient(objective, x)

    x = tf.constant(rng.normal(size=(5, 6, 6, 1)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        objective = tf.reduce_sum(tf.square(tf.nn.conv2d(x, kernel, 1, "SAME")))
    want = tape.gradient(objective, x).numpy()
    np.testing.assert_allclose(input_gradient(x), want, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize(
    "kernel_size,strides,dilation,padding,channels,expected",
    [
        ((3, 3), (1, 1), (1, 1), "same", 1, True),
        ((5, 5), (1, 1), (1, 1), "same", 1, True),
        ((3, 3), (1, 1), (1, 1), "same", 3, False),
        ((3, 3), (2, 2), (1, 1), "same", 1, False),
        ((3, 3), (1, 1), (2, 2), "same", 1, False),
        ((3, 3), (1, 1), (1, 1), "valid", 1, False),
        ((2, 2), (1, 1), (1, 1), "same", 1, False),
        ((3, 1), (1, 1), (1, 1), "same", 1, False),
    ],
)
def test_applies_only_to_what_it_computes(
    kernel_size, strides, dilation, padding, channels, expected
):
    assert single_channel.applies(kernel_size, strides, dilation, padding, channels) is expected
