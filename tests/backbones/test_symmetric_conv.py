"""The symmetric-padding convolution computes ZeroPadding2D + a "valid" Conv2D, and saves."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_dpnp.backbones.symmetric_conv import SymmetricPaddingConv2D


def _pair(kernel, strides):
    """The two-layer form it replaces, with `kernel` as its weights."""
    conv = keras.layers.Conv2D(kernel.shape[-1], kernel.shape[0], strides=strides, use_bias=False)
    pad = keras.layers.ZeroPadding2D(kernel.shape[0] // 2)
    conv.build((None, None, None, kernel.shape[2]))
    conv.kernel.assign(kernel)
    return lambda x: conv(pad(x)), conv.kernel


@pytest.mark.parametrize("size", [8, 7, 28])
def test_it_matches_padding_then_a_valid_convolution_values_and_gradients(size):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(2, size, size, 3)), tf.float32)
    layer = SymmetricPaddingConv2D(4, 3, strides=2, pad=1, use_bias=False)
    layer.build(x.shape)
    kernel = rng.normal(size=(3, 3, 3, 4)).astype("float32")
    layer.kernel.assign(kernel)
    pair, pair_kernel = _pair(kernel, 2)
    probe = tf.constant(rng.normal(size=layer.compute_output_shape(x.shape)), tf.float32)
    outputs, gradients = [], []
    for forward, weights in ((layer, layer.kernel), (pair, pair_kernel)):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = forward(x)
            objective = tf.reduce_sum(y * probe)
        outputs.append(y.numpy())
        gradients.append([g.numpy() for g in tape.gradient(objective, [x, weights])])
    assert outputs[0].shape == (2, (size + 1) // 2, (size + 1) // 2, 4)
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-5, atol=1e-5)
    for ours, theirs in zip(*gradients, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-4)


def test_in_bfloat16_it_pads_first_like_the_pair():
    x = tf.constant(np.random.default_rng(2).normal(size=(2, 8, 8, 3)), tf.float32)
    layer = SymmetricPaddingConv2D(4, 3, strides=2, pad=1, dtype="mixed_bfloat16")
    y = layer(x)
    padded = tf.pad(tf.cast(x, tf.bfloat16), [[0, 0], [1, 1], [1, 1], [0, 0]])
    expected = tf.nn.conv2d(padded, tf.cast(layer.kernel, tf.bfloat16), 2, "VALID")
    expected = tf.nn.bias_add(expected, tf.cast(layer.bias, tf.bfloat16))
    assert y.dtype == tf.bfloat16
    np.testing.assert_array_equal(tf.cast(y, tf.float32), tf.cast(expected, tf.float32))


@pytest.mark.parametrize(("filters", "pads_first"), [(128, False), (256, True)])
def test_in_float32_a_layer_wider_than_128_channels_pads_first(filters, pads_first):
    layer = SymmetricPaddingConv2D(filters, 3, strides=2, pad=1, use_bias=False)
    layer.build((None, 8, 8, 2))
    x = tf.constant(np.random.default_rng(3).normal(size=(1, 8, 8, 2)), tf.float32)
    graph = tf.function(layer).get_concrete_function(tf.TensorSpec(x.shape)).graph
    assert any(op.type == "Pad" for op in graph.get_operations()) == pads_first
    assert layer.pads_inside(tf.float32) != pads_first
    expected = tf.nn.conv2d(tf.pad(x, layer.explicit_padding), layer.kernel, 2, "VALID")
    np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-5)


def test_it_saves_and_reloads_with_its_padding(tmp_path):
    inputs = keras.Input((9, 9, 2))
    model = keras.Model(inputs, SymmetricPaddingConv2D(3, 3, strides=2, pad=1)(inputs))
    assert model.output.shape == (None, 5, 5, 3)
    x = np.random.default_rng(1).normal(size=(1, 9, 9, 2)).astype("float32")
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(reloaded(x), model(x), rtol=1e-6)
    assert reloaded.layers[1].get_config()["pad"] == 1


def test_bad_settings_say_what_is_wrong():
    with pytest.raises(ValueError, match="`pad` must be a non-negative integer, got -1"):
        SymmetricPaddingConv2D(3, 3, pad=-1)
    with pytest.raises(ValueError, match="channels_last inputs only"):
        SymmetricPaddingConv2D(3, 3, pad=1, data_format="channels_first")
