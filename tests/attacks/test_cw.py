import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_model
from digits_models import standard_digits_model
from keras_dpnp.attacks import cw
from keras_dpnp.attacks.pgd import PGDConfig, pgd


@pytest.fixture(scope="module")
def digits_model():
    """A standard-trained tiny CNN (~95 % clean) and 100 digits test images."""
    model, images, labels = standard_digits_model()
    x = images[:100].astype(np.float32) / 255
    return (lambda t: model(t, training=False)), x, labels[:100]


def _fooled(logits_fn, x, y):
    return np.argmax(logits_fn(x), axis=1) != y


def test_cw_linf_is_pgd_on_the_margin_loss(batch):
    x, y = batch
    model = tiny_model("standard")
    logits_fn = lambda t: model(t, training=False)  # noqa: E731
    ours = cw.cw_linf(logits_fn, x, y, epsilon=0.1, seed_generator=keras.random.SeedGenerator(3))
    config = PGDConfig(epsilon=0.1, step_size=0.25 / 30, steps=30, objective="margin")
    reference = pgd(logits_fn, x, y, config, seed_generator=keras.random.SeedGenerator(3))
    np.testing.assert_allclose(np.asarray(ours), np.asarray(reference), atol=1e-6)
    assert np.abs(np.asarray(ours) - x).max() <= 0.1 + 1e-6


def test_cw_l2_fools_a_standard_model_with_less_distortion_than_pgd(digits_model):
    logits_fn, x, y = digits_model
    correct = ~_fooled(logits_fn, x, y)
    result = cw.cw_l2(logits_fn, x, y)
    assert result.x_adv.min() >= 0.0 and result.x_adv.max() <= 1.0
    np.testing.assert_array_equal(result.success, _fooled(logits_fn, result.x_adv, y))
    distortion = np.linalg.norm((result.x_adv - x).reshape(len(x), -1), axis=1)
    np.testing.assert_allclose(result.l2, distortion, atol=1e-4)
    assert result.success[correct].mean() >= 0.95
    # PGD-L2 with a budget that fools as many points leaves larger perturbations.
    pgd_l2 = PGDConfig(epsilon=1.5, step_size=0.15, steps=50, norm="l2")
    x_pgd = np.asarray(pgd(logits_fn, x, y, pgd_l2))
    both = correct & result.success & _fooled(logits_fn, x_pgd, y)
    assert both.mean() >= 0.9
    pgd_distortion = np.linalg.norm((x_pgd - x).reshape(len(x), -1), axis=1)
    assert result.l2[both].mean() < 0.6 * pgd_distortion[both].mean()
    # At a fixed budget the minimal-distortion attack fools about as many points as PGD.
    budget = float(np.median(result.l2[both]))
    x_budget = np.asarray(
        pgd(logits_fn, x, y, PGDConfig(epsilon=budget, step_size=budget / 8, steps=50, norm="l2"))
    )
    pgd_rate = _fooled(logits_fn, x_budget, y)[correct].mean()
    cw_rate = (result.success & (result.l2 <= budget))[correct].mean()
    assert cw_rate >= pgd_rate - 0.1


def test_cw_l2_returns_the_input_where_it_fails():
    rng = np.random.default_rng(0)
    x = rng.random((6, 8, 8, 1), dtype=np.float32)
    y = np.arange(6) % 3
    # Logits that ignore the image: no perturbation can change the prediction.
    fixed = tf.one_hot(y, 3) * 5.0
    result = cw.cw_l2(
        lambda t: fixed + 0.0 * tf.reduce_sum(t), x, y, binary_search_steps=2, max_iterations=20
    )
    assert not result.success.any()
    np.testing.assert_array_equal(result.x_adv, x)
    np.testing.assert_array_equal(result.l2, np.zeros(6))


def test_cw_l2_optimisation_is_one_traced_loop(batch):
    x, y = batch
    model = tiny_model("standard")
    traced = tf.function(
        lambda a, b, c: cw._optimise(
            lambda t: model(t, training=False), a, b, c, 0.0, 0.01, 10, True
        )
    )
    graph = traced.get_concrete_function(
        tf.constant(x), tf.constant(y), tf.constant(np.ones(len(x), np.float32))
    ).graph
    ops = [op.type for op in graph.get_operations()]
    assert ops.count("StatelessWhile") + ops.count("While") == 1


def test_cw_l2_rejects_bad_settings(batch):
    x, y = batch
    with pytest.raises(ValueError, match="binary_search_steps and max_iterations must be >= 1"):
        cw.cw_l2(lambda t: t, x, y, max_iterations=0)
    with pytest.raises(ValueError, match="initial_const and learning_rate must be > 0"):
        cw.cw_l2(lambda t: t, x, y, initial_const=0.0)
