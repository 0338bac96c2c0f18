import math

import numpy as np
import pytest
import tensorflow as tf

from keras_dpnp import losses


def test_cross_entropy_matches_hand_value():
    logits = np.array([[2.0, 0.0, 0.0]], "float32")
    expected = -math.log(math.exp(2) / (math.exp(2) + 2))
    assert float(losses.cross_entropy(logits, [0])) == pytest.approx(expected, rel=1e-6)


def test_alignment_is_half_squared_distance():
    z = np.array([[1.0, 2.0], [0.0, 0.0]], "float32")
    c = np.array([[0.0, 0.0], [3.0, 4.0]], "float32")
    # (0.5 * 5 + 0.5 * 25) / 2
    assert float(losses.alignment(z, c)) == pytest.approx(7.5)


def test_repulsion_uses_the_nearest_rival():
    logits = np.array([[3.0, 2.5, 1.0], [0.0, 5.0, 1.0]], "float32")
    # example 0: margin 1 - (3 - 2.5) = 0.5; example 1: true 0, rival 5: 1 - (0 - 5) = 6.
    assert float(losses.repulsion(logits, [0, 0], 1.0)) == pytest.approx((0.5 + 6.0) / 2)
    assert float(losses.repulsion(logits, [0, 1], 0.1)) == pytest.approx(0.0)


def test_separation_forms_on_known_geometry():
    c = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], "float32")
    # nearest-rival cosines: 0, 0, 0 -> max_cos 0; simplex cosine for K=3 is -0.5.
    assert float(losses.separation(c, "max_cos")) == pytest.approx(0.0, abs=1e-7)
    assert float(losses.separation(c, "hinge")) == pytest.approx(0.5)
    lse = 0.1 * np.log(np.exp(0 / 0.1) + np.exp(-1 / 0.1))
    expected = (lse + 0.1 * np.log(2.0) + lse) / 3  # the middle one has two rivals at cos 0
    assert float(losses.separation(c, "lse", temperature=0.1)) == pytest.approx(expected, rel=1e-5)


def test_hinge_separation_is_zero_on_the_simplex():
    angles = np.array([0.0, 2 * np.pi / 3, 4 * np.pi / 3])
    c = np.stack([np.cos(angles), np.sin(angles)], 1).astype("float32")
    assert float(losses.separation(c, "hinge")) == pytest.approx(0.0, abs=1e-6)


def test_kl_divergence_hand_value_and_zero_on_equal_inputs():
    p_logits = np.log(np.array([[0.5, 0.5]], "float32"))
    q_logits = np.log(np.array([[0.25, 0.75]], "float32"))
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert float(losses.kl_divergence(p_logits, q_logits)) == pytest.approx(expected, rel=1e-5)
    assert float(losses.kl_divergence(q_logits, q_logits)) == pytest.approx(0.0, abs=1e-7)


def test_margin_loss_sign():
    logits = tf.constant([[1.0, 3.0, 0.0]])
    assert float(losses.margin_loss(logits, [0])) == pytest.approx(2.0)
    assert float(losses.margin_loss(logits, [1])) == pytest.approx(-2.0)


def test_boosted_cross_entropy_hand_value():
    probs = np.array([[0.6, 0.3, 0.1]], "float32")
    # -log 0.6 - log(1.0001 - 0.3)
    expected = -math.log(0.6) - math.log(1.0001 - 0.3)
    assert float(losses.boosted_cross_entropy(np.log(probs), [0])) == pytest.approx(
        expected, rel=1e-5
    )


def test_misclassification_aware_kl_hand_value():
    p = np.array([[0.5, 0.5], [0.9, 0.1]], "float32")
    q = np.array([[0.25, 0.75], [0.5, 0.5]], "float32")
    kl = (p * np.log(p / q)).sum(1)
    expected = np.mean(kl * (1 - np.array([0.5, 0.1])))  # labels 0 then 1
    value = losses.misclassification_aware_kl(np.log(p), np.log(q), [0, 1])
    assert float(value) == pytest.approx(expected, rel=1e-5)
