"""Gradient-masking diagnostics (SPEC §5): each check keeps its numbers and a verdict.

A model that hides its gradients (quantised inputs, saturated softmax, shattered or
stochastic gradients) looks robust to gradient attacks without being robust. The signs, after
Athalye et al. (2018) and Carlini et al. (2019): accuracy that does not fall to chance as ε
grows, stronger attacks that do no better, one step beating many, a black-box attack beating
the white-box ones, gradients that are exactly zero, and logits so large that softmax saturates;
and, after Croce & Hein (2020), PGD-20 far above AutoAttack on the same points.
"""

import dataclasses
import math

import numpy as np
import tensorflow as tf

# Above this top-2 logit gap exp(−gap) is below float32's smallest normal number, so the
# cross-entropy gradient underflows to zero.
SATURATION_GAP = 80.0
LARGE_EPSILON_CEILING = 0.05
ZERO_GRADIENT_LIMIT = 0.01
SATURATED_LIMIT = 0.01


@dataclasses.dataclass(frozen=True)
class Check:
    """One diagnostic: `passed` is None when what it needs was not measured."""

    name: str
    passed: bool | None
    numbers: dict
    detail: str

    def to_dict(self):
        return dataclasses.asdict(self)


def noise_tolerance(points):
    """How much one attack's accuracy may exceed a stronger one's by chance: two binomial
    standard errors at p = ½ (at least one point in a hundred)."""
    return max(0.01, 1.0 / math.sqrt(max(points, 1)))


