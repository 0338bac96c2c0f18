import numpy as np
import pytest
import tensorflow as tf

from keras_dpnp.evaluation import diagnostics


def _sweep(*pairs):
    return [{"epsilon": e, "accuracy": a} for e, a in pairs]


def test_noise_tolerance_shrinks_with_points_down_to_one_percent():
    assert diagnostics.noise_tolerance(100) == pytest.approx(0.1)
    assert diagnostics.noise_tolerance(400) == pytest.approx(0.05)
    assert diagnostics.noise_tolerance(10**6) == pytest.approx(0.01)


def test_epsilon_sweep_check():
    falling = _sweep((0, 0.9), (0.1, 0.5), (0.2, 0.52), (0.5, 0.0))
    assert diagnostics.epsilon_sweep_check(falling, 0.5, 0.0, tolerance=0.05).passed
    rising = _sweep((0, 0.9), (0.1, 0.5), (0.2, 0.7), (0.5, 0.0))
    check = diagnostics.epsilon_sweep_check(rising, 0.5, 0.0, tolerance=0.05)
    assert check.passed is False and "from ε=0.1 to 0.2" in check.detail
    stuck = _sweep((0, 0.9), (0.2, 0.5), (0.5, 0.3))
    check = diagnostics.epsilon_sweep_check(stuck, 0.5, 0.3, tolerance=0.05)
    assert check.passed is False and "30.0 % still correct at ε=0.5" in check.detail


def test_stronger_attacks_fgsm_and_black_box_checks():
    assert diagnostics.stronger_attacks_check("PGD-20", 0.40, {"PGD-100": 0.44}, 0.05).passed
    check = diagnostics.stronger_attacks_check("PGD-20", 0.40, {"PGD-100": 0.50}, 0.05)
    assert check.passed is False and "PGD-100 50.0 % > PGD-20 40.0 %" in check.detail
    assert diagnostics.fgsm_check(0.50, 0.40, 0.05).passed
    assert diagnostics.fgsm_check(0.30, 0.40, 0.05).passed is False
    assert diagnostics.black_box_check(0.45, 0.40, 0.05).passed
    assert diagnostics.black_box_check(0.20, 0.40, 0.05).passed is False
    assert diagnostics.black_box_check(None, None, 0.05).passed is None


def test_gradient_statistics_of_honest_quantised_and_saturated_functions():
    rng = np.random.default_rng(0)
    x = rng.random((20, 4, 4, 1), dtype=np.float32)
    y = rng.integers(0, 3, 20)
    weights = tf.constant(rng.normal(size=(16, 3)), tf.float32)

    def linear(t):
        return tf.matmul(tf.reshape(t, [-1, 16]), weights)

    honest = diagnostics.gradient_statistics(linear, x, y, batch_size=8)
    assert honest["zero_gradient_fraction"] == 0.0 and honest["saturated_fraction"] == 0.0
    logits = linear(x).numpy()
    top2 = np.sort(logits, axis=1)[:, ::-1][:, :2]
    assert honest["mean_max_logit"] == pytest.approx(top2[:, 0].mean(), rel=1e-5)
    gap = (top2[:, 0] - top2[:, 1]).mean()
    assert honest["mean_logit_gap"] == pytest.approx(gap, rel=1e-5)
    # tf.round has no gradient at all (None): it must read as "exactly zero", not crash.
    rounded = diagnostics.gradient_statistics(lambda t: linear(tf.round(t)), x, y)
    assert rounded["zero_gradient_fraction"] == 1.0
    predicted = np.argmax(logits, axis=1)
    saturated = diagnostics.gradient_statistics(lambda t: 1e4 * linear(t), x, predicted)
    assert saturated["saturated_fraction"] >= 0.9
    assert saturated["zero_gradient_fraction"] >= 0.9


def test_masking_checks_read_a_results_dict_and_summarise_failures():
    results = {
        "points": 400,
        "attacks": [
            {"name": "clean", "accuracy": 0.9},
            {"name": "fgsm", "accuracy": 0.2},
            {"name": "pgd", "accuracy": 0.4},
        ],
        "epsilon_sweep": {
            "points": _sweep((0, 0.9), (0.2, 0.4), (0.5, 0.0)),
            "large_epsilon": 0.5,
            "large_epsilon_accuracy": 0.0,
        },
        "pgd_strength": {"PGD-100": 0.39, "PGD-20 × 5": 0.38},
        "gradients": {
            "zero_gradient_fraction": 0.0,
            "mean_max_logit": 5.0,
            "mean_logit_gap": 3.0,
            "saturated_fraction": 0.0,
        },
    }
    checks = diagnostics.masking_checks(results)
    verdicts = {check.name: check.passed for check in checks}
    assert verdicts == {
        "accuracy falls with ε to ≈ 0": True,
        "more steps/restarts do not help the model": True,
        "FGSM ≥ PGD": False,
        "black-box ≥ white-box": None,
        "input gradients are not zero": True,
        "softmax is not saturated": True,
    }
    summary = diagnostics.summarise(checks)
    assert summary["passed"] is False
    assert summary["warnings"] == [
        "possible gradient masking: FGSM 20.0 % below PGD 40.0 % (check: FGSM ≥ PGD)"
    ]


def test_pgd_far_above_autoattack_on_the_same_points_is_flagged():
    # pgd_at on Fashion-MNIST: PGD-20 66.2 % and AutoAttack 65.0 % on 1,000 points.
    assert diagnostics.pgd_autoattack_check(0.662, 0.650, 0.0316).passed
    check = diagnostics.pgd_autoattack_check(0.627, 0.542, 0.0316)
    assert check.passed is False and "PGD-20 62.7 % against AutoAttack 54.2 %" in check.detail
    results = {
        "points": 10000,
        "attacks": [{"name": "pgd", "accuracy": 0.60}],
        "autoattack": {"points": 1000, "robust_accuracy": 0.54, "pgd_accuracy_on_subset": 0.63},
    }
    flagged = [c for c in diagnostics.masking_checks(results) if c.name == "PGD-20 ≈ AutoAttack"]
    assert [c.numbers["pgd"] for c in flagged] == [0.63] and flagged[0].passed is False
    on_every_point = {**results, "autoattack": {"points": 10000, "robust_accuracy": 0.59}}
    checks = diagnostics.masking_checks(on_every_point)
    assert [c.passed for c in checks if c.name == "PGD-20 ≈ AutoAttack"] == [True]
