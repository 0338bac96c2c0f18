"""Auto-PGD (Croce & Hein 2020): PGD with momentum and a step size that halves at checkpoints."""

import numpy as np
import tensorflow as tf

from keras_dpnp.attacks.batching import (
    batch_signature,
    check_inputs,
    check_num_targets,
    flat_norm,
    num_classes,
    per_example,
    ranked_class,
    run_on_unfooled,
)
from keras_dpnp.attacks.dlr import dlr_loss, targeted_dlr_loss
from keras_dpnp.attacks.pgd import project

LOSSES = ("ce", "dlr")
MOMENTUM = 0.75


def checkpoints(steps):
    """Iterations (counted from 1) after which APGD checks whether to halve its step.

    The paper's `p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06)` in
    whole iterations; 100 steps give 22, 41, 57, 70, 80, 87, 93, 99.
    """
    window = max(int(0.22 * steps), 1)
    shrink = max(int(0.03 * steps), 1)
    shortest = max(int(0.06 * steps), 1)
    marks, at = [], window
    while at <= steps:
        marks.append(at)
        window = max(window - shrink, shortest)
        at += window
    return marks


def _loss(name, logits, y, targets):
    if name == "ce":
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
    if name == "dlr":
        return dlr_loss(logits, y)
    return targeted_dlr_loss(logits, y, targets)


def _random_point(x, epsilon, norm, seed):
    """A point on the surface of the ε-ball around `x`, clipped to [0, 1]."""
    if norm == "linf":
        noise = tf.random.stateless_uniform(tf.shape(x), seed, -1.0, 1.0)
    else:
        noise = tf.random.stateless_normal(tf.shape(x), seed)
    direction = noise / (per_example(flat_norm(noise, norm), x) + 1e-12)
    return tf.clip_by_value(x + epsilon * direction, 0.0, 1.0)


def _in_box_and_ball(x, point, epsilon, norm):
    return tf.clip_by_value(x + project(point - x, epsilon, norm), 0.0, 1.0)


def _ascent_direction(grad, norm):
    if norm == "linf":
        return tf.sign(grad)
    return grad / (per_example(flat_norm(grad, norm), grad) + 1e-12)


def apgd_batch_graph(logits_fn, image_shape, *, epsilon, norm, loss, steps, rho):
    """One compiled APGD run over a batch: `(x, y, rank, seed) -> (x_out, fooled)`.

    `loss` is 'ce', 'dlr' or 'targeted_dlr' (target: the class of clean-logit rank `rank`).
    `x_out` holds, per point, the last iterate that was misclassified, or the highest-loss
    iterate when none was.
    """
    marks = checkpoints(steps)
    window_ends = np.zeros(steps + 1, np.float32)
    window_ends[marks] = np.diff([0] + marks)
    window_ends = tf.constant(window_ends)

    def loss_and_grad(x_adv, y, targets):
        with tf.GradientTape() as tape:
            tape.watch(x_adv)
            logits = tf.cast(logits_fn(x_adv), tf.float32)
            values = _loss(loss, logits, y, targets)
            total = tf.reduce_sum(values)
        grad = tf.cast(tape.gradient(total, x_adv), tf.float32)
        return values, grad, tf.argmax(logits, axis=1) != y

    @tf.function(input_signature=batch_signature(image_shape))
    def run(x, y, rank, seed):
        clean_logits = tf.cast(logits_fn(x), tf.float32)
        targets = ranked_class(clean_logits, rank)
        x_adv = _random_point(x, epsilon, norm, seed)
        values, grad, wrong = loss_and_grad(x_adv, y, targets)
        state = dict(
            x_adv=x_adv,
            x_prev=x_adv,
            grad=grad,
            step=tf.fill(tf.shape(y), 2.0 * epsilon),
            fooled=wrong | (tf.argmax(clean_logits, axis=1) != y),
            x_fooling=tf.where(per_example(wrong, x), x_adv, x),
            x_best=x_adv,
            grad_best=grad,
            loss_best=values,
            loss_prev=values,
            increases=tf.zeros_like(values),
            loss_best_at_check=values,
            reduced_at_check=tf.ones_like(wrong),
        )
        for i in tf.range(steps):
            s = state
            weight = tf.where(i > 0, MOMENTUM, 1.0)
            step = per_example(s["step"], x)
            towards = _in_box_and_ball(
                x, s["x_adv"] + step * _ascent_direction(s["grad"], norm), epsilon, norm
            )
            x_new = _in_box_and_ball(
                x,
                s["x_adv"]
                + weight * (towards - s["x_adv"])
                + (1.0 - weight) * (s["x_adv"] - s["x_prev"]),
                epsilon,
                norm,
            )
            values, grad, wrong = loss_and_grad(x_new, y, targets)
            improved = values > s["loss_best"]
            loss_best = tf.where(improved, values, s["loss_best"])
            x_best = tf.where(per_example(improved, x), x_new, s["x_best"])
            grad_best = tf.where(per_example(improved, x), grad, s["grad_best"])
            increases = s["increases"] + tf.cast(values > s["loss_prev"], tf.float32)
            window = window_ends[i + 1]
            at_check = window > 0
            halve = at_check & (
                (increases <= rho * window)
                | (~s["reduced_at_check"] & (s["loss_best_at_check"] >= loss_best))
            )
            restart = per_example(halve, x)
            state = dict(
                x_adv=tf.where(restart, x_best, x_new),
                x_prev=s["x_adv"],
                grad=tf.where(restart, grad_best, grad),
                step=tf.where(halve, s["step"] / 2.0, s["step"]),
                fooled=s["fooled"] | wrong,
                x_fooling=tf.where(per_example(wrong, x), x_new, s["x_fooling"]),
                x_best=x_best,
                grad_best=grad_best,
                loss_best=loss_best,
                loss_prev=values,
                increases=tf.where(at_check, tf.zeros_like(increases), increases),
                loss_best_at_check=tf.where(at_check, loss_best, s["loss_best_at_check"]),
                reduced_at_check=tf.where(at_check, halve, s["reduced_at_check"]),
            )
        fooled = state["fooled"]
        return tf.where(per_example(fooled, x), state["x_fooling"], state["x_best"]), fooled

    return run