def gradient_statistics(logits_fn, images, labels, batch_size=256):
    """Fraction of points whose cross-entropy input gradient is exactly zero, and logit scale.

    Returns `zero_gradient_fraction`, `mean_max_logit`, `mean_logit_gap` (top-1 minus top-2)
    and `saturated_fraction` (gap above `SATURATION_GAP`).
    """

    @tf.function(reduce_retracing=True)
    def batch_stats(x, y):
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = tf.cast(logits_fn(x), tf.float32)
            loss = tf.reduce_sum(
                tf.nn.sparse_softmax_cross_entropy_with_logits(
                    labels=tf.cast(y, tf.int32), logits=logits
                )
            )
        grad = tape.gradient(loss, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        flat = tf.reshape(grad, [tf.shape(x)[0], -1])
        zero = tf.reduce_all(tf.equal(flat, 0.0), axis=1)
        top2 = tf.math.top_k(logits, k=2).values
        return zero, top2[:, 0], top2[:, 0] - top2[:, 1]

    zero, top, gap = [], [], []
    for start in range(0, len(images), batch_size):
        z, t, g = batch_stats(
            tf.constant(images[start : start + batch_size]),
            tf.constant(labels[start : start + batch_size]),
        )
        zero.append(z.numpy())
        top.append(t.numpy())
        gap.append(g.numpy())
    zero, top, gap = (np.concatenate(parts) for parts in (zero, top, gap))
    return {
        "zero_gradient_fraction": float(zero.mean()),
        "mean_max_logit": float(top.mean()),
        "mean_logit_gap": float(gap.mean()),
        "saturated_fraction": float((gap > SATURATION_GAP).mean()),
    }


def epsilon_sweep_check(sweep, large_epsilon, large_accuracy, tolerance):
    """Accuracy must not rise with ε (beyond noise) and must be ≈ 0 at a large ε."""
    accuracies = [point["accuracy"] for point in sweep]
    rises = [
        (a["epsilon"], b["epsilon"])
        for a, b in zip(sweep, sweep[1:])
        if b["accuracy"] > a["accuracy"] + tolerance
    ]
    near_zero = large_accuracy <= LARGE_EPSILON_CEILING
    detail = []
    if rises:
        detail.append("accuracy rises from ε=" + ", ".join(f"{a:.4g} to {b:.4g}" for a, b in rises))
    if not near_zero:
        detail.append(
            f"{100 * large_accuracy:.1f} % still correct at ε={large_epsilon:.4g} "
            f"(expected ≤ {100 * LARGE_EPSILON_CEILING:.0f} %)"
        )
    return Check(
        "accuracy falls with ε to ≈ 0",
        not rises and near_zero,
        {
            "epsilons": [p["epsilon"] for p in sweep],
            "accuracies": accuracies,
            "large_epsilon": large_epsilon,
            "large_epsilon_accuracy": large_accuracy,
        },
        "; ".join(detail) or "non-increasing, and ≈ 0 at the large ε",
    )


def stronger_attacks_check(baseline_name, baseline, stronger, tolerance):
    """More steps or restarts must not raise accuracy above `baseline` (beyond noise)."""
    worse = {name: acc for name, acc in stronger.items() if acc > baseline + tolerance}
    detail = ", ".join(
        f"{name} {100 * acc:.1f} % > {baseline_name} {100 * baseline:.1f} %"
        for name, acc in worse.items()
    )
    return Check(
        "more steps/restarts do not help the model",
        not worse,
        {baseline_name: baseline, **stronger, "tolerance": tolerance},
        detail or f"none above {baseline_name} + {100 * tolerance:.1f} points",
    )


def pgd_autoattack_check(pgd, autoattack, tolerance):
    """PGD-20 must not read far above AutoAttack on the same points: a short attack that
    overstates robustness is the sign of a loss surface PGD climbs poorly."""
    passed = pgd <= autoattack + tolerance
    return Check(
        "PGD-20 ≈ AutoAttack",
        passed,
        {"pgd": pgd, "autoattack": autoattack, "tolerance": tolerance},
        ""
        if passed
        else f"PGD-20 {100 * pgd:.1f} % against AutoAttack {100 * autoattack:.1f} % on the same "
        "points: report AutoAttack, not PGD, for this model",
    )


def fgsm_check(fgsm, pgd, tolerance):
    """One step (FGSM) must not beat many (PGD)."""
    passed = fgsm >= pgd - tolerance
    return Check(
        "FGSM ≥ PGD",
        passed,
        {"fgsm": fgsm, "pgd": pgd, "tolerance": tolerance},
        "" if passed else f"FGSM {100 * fgsm:.1f} % below PGD {100 * pgd:.1f} %",
    )


def black_box_check(black_box, white_box, tolerance):
    """A black-box attack (Square) must not beat the white-box ones on the same points."""
    if black_box is None:
        return Check("black-box ≥ white-box", None, {}, "not measured in this suite")
    passed = black_box >= white_box - tolerance
    return Check(
        "black-box ≥ white-box",
        passed,
        {"square": black_box, "white_box": white_box, "tolerance": tolerance},
        "" if passed else f"Square {100 * black_box:.1f} % below white-box {100 * white_box:.1f} %",
    )


def zero_gradient_check(fraction):
    """At most `ZERO_GRADIENT_LIMIT` of the points may have an exactly zero input gradient."""
    passed = fraction <= ZERO_GRADIENT_LIMIT
    return Check(
        "input gradients are not zero",
        passed,
        {"zero_gradient_fraction": fraction},
        "" if passed else f"{100 * fraction:.1f} % of points have an exactly zero input gradient",
    )


def logit_scale_check(stats):
    """At most `SATURATED_LIMIT` of the points may have a top-2 logit gap past saturation."""
    fraction = stats["saturated_fraction"]
    passed = fraction <= SATURATED_LIMIT
    numbers = {
        key: stats[key] for key in ("mean_max_logit", "mean_logit_gap", "saturated_fraction")
    }
    return Check(
        "softmax is not saturated",
        passed,
        numbers,
        ""
        if passed
        else f"{100 * fraction:.1f} % of points have a top-2 logit gap "
        f"above {SATURATION_GAP:g}, where cross-entropy gradients "
        f"underflow",
    )


def masking_checks(results):
    """All checks whose inputs a robustness results dict holds (see `evaluate_robustness`)."""
    accuracy = {row["name"]: row["accuracy"] for row in results["attacks"]}
    tolerance = noise_tolerance(results["points"])
    checks = []
    sweep = results.get("epsilon_sweep")
    if sweep:
        checks.append(
            epsilon_sweep_check(
                sweep["points"], sweep["large_epsilon"], sweep["large_epsilon_accuracy"], tolerance
            )
        )
    strength = results.get("pgd_strength")
    if strength:
        checks.append(stronger_attacks_check("PGD-20", accuracy["pgd"], strength, tolerance))
    if "fgsm" in accuracy and "pgd" in accuracy:
        checks.append(fgsm_check(accuracy["fgsm"], accuracy["pgd"], tolerance))
    autoattack = results.get("autoattack")
    if autoattack and "pgd" in accuracy:
        pgd = autoattack.get("pgd_accuracy_on_subset", accuracy["pgd"])  # absent: all points
        checks.append(
            pgd_autoattack_check(
                pgd, autoattack["robust_accuracy"], noise_tolerance(autoattack["points"])
            )
        )
    square = results.get("square", {})
    checks.append(
        black_box_check(
            square.get("accuracy"),
            square.get("white_box_accuracy"),
            noise_tolerance(square.get("points", 0)),
        )
    )
    stats = results.get("gradients")
    if stats:
        checks.append(zero_gradient_check(stats["zero_gradient_fraction"]))
        checks.append(logit_scale_check(stats))
    return checks


def summarise(checks):
    """The diagnostics entry of a report: the checks, a verdict and the warning lines."""
    failed = [check for check in checks if check.passed is False]
    return {
        "passed": not failed,
        "checks": [check.to_dict() for check in checks],
        "warnings": [
            f"possible gradient masking: {check.detail} (check: {check.name})" for check in failed
        ],
    }
