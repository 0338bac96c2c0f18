import keras
import numpy as np
import pytest
import tensorflow as tf
from cleverhans.tf2.attacks import fast_gradient_method as fgm_module
from cleverhans.tf2.attacks import projected_gradient_descent as pgd_module

from conftest import tiny_model
from keras_dpnp.attacks import cleverhans_attacks


def _two_class_linear_model(pixels, seed=0):
    weights = tf.constant(np.random.default_rng(seed).normal(size=(pixels, 2)), tf.float32)
    return lambda x: tf.matmul(tf.reshape(x, [tf.shape(x)[0], -1]), weights)


def _spy(monkeypatch, module, name):
    calls = []
    original = getattr(module, name)

    def recorder(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, recorder)
    return calls


def test_every_call_passes_true_labels_random_start_and_the_unit_box(monkeypatch, batch):
    x, y = batch
    model = tiny_model("standard")
    logits_fn = lambda t: model(t, training=False)  # noqa: E731
    pgd_calls = _spy(monkeypatch, pgd_module, "projected_gradient_descent")
    fgm_calls = _spy(monkeypatch, fgm_module, "fast_gradient_method")
    cleverhans_attacks.pgd(logits_fn, x, y, epsilon=0.1, step_size=0.03, steps=2)
    cleverhans_attacks.fgsm(logits_fn, x, y, epsilon=0.1)
    for kwargs in (pgd_calls[0], fgm_calls[-1]):
        np.testing.assert_array_equal(np.asarray(kwargs["y"]), y)
        assert (kwargs["clip_min"], kwargs["clip_max"]) == (0.0, 1.0)
        assert kwargs["targeted"] is False
        assert kwargs["sanity_checks"] is False
    assert pgd_calls[0]["rand_init"] is True and pgd_calls[0]["rand_minmax"] == 0.1


def test_fgsm_moves_against_the_true_label_not_the_prediction():
    # Two classes, linear logits: the true-label step and the label-leaking step are opposite.
    x = np.full((64, 4, 4, 1), 0.5, np.float32) + np.random.default_rng(1).uniform(
        -0.3, 0.3, (64, 4, 4, 1)
    ).astype(np.float32)
    logits_fn = _two_class_linear_model(16)
    predicted = np.argmax(logits_fn(x).numpy(), axis=1)
    wrong = 1 - predicted
    x_adv = cleverhans_attacks.fgsm(logits_fn, x, wrong, epsilon=0.1).numpy()
    with tf.GradientTape() as tape:
        xt = tf.constant(x)
        tape.watch(xt)
        loss = tf.reduce_sum(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=wrong, logits=logits_fn(xt))
        )
    direction = np.sign(tape.gradient(loss, xt).numpy())
    np.testing.assert_allclose(x_adv, np.clip(x + 0.1 * direction, 0, 1), atol=1e-6)
    leaked = np.clip(x - 0.1 * direction, 0, 1)
    assert np.abs(x_adv - leaked).max() > 0.15


@pytest.mark.parametrize("norm,epsilon,step", [("linf", 0.1, 0.03), ("l2", 0.5, 0.2)])
def test_results_stay_in_the_epsilon_ball_and_the_unit_box(batch, norm, epsilon, step):
    x, y = batch
    model = tiny_model("standard")
    logits_fn = lambda t: model(t, training=False)  # noqa: E731
    for x_adv in (
        cleverhans_attacks.fgsm(logits_fn, x, y, epsilon=epsilon, norm=norm),
        cleverhans_attacks.pgd(
            logits_fn, x, y, epsilon=epsilon, step_size=step, steps=3, norm=norm, seed=0
        ),
    ):
        delta = (np.asarray(x_adv) - x).reshape(len(x), -1)
        size = np.abs(delta).max(1) if norm == "linf" else np.linalg.norm(delta, axis=1)
        assert size.max() <= epsilon + 1e-5
        assert np.asarray(x_adv).min() >= 0.0 and np.asarray(x_adv).max() <= 1.0
        assert size.max() > epsilon / 2


def test_pgd_starts_at_a_seeded_random_point(batch):
    x, y = batch
    model = tiny_model("standard")
    logits_fn = lambda t: model(t, training=False)  # noqa: E731

    def attack(seed):
        return cleverhans_attacks.pgd(
            logits_fn, x, y, epsilon=0.2, step_size=0.02, steps=2, seed=seed
        ).numpy()

    first, again, other = attack(1), attack(1), attack(2)
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).max() > 0.05


def test_pgd_lowers_the_accuracy_of_a_trained_model():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(0.2, 0.8, (128, 8, 8, 1)).astype(np.float32)
    y = (x[:, :4].mean(axis=(1, 2, 3)) > x[:, 4:].mean(axis=(1, 2, 3))).astype(np.int64)
    model = tiny_model("standard")
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(x, y, epochs=30, batch_size=32, verbose=0)
    logits_fn = lambda t: model(t, training=False)  # noqa: E731
    clean = np.mean(np.argmax(logits_fn(x), 1) == y)
    x_adv = cleverhans_attacks.pgd(logits_fn, x, y, epsilon=0.1, step_size=0.025, steps=10, seed=0)
    assert clean > 0.8
    assert np.mean(np.argmax(logits_fn(x_adv), 1) == y) < clean - 0.3


def test_bad_inputs_get_clear_errors(batch):
    x, y = batch
    logits_fn = _two_class_linear_model(64)
    with pytest.raises(ValueError, match="labels are required"):
        cleverhans_attacks.fgsm(logits_fn, x, None, epsilon=0.1)
    with pytest.raises(ValueError, match=r"images must be float pixels in \[0, 1\]"):
        cleverhans_attacks.fgsm(logits_fn, x * 255, y, epsilon=0.1)
    with pytest.raises(ValueError, match="one per image"):
        cleverhans_attacks.fgsm(logits_fn, x, y[:3], epsilon=0.1)
    with pytest.raises(ValueError, match="norm must be one of"):
        cleverhans_attacks.fgsm(logits_fn, x, y, epsilon=0.1, norm="l1")
    with pytest.raises(ValueError, match="step_size must be in"):
        cleverhans_attacks.pgd(logits_fn, x, y, epsilon=0.1, step_size=0.2, steps=3)
