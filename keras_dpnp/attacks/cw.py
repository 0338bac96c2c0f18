"""Carlini–Wagner attacks: CW∞ (PGD on the margin loss) and the CW-L2 optimisation attack."""

import dataclasses

import numpy as np
import tensorflow as tf

from keras_dpnp import losses
from keras_dpnp.attacks.pgd import PGDConfig, pgd

ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON = 0.9, 0.999, 1e-8
# Keeps arctanh finite for pixels at exactly 0 or 1.
TANH_LIMIT = 1 - 1e-6


def cw_linf(
    logits_fn, x, labels, *, epsilon, steps=30, step_size=None, norm="linf", seed_generator=None
):
    """CW∞ as adversarial-training papers report it: PGD on `max_{k≠y} l_k − l_y`, random start.

    The step defaults to `2.5 ε / steps`.
    """
    config = PGDConfig(
        epsilon=epsilon,
        step_size=step_size or 2.5 * epsilon / steps,
        steps=steps,
        norm=norm,
        objective="margin",
    )
    return pgd(logits_fn, x, labels, config, seed_generator=seed_generator)


@dataclasses.dataclass(frozen=True, eq=False)
class CWL2Result:
    """Per point: the adversarial image (the input itself where the attack failed), whether it
    succeeded, and its L2 distortion (0 where it failed)."""

    x_adv: np.ndarray
    success: np.ndarray
    l2: np.ndarray


def _margin_terms(logits, labels, confidence):
    true, rival = losses.true_and_rival_logits(logits, labels)
    hinge = tf.nn.relu(true - rival + confidence)
    return hinge, rival > true + confidence


def _optimise(logits_fn, x, labels, const, confidence, learning_rate, iterations, abort_early):
    """Adam on `‖x' − x‖² + c · max(l_y − max_{k≠y} l_k, −κ)` in tanh space, one while loop.

    Returns the smallest squared distortion among successful iterates and that iterate, per
    point (infinity and the input where none succeeded).
    """
    axes = list(range(1, len(x.shape)))
    w_start = tf.atanh(tf.clip_by_value(2.0 * x - 1.0, -TANH_LIMIT, TANH_LIMIT))
    check_every = max(iterations // 10, 1)

    def body(i, w, m, v, best_l2, best_adv, previous, stalled):
        with tf.GradientTape() as tape:
            tape.watch(w)
            x_adv = (tf.tanh(w) + 1.0) / 2.0
            l2 = tf.reduce_sum(tf.square(x_adv - x), axis=axes)
            hinge, success = _margin_terms(logits_fn(x_adv), labels, confidence)
            loss = tf.reduce_sum(l2 + const * hinge)
        grad = tape.gradient(loss, w)
        improved = success & (l2 < best_l2)
        best_l2 = tf.where(improved, l2, best_l2)
        best_adv = tf.where(tf.reshape(improved, [-1] + [1] * (len(x.shape) - 1)), x_adv, best_adv)
        t = tf.cast(i + 1, tf.float32)
        m = ADAM_BETA1 * m + (1 - ADAM_BETA1) * grad
        v = ADAM_BETA2 * v + (1 - ADAM_BETA2) * tf.square(grad)
        step = (
            learning_rate
            * (m / (1 - ADAM_BETA1**t))
            / (tf.sqrt(v / (1 - ADAM_BETA2**t)) + ADAM_EPSILON)
        )
        checkpoint = abort_early & tf.equal((i + 1) % check_every, 0)
        stalled = checkpoint & (loss > 0.9999 * previous)
        previous = tf.where(checkpoint, loss, previous)
        return i + 1, w - step, m, v, best_l2, best_adv, previous, stalled

    n = tf.shape(x)[0]
    start = (
        tf.constant(0),
        w_start,
        tf.zeros_like(x),
        tf.zeros_like(x),
        tf.fill([n], np.inf),
        x,
        tf.constant(np.inf),
        tf.constant(False),
    )
    result = tf.while_loop(
        lambda i, *rest: (i < iterations) & tf.logical_not(rest[-1]), body, start
    )
    return result[4], result[5]


def cw_l2(
    logits_fn,
    x,
    labels,
    *,
    confidence=0.0,
    initial_const=0.1,
    binary_search_steps=6,
    max_iterations=200,
    learning_rate=0.05,
    abort_early=True,
    batch_size=256,
):
    """The Carlini–Wagner L2 attack (untargeted), batched, each optimisation one traced loop.

    Minimises `‖x' − x‖² + c · max(l_y − max_{k≠y} l_k, −κ)` over `x' = (tanh(w) + 1) / 2`
    (always inside [0, 1]) with Adam, and binary-searches the constant `c` per point: halved
    towards the last failure after a success, ×10 until a first success. Keeps, per point, the
    successful example of least L2 distortion.
    """
    if binary_search_steps < 1 or max_iterations < 1:
        raise ValueError(
            f"binary_search_steps and max_iterations must be >= 1, got "
            f"{binary_search_steps} and {max_iterations}"
        )
    if initial_const <= 0 or learning_rate <= 0 or confidence < 0:
        raise ValueError("initial_const and learning_rate must be > 0 and confidence >= 0")
    x = np.asarray(x, np.float32)
    labels = np.asarray(labels, np.int64)
    optimise = tf.function(
        lambda xb, yb, c: _optimise(
            logits_fn,
            xb,
            yb,
            c,
            float(confidence),
            float(learning_rate),
            int(max_iterations),
            bool(abort_early),
        ),
        reduce_retracing=True,
    )
    best_l2 = np.full(len(x), np.inf, np.float32)
    x_adv = x.copy()
    for start in range(0, len(x), batch_size):
        part = slice(start, start + batch_size)
        xb, yb = x[part], labels[part]
        const = np.full(len(xb), initial_const, np.float32)
        lower = np.zeros(len(xb), np.float32)
        upper = np.full(len(xb), np.inf, np.float32)
        for _ in range(binary_search_steps):
            l2, adv = optimise(tf.constant(xb), tf.constant(yb), tf.constant(const))
            l2, adv = l2.numpy(), adv.numpy()
            found = np.isfinite(l2)
            better = found & (l2 < best_l2[part])
            best_l2[part] = np.where(better, l2, best_l2[part])
            x_adv[part][better] = adv[better]
            upper = np.where(found, np.minimum(upper, const), upper)
            lower = np.where(found, lower, np.maximum(lower, const))
            const = np.where(np.isfinite(upper), (lower + upper) / 2, const * 10)
    success = np.isfinite(best_l2)
    return CWL2Result(
        x_adv=x_adv,
        success=success,
        l2=np.where(success, np.sqrt(np.where(success, best_l2, 0.0)), 0.0),
    )
