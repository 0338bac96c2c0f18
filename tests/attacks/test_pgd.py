import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_model
from keras_dpnp import losses
from keras_dpnp.attacks.pgd import PGDConfig, pgd, random_start


@pytest.mark.parametrize("norm,epsilon,step", [("linf", 0.1, 0.03), ("l2", 0.5, 0.2)])
@pytest.mark.parametrize("objective", ["ce", "kl", "margin"])
def test_pgd_stays_in_the_ball_and_the_box(batch, norm, epsilon, step, objective):
    x, y = batch
    model = tiny_model("standard")
    config = PGDConfig(epsilon=epsilon, step_size=step, steps=5, norm=norm, objective=objective)
    x_adv = np.asarray(pgd(lambda t: model(t, training=False), x, y, config))
    delta = (x_adv - x).reshape(len(x), -1)
    size = np.abs(delta).max(1) if norm == "linf" else np.linalg.norm(delta, axis=1)
    assert size.max() <= epsilon + 1e-5
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0


@pytest.mark.parametrize("norm,epsilon,step", [("linf", 0.1, 0.03), ("l2", 1.0, 0.3)])
def test_pgd_raises_the_loss(batch, norm, epsilon, step):
    x, y = batch
    model = tiny_model("standard")
    logits_fn = lambda t: model(t, training=False)  # noqa: E731
    config = PGDConfig(epsilon=epsilon, step_size=step, steps=10, norm=norm)
    clean = float(losses.cross_entropy(logits_fn(x), y))
    attacked = float(losses.cross_entropy(logits_fn(pgd(logits_fn, x, y, config)), y))
    assert attacked > clean + 0.05


def test_pgd_leaves_batchnorm_statistics_alone(batch):
    x, y = batch
    model = tiny_model("standard")
    before = [np.array(v) for v in model.backbone.non_trainable_variables]
    model.adversarial_examples(x, y)
    for a, b in zip(before, model.backbone.non_trainable_variables):
        np.testing.assert_array_equal(a, np.asarray(b))


def test_pgd_is_one_while_loop_in_the_graph(batch):
    x, y = batch
    model = tiny_model("standard")
    config = PGDConfig(epsilon=0.1, step_size=0.03, steps=7)
    traced = tf.function(lambda a, b: pgd(lambda t: model(t, training=False), a, b, config))
    graph = traced.get_concrete_function(tf.constant(x), tf.constant(y)).graph
    ops = [op.type for op in graph.get_operations()]
    assert ops.count("StatelessWhile") + ops.count("While") == 1


def test_bad_attack_configs_are_rejected():
    with pytest.raises(ValueError, match="epsilon must be >= 0"):
        PGDConfig(epsilon=-0.1)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        PGDConfig(steps=0)
    with pytest.raises(ValueError, match="norm must be one of"):
        PGDConfig(norm="l1")
    with pytest.raises(ValueError, match="start must be one of .*small_normal.*got 'zero'"):
        PGDConfig(start="zero")


@pytest.mark.parametrize("norm,epsilon", [("linf", 0.1), ("l2", 0.5)])
def test_the_two_random_starts(norm, epsilon):
    x = tf.fill([512, 8, 8, 1], 0.5)
    uniform = np.asarray(random_start(x, epsilon, norm) - x).reshape(512, -1)
    small = np.asarray(random_start(x, epsilon, norm, start="small_normal") - x).reshape(512, -1)
    if norm == "linf":  # uniform in [-ε, ε] per pixel: mean |δ| = ε / 2
        assert np.abs(uniform).mean() == pytest.approx(epsilon / 2, rel=0.02)
        assert np.abs(uniform).max() <= epsilon + 1e-6
    else:  # uniform in the L2 ball of 64 pixels: mean radius 64/65 ε
        assert np.linalg.norm(uniform, axis=1).mean() == pytest.approx(epsilon * 64 / 65, rel=0.02)
    assert small.std() == pytest.approx(0.001, rel=0.02) and abs(small.mean()) < 1e-4


def test_pgd_starts_where_its_config_says(batch):
    x, y = batch
    model = tiny_model("standard")
    logits_fn = lambda t: model(t, training=False)  # noqa: E731
    sizes = {}
    for start in ("uniform", "small_normal"):  # one tiny step: the start shows through
        config = PGDConfig(epsilon=0.3, step_size=1e-6, steps=1, start=start)
        sizes[start] = float(np.abs(np.asarray(pgd(logits_fn, x, y, config)) - x).mean())
    assert sizes["small_normal"] < 0.002 < 0.1 < sizes["uniform"]
