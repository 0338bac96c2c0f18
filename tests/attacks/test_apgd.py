import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_model
from keras_dpnp.attacks.apgd import apgd, apgd_batch_graph, apgd_targeted, checkpoints
from keras_dpnp.attacks.dlr import dlr_loss, targeted_dlr_loss

GENEROUS = {"linf": 0.3, "l2": 3.0}


def _sizes(x, x_adv, norm):
    delta = (x_adv - x).reshape(len(x), -1)
    return np.abs(delta).max(1) if norm == "linf" else np.linalg.norm(delta, axis=1)


def _accuracy(logits_fn, x, y):
    return float(np.mean(np.argmax(logits_fn(x), 1) == y))


def test_checkpoints_follow_the_paper_schedule():
    assert checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]
    assert checkpoints(1000) == [220, 410, 570, 700, 800, 870, 930, 990]
    # Small budgets: windows of at least one iteration.
    assert checkpoints(10) == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert checkpoints(1) == [1]


def test_dlr_loss_matches_hand_computed_values():
    logits = tf.constant([[3.0, 1.0, 2.0, 0.0], [3.0, 1.0, 2.0, 0.0]])
    # Correct point: -(3 - 2) / (3 - 1); misclassified (label 2): -(2 - 3) / (3 - 1).
    np.testing.assert_allclose(dlr_loss(logits, tf.constant([0, 2])), [-0.5, 0.5], rtol=1e-6)
    # Targeted, label 0, target 1: -(3 - 1) / (3 - (1 + 0) / 2); target 2: -(3 - 2) / 2.5.
    np.testing.assert_allclose(
        targeted_dlr_loss(logits, tf.constant([0, 0]), tf.constant([1, 2])), [-0.8, -0.4], rtol=1e-6
    )


def test_dlr_losses_ignore_logit_shift_and_scale():
    logits = tf.random.stateless_normal([6, 10], seed=[1, 2])
    labels = tf.constant([0, 1, 2, 3, 4, 5])
    targets = tf.constant([9, 8, 7, 6, 5, 4])
    moved = 7.0 * logits - 3.0
    np.testing.assert_allclose(dlr_loss(moved, labels), dlr_loss(logits, labels), rtol=1e-4)
    np.testing.assert_allclose(
        targeted_dlr_loss(moved, labels, targets),
        targeted_dlr_loss(logits, labels, targets),
        rtol=1e-4,
    )


def test_dlr_losses_need_enough_classes():
    with pytest.raises(ValueError, match="at least 3 classes"):
        dlr_loss(tf.zeros([2, 2]), tf.constant([0, 1]))
    with pytest.raises(ValueError, match="at least 4 classes"):
        targeted_dlr_loss(tf.zeros([2, 3]), tf.constant([0, 1]), tf.constant([1, 2]))


@pytest.mark.parametrize("norm,epsilon", [("linf", 0.1), ("l2", 0.8)])
@pytest.mark.parametrize("attack", ["ce", "dlr", "targeted"])
def test_apgd_stays_in_the_ball_and_the_box(batch, norm, epsilon, attack):
    x, y = batch
    model = tiny_model("standard")
    logits_fn = lambda t: model(t, training=False)  # noqa: E731
    if attack == "targeted":
        x_adv = apgd_targeted(logits_fn, x, y, epsilon=epsilon, norm=norm, steps=5, num_targets=2)
    else:
        x_adv = apgd(logits_fn, x, y, epsilon=epsilon, norm=norm, loss=attack, steps=5)
    assert _sizes(x, x_adv, norm).max() <= epsilon + 1e-6
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_apgd_breaks_a_standard_model(standard_model, norm):
    logits_fn, x, y = standard_model
    x_ce = apgd(logits_fn, x, y, epsilon=GENEROUS[norm], norm=norm, steps=20)
    assert _accuracy(logits_fn, x_ce, y) <= 0.05
    x_t = apgd_targeted(logits_fn, x, y, epsilon=GENEROUS[norm], norm=norm, steps=20, num_targets=3)
    assert _accuracy(logits_fn, x_t, y) <= 0.05


def test_apgd_beats_its_random_start(standard_model):
    logits_fn, x, y = standard_model
    one_step = apgd(logits_fn, x, y, epsilon=0.1, steps=1, seed=3)
    full = apgd(logits_fn, x, y, epsilon=0.1, steps=50, seed=3)
    assert _accuracy(logits_fn, full, y) < _accuracy(logits_fn, one_step, y)


def test_apgd_is_reproducible_for_a_seed(batch):
    x, y = batch
    model = tiny_model("standard")
    logits_fn = lambda t: model(t, training=False)  # noqa: E731
    first = apgd(logits_fn, x, y, epsilon=0.1, steps=3, seed=5)
    np.testing.assert_array_equal(first, apgd(logits_fn, x, y, epsilon=0.1, steps=3, seed=5))
    assert not np.array_equal(first, apgd(logits_fn, x, y, epsilon=0.1, steps=3, seed=6))


def test_apgd_compiles_once_for_batches_of_any_size(batch):
    x, y = batch
    model = tiny_model("standard")
    run = apgd_batch_graph(
        lambda t: model(t, training=False),
        x.shape[1:],
        epsilon=0.1,
        norm="linf",
        loss="ce",
        steps=3,
        rho=0.75,
    )
    for size in (16, 5, 1):
        run(
            tf.constant(x[:size]),
            tf.constant(y[:size]),
            tf.constant(0),
            tf.constant([0, size], tf.int64),
        )
    assert run.experimental_get_tracing_count() == 1


def test_apgd_rejects_bad_input(batch):
    x, y = batch
    model = tiny_model("standard")
    logits_fn = lambda t: model(t, training=False)  # noqa: E731
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        apgd(logits_fn, x * 255, y, epsilon=0.1)
    with pytest.raises(ValueError, match="labels must be 16 integers"):
        apgd(logits_fn, x, y[:3], epsilon=0.1)
    with pytest.raises(ValueError, match="images must be"):
        apgd(logits_fn, x[..., 0], y, epsilon=0.1)
    with pytest.raises(ValueError, match="loss must be one of"):
        apgd(logits_fn, x, y, epsilon=0.1, loss="hinge")
    with pytest.raises(ValueError, match="epsilon must be > 0"):
        apgd(logits_fn, x, y, epsilon=0.0)
    with pytest.raises(ValueError, match=r"num_targets must be in \[1, 9\]"):
        apgd_targeted(logits_fn, x, y, epsilon=0.1, num_targets=10)
