import numpy as np
import pytest
import tensorflow as tf
from scipy import optimize

from conftest import tiny_model
from keras_dpnp.attacks.apgd import apgd
from keras_dpnp.attacks.fab import fab_targeted, hyperplane_step

GENEROUS = {"linf": 0.3, "l2": 3.0}


def _sizes(delta, norm):
    delta = np.reshape(delta, (len(delta), -1))
    return np.abs(delta).max(1) if norm == "linf" else np.linalg.norm(delta, axis=1)


def _step(points, w, b, norm):
    return hyperplane_step(
        tf.constant(points, tf.float32),
        tf.constant(w, tf.float32),
        tf.constant(b, tf.float32),
        norm,
    ).numpy()


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_hyperplane_step_matches_hand_computed_cases(norm):
    points = [[0.5, 0.5], [0.1, 0.5], [0.5, 0.5], [0.5, 0.5], [0.2, 0.9]]
    w = [[1.0, 1.0], [1.0, 1.0], [2.0, 1.0], [1.0, 1.0], [1.0, -1.0]]
    # Plain projection; the box stops x₀ at 0; weights differ and the box binds; the plane
    # lies beyond the box (both coordinates go to their bound); the plane is on the other side.
    b = [0.5, 0.2, 0.0, -1.0, 0.0]
    expected = {
        "linf": [[-0.25, -0.25], [-0.1, -0.3], [-0.5, -0.5], [-0.5, -0.5], [0.35, -0.35]],
        "l2": [[-0.25, -0.25], [-0.1, -0.3], [-0.5, -0.5], [-0.5, -0.5], [0.35, -0.35]],
    }[norm]
    np.testing.assert_allclose(_step(points, w, b, norm), expected, atol=1e-6)


def test_hyperplane_step_l2_follows_the_weights_when_the_box_is_slack():
    # Minimum-norm step onto 2·x₀ + x₁ = 1.25 from (0.5, 0.5): −0.25 · (2, 1) / 5.
    np.testing.assert_allclose(
        _step([[0.5, 0.5]], [[2.0, 1.0]], [1.25], "l2"), [[-0.1, -0.05]], atol=1e-6
    )


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_hyperplane_step_is_the_smallest_feasible_step(norm):
    rng = np.random.default_rng(1)
    points = rng.random((12, 6))
    w = rng.normal(size=(12, 6))
    w[0, :3] = 0.0
    b = np.sum(w * rng.random((12, 6)), axis=1)  # planes that cross the box
    steps = _step(points, w, b, norm)
    np.testing.assert_allclose(np.sum(w * (points + steps), axis=1), b, atol=1e-4)
    assert (points + steps).min() >= -1e-6 and (points + steps).max() <= 1 + 1e-6
    for p, wi, bi, step in zip(points, w, b, steps):
        bounds = list(zip(-p, 1 - p))
        if norm == "linf":
            # min t  s.t.  |δ_i| <= t,  w·δ = b − w·p,  box; variables (δ, t).
            n = len(p)
            upper = np.block([[np.eye(n), -np.ones((n, 1))], [-np.eye(n), -np.ones((n, 1))]])
            best = optimize.linprog(
                np.r_[np.zeros(n), 1.0],
                A_ub=upper,
                b_ub=np.zeros(2 * n),
                A_eq=np.r_[wi, 0.0][None],
                b_eq=[bi - wi @ p],
                bounds=bounds + [(0, None)],
            ).fun
        else:
            best = np.sqrt(
                optimize.minimize(
                    lambda d: d @ d,
                    np.zeros_like(p),
                    jac=lambda d: 2 * d,
                    method="SLSQP",
                    bounds=bounds,
                    constraints={"type": "eq", "fun": lambda d, w=wi, p=p, b=bi: w @ (p + d) - b},
                    options={"ftol": 1e-12},
                ).fun
            )
        assert _sizes(step[None], norm)[0] <= best + 1e-4


@pytest.mark.parametrize("norm,epsilon", [("linf", 0.1), ("l2", 0.8)])
def test_fab_stays_in_the_ball_and_the_box(batch, norm, epsilon):
    x, y = batch
    model = tiny_model("standard")
    x_adv = fab_targeted(
        lambda t: model(t, training=False), x, y, epsilon=epsilon, norm=norm, steps=5, num_targets=2
    )
    assert _sizes(x_adv - x, norm).max() <= epsilon + 1e-6
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_fab_breaks_a_standard_model_with_small_perturbations(standard_model, norm):
    logits_fn, x, y = standard_model
    epsilon = GENEROUS[norm]
    x_fab = fab_targeted(logits_fn, x, y, epsilon=epsilon, norm=norm, steps=20, num_targets=3)
    fooled = np.argmax(logits_fn(x_fab), 1) != y
    assert fooled.mean() >= 0.95
    # FAB minimises the perturbation; APGD uses the whole budget.
    x_apgd = apgd(logits_fn, x, y, epsilon=epsilon, norm=norm, steps=20)
    assert np.median(_sizes(x_fab - x, norm)[fooled]) < 0.6 * epsilon
    assert np.median(_sizes(x_fab - x, norm)) < np.median(_sizes(x_apgd - x, norm))


def test_fab_returns_the_clean_image_where_it_fails(standard_model):
    logits_fn, x, y = standard_model
    x_adv = fab_targeted(logits_fn, x, y, epsilon=0.01, steps=10, num_targets=2)
    np.testing.assert_array_equal(x_adv, x)


def test_fab_rejects_bad_input(batch):
    x, y = batch
    model = tiny_model("standard")
    logits_fn = lambda t: model(t, training=False)  # noqa: E731
    with pytest.raises(ValueError, match="norm must be one of"):
        fab_targeted(logits_fn, x, y, epsilon=0.1, norm="l1")
    with pytest.raises(ValueError, match=r"num_targets must be in \[1, 9\]"):
        fab_targeted(logits_fn, x, y, epsilon=0.1, num_targets=0)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        fab_targeted(logits_fn, x, y, epsilon=0.1, steps=0)