def _check_steps(steps, rho):
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not 0.0 < rho < 1.0:
        raise ValueError(f"rho must be in (0, 1), got {rho}")


def apgd(
    logits_fn,
    x,
    y,
    *,
    epsilon,
    norm="linf",
    loss="ce",
    steps=100,
    rho=0.75,
    seed=0,
    batch_size=500,
    progress=None,
    workers=1,
):
    """Untargeted APGD on the cross-entropy (`loss='ce'`) or DLR (`'dlr'`) loss.

    `logits_fn` maps float32 images in [0, 1] to logits (call a model with `training=False`).
    Random start on the ε-sphere, initial step 2ε, momentum 0.75, the step halved at the
    `checkpoints` when at most a fraction `rho` of the steps since the last one raised the
    loss or when the best loss stalled. Returns adversarial images (np.ndarray): for each point
    a misclassified iterate where one was found, else the highest-loss iterate; points
    misclassified clean count as fooled and come back as a misclassified iterate or unchanged.
    `batch_size` points per batch, `workers` batches at once (`run_on_unfooled`).
    """
    x, y = check_inputs(x, y, epsilon, norm)
    if loss not in LOSSES:
        raise ValueError(f"APGD loss must be one of {LOSSES}, got {loss!r}")
    _check_steps(steps, rho)
    run = apgd_batch_graph(
        logits_fn, x.shape[1:], epsilon=epsilon, norm=norm, loss=loss, steps=steps, rho=rho
    )
    x_adv, _ = run_on_unfooled(
        run, x, y, ranks=[0], seed=seed, batch_size=batch_size, progress=progress, workers=workers
    )
    return x_adv


def apgd_targeted(
    logits_fn,
    x,
    y,
    *,
    epsilon,
    norm="linf",
    steps=100,
    num_targets=9,
    rho=0.75,
    seed=0,
    batch_size=500,
    progress=None,
    workers=1,
):
    """APGD-T: APGD on the targeted DLR loss, one run per target class.

    The targets are the classes with the 2nd, 3rd, … largest clean logit; each run attacks
    only the points that every earlier target left unfooled. Returns adversarial images as
    `apgd` does.
    `batch_size` points per batch, `workers` batches at once (`run_on_unfooled`).
    """
    x, y = check_inputs(x, y, epsilon, norm)
    _check_steps(steps, rho)
    check_num_targets(num_targets, num_classes(logits_fn, x))
    run = apgd_batch_graph(
        logits_fn,
        x.shape[1:],
        epsilon=epsilon,
        norm=norm,
        loss="targeted_dlr",
        steps=steps,
        rho=rho,
    )
    x_adv, _ = run_on_unfooled(
        run,
        x,
        y,
        ranks=range(1, num_targets + 1),
        seed=seed,
        batch_size=batch_size,
        progress=progress,
        workers=workers,
    )
    return x_adv
