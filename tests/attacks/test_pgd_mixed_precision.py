"""The training attack under mixed precision: a float32 perturbation inside the ε-ball."""

import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_model
from keras_dpnp import losses
from keras_dpnp.training import distribute


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.parametrize("objective", ["kl", "ce"])
def test_training_attack_stays_in_the_ball_and_raises_the_loss(batch, precision, objective):
    x, y = batch
    epsilon = 8 / 255
    with distribute.precision_policy(precision):
        model = tiny_model(
            "adv_dpnp",
            attack={"epsilon": epsilon, "step_size": 2 / 255, "steps": 10, "objective": objective},
        )
    x = x.astype(np.float32)
    x_adv = model.adversarial_examples(x, y)
    assert x_adv.dtype == tf.float32
    delta = np.abs(np.asarray(x_adv) - x)
    assert delta.max() <= epsilon + 1e-7
    assert 0.0 <= float(tf.reduce_min(x_adv)) and float(tf.reduce_max(x_adv)) <= 1.0
    # The adversarial images are float32, not 16-bit values stored as float32.
    rounded = tf.cast(tf.cast(x_adv, model.backbone.compute_dtype), tf.float32)
    assert np.any(np.asarray(rounded) != np.asarray(x_adv))
    clean_logits = model(x, training=False)
    adv_logits = model(x_adv, training=False)
    assert clean_logits.dtype == tf.float32
    if objective == "ce":
        gain = losses.cross_entropy(adv_logits, y) - losses.cross_entropy(clean_logits, y)
    else:
        gain = losses.kl_divergence(clean_logits, adv_logits)
    assert float(gain) > 1e-3
