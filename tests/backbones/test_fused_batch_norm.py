"""The fused BatchNorm layer computes what Keras's BatchNormalization computes."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_dpnp.backbones.fused_batch_norm import FusedBatchNormalization
from keras_dpnp.training import distribute


def _pair(policy, shape):
    with distribute.precision_policy(policy):
        layers = (
            keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5),
            FusedBatchNormalization(momentum=0.9, epsilon=1e-5),
        )
    for layer in layers:
        layer.build(shape)
    return layers


@pytest.mark.parametrize("policy,tolerance", [("float32", 1e-5), ("mixed_bfloat16", 1e-2)])
@pytest.mark.parametrize("training", [True, False])
def test_outputs_gradients_and_moving_statistics_match_keras(policy, tolerance, training):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(1.0, 3.0, (16, 5, 5, 8)).astype(np.float32))
    weights = tf.constant(rng.normal(size=x.shape).astype(np.float32))
    results = []
    for layer in _pair(policy, x.shape):
        layer.moving_mean.assign(np.full(8, 0.5, np.float32))
        layer.moving_variance.assign(np.full(8, 4.0, np.float32))
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=training)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) * weights)
        grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
        results.append([y, *grads, layer.moving_mean, layer.moving_variance])
    assert results[1][0].dtype == results[0][0].dtype
    for keras_value, fused_value in zip(*results):
        keras_value = np.asarray(tf.cast(keras_value, tf.float32))
        fused_value = np.asarray(tf.cast(fused_value, tf.float32))
        scale = max(1.0, np.abs(keras_value).max())
        np.testing.assert_allclose(fused_value, keras_value, atol=tolerance * scale)


def test_synchronised_statistics_and_other_ranks_use_the_keras_path():
    x = tf.random.stateless_normal((4, 6), seed=(0, 1))
    reference = keras.layers.BatchNormalization(epsilon=1e-5)
    layer = FusedBatchNormalization(epsilon=1e-5, synchronized=True)
    np.testing.assert_allclose(layer(x, training=True), reference(x, training=True), atol=1e-6)


def test_round_trips_through_its_config():
    layer = FusedBatchNormalization(momentum=0.9, epsilon=1e-5, synchronized=True, name="bn")
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(restored, FusedBatchNormalization)
    assert restored.synchronized and restored.momentum == 0.9 and restored.epsilon == 1e-5
