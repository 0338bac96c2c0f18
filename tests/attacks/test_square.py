import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_model
from keras_dpnp.attacks.apgd import apgd
from keras_dpnp.attacks.square import l2_window_pattern, square, square_fraction, square_side

GENEROUS = {"linf": 0.3, "l2": 3.0}


def _sizes(x, x_adv, norm):
    delta = (x_adv - x).reshape(len(x), -1)
    return np.abs(delta).max(1) if norm == "linf" else np.linalg.norm(delta, axis=1)


def _no_gradients(logits_fn):
    """`logits_fn` whose gradient, if anyone ever asks for it, raises."""

    @tf.custom_gradient
    def guarded(images):
        def gradient(upstream):
            raise AssertionError("the Square attack asked for a gradient")

        return tf.identity(images), gradient

    return lambda images: logits_fn(guarded(images))


def test_square_schedule_halves_at_the_paper_iterations():
    assert square_fraction(0, 0.8) == 0.8
    assert square_fraction(10, 0.8) == 0.8
    assert square_fraction(11, 0.8) == 0.4
    assert square_fraction(51, 0.8) == 0.2
    assert square_fraction(4001, 0.8) == pytest.approx(0.8 / 128)
    assert square_fraction(9000, 0.8) == pytest.approx(0.8 / 512)


def test_square_side_on_small_and_large_images():
    assert square_side(0, 0.8, 8, 8, "linf") == 7  # round(sqrt(0.8 · 64)) = round(7.16)
    assert square_side(11, 0.8, 8, 8, "linf") == 5  # round(sqrt(25.6))
    assert square_side(9000, 0.8, 8, 8, "linf") == 1
    assert square_side(600, 0.8, 8, 8, "l2") == 3  # round(1.79) = 2, raised to 3
    assert square_side(11, 0.8, 32, 32, "l2") == 21  # round(20.2) = 20, made odd
    assert square_side(0, 1.0, 4, 6, "linf") == 4  # round(4.9), but never beyond the image


def test_l2_window_pattern_matches_hand_computed_values():
    # Side 3: top row holds rings (0.25, 1.25, 0.25); the 2×3 bottom holds (.25 .25 .25 /
    # .25 1.25 .25), each half scaled to unit norm, negated below, then all to unit norm.
    top = np.array([[0.25, 1.25, 0.25]])
    bottom = np.array([[0.25, 0.25, 0.25], [0.25, 1.25, 0.25]])
    expected = np.concatenate([top / np.linalg.norm(top), -bottom / np.linalg.norm(bottom)])
    np.testing.assert_allclose(l2_window_pattern(3), expected / np.sqrt(2), rtol=1e-12)
    np.testing.assert_allclose(l2_window_pattern(1), [[-1.0]])


def test_the_gradient_guard_catches_a_gradient_attack(batch):
    x, y = batch
    model = tiny_model("standard")
    with pytest.raises(AssertionError, match="asked for a gradient"):
        apgd(_no_gradients(lambda t: model(t, training=False)), x, y, epsilon=0.1, steps=1)


@pytest.mark.parametrize("norm,epsilon", [("linf", 0.1), ("l2", 0.8)])
def test_square_stays_in_the_ball_and_the_box_without_gradients(batch, norm, epsilon):
    x, y = batch
    model = tiny_model("standard")
    logits_fn = _no_gradients(lambda t: model(t, training=False))
    x_adv = square(logits_fn, x, y, epsilon=epsilon, norm=norm, queries=60)
    assert _sizes(x, x_adv, norm).max() <= epsilon + 1e-6
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    assert not np.array_equal(x_adv, x)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_square_breaks_a_standard_model(standard_model, norm):
    logits_fn, x, y = standard_model
    x_adv = square(_no_gradients(logits_fn), x, y, epsilon=GENEROUS[norm], norm=norm, queries=300)
    assert np.mean(np.argmax(logits_fn(x_adv), 1) == y) <= 0.05


def test_square_is_reproducible_for_a_seed(standard_model):
    logits_fn, x, y = standard_model
    first = square(logits_fn, x, y, epsilon=0.05, queries=30, seed=1)
    np.testing.assert_array_equal(first, square(logits_fn, x, y, epsilon=0.05, queries=30, seed=1))
    assert not np.array_equal(first, square(logits_fn, x, y, epsilon=0.05, queries=30, seed=2))


def test_square_rejects_bad_settings(batch):
    x, y = batch
    model = tiny_model("standard")
    logits_fn = lambda t: model(t, training=False)  # noqa: E731
    with pytest.raises(ValueError, match="queries must be >= 1"):
        square(logits_fn, x, y, epsilon=0.1, queries=0)
    with pytest.raises(ValueError, match=r"p_init must be in \(0, 1\]"):
        square(logits_fn, x, y, epsilon=0.1, p_init=1.5)
