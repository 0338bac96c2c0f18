"""Targeted Fast Adaptive Boundary attack, FAB-T (Croce & Hein 2020), L∞ and L2.

FAB looks for the smallest perturbation that reaches a target class: it linearises the
decision boundary between the true and the target class, steps onto that hyperplane (within
the image box [0, 1]) with a bias towards the clean point, and after each success moves back
towards the clean point to shrink the perturbation.
"""

import math

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

_FLAT_WEIGHT = 1e-12


def _water_level(weights, rooms, target):
    """Smallest `λ >= 0` with `Σ_i weights_i · min(λ, rooms_i) >= target`, per row.

    `+inf` where even `λ = ∞` falls short. The sum is piecewise linear and non-decreasing in
    `λ`, with a kink at every room; sorting the rooms finds the linear piece that holds the
    answer.
    """
    order = tf.argsort(rooms, axis=1)
    rooms = tf.gather(rooms, order, batch_dims=1)
    weights = tf.gather(weights, order, batch_dims=1)
    total = tf.reduce_sum(weights, axis=1, keepdims=True)
    filled = tf.cumsum(weights * rooms, axis=1)
    tail = total - tf.cumsum(weights, axis=1)
    reach = filled + rooms * tail
    pieces = tf.reduce_sum(tf.cast(reach < target[:, None], tf.int32), axis=1)
    filled = tf.concat([tf.zeros_like(total), filled], axis=1)
    tail = tf.concat([total, tail], axis=1)
    filled_before = tf.gather(filled, pieces, batch_dims=1)
    tail_before = tf.gather(tail, pieces, batch_dims=1)
    level = tf.math.divide_no_nan(target - filled_before, tail_before)
    return tf.where(pieces == tf.shape(rooms)[1], math.inf, tf.maximum(level, 0.0))


def hyperplane_step(points, w, b, norm):
    """The smallest step `δ` (L∞ or L2) with `w·(p + δ) = b` and `p + δ` in [0, 1].

    `points`, `w`: [N, D]; `b`: [N]. Where the box keeps the hyperplane out of reach, the step
    that gets closest to it: every coordinate that moves `w·p` towards `b` goes to its bound.
    """
    gap = tf.reduce_sum(w * points, axis=1) - b
    w = tf.where(gap[:, None] >= 0, w, -w)
    gap = tf.abs(gap)
    # Lowering w·p: coordinates with w > 0 move down towards 0, those with w < 0 up towards 1.
    room = tf.where(w > 0, points, 1.0 - points)
    if norm == "linf":
        level = _water_level(tf.abs(w), room, gap)
        return -tf.sign(w) * tf.minimum(level[:, None], room)
    usable = tf.abs(w) > _FLAT_WEIGHT
    scaled_room = tf.where(usable, room / tf.where(usable, tf.abs(w), 1.0), 0.0)
    level = _water_level(tf.where(usable, tf.square(w), 0.0), scaled_room, gap)
    return -w * tf.minimum(level[:, None], scaled_room)


def fab_batch_graph(logits_fn, image_shape, *, epsilon, norm, steps, alpha_max, eta, beta):
    """One compiled FAB-T run over a batch: `(x, y, rank, seed) -> (x_out, fooled)`.

    The target is the class of clean-logit rank `rank`. `x_out` holds the smallest
    misclassified iterate where it lies within ε, else the clean image.
    """

    def flat(t):
        return tf.reshape(t, [tf.shape(t)[0], -1])

    def predicted(images):
        return tf.argmax(tf.cast(logits_fn(images), tf.float32), axis=1)

    @tf.function(input_signature=batch_signature(image_shape))
    def run(x, y, rank, seed):
        del seed  # one FAB-T run starts from the clean point: nothing is random
        clean_logits = tf.cast(logits_fn(x), tf.float32)
        targets = ranked_class(clean_logits, rank)
        x_flat = flat(x)
        x_cur = x
        best = x
        best_size = tf.fill(tf.shape(y), math.inf)
        for _ in tf.range(steps):
            with tf.GradientTape() as tape:
                tape.watch(x_cur)
                logits = tf.cast(logits_fn(x_cur), tf.float32)
                gap = tf.gather(logits, targets, axis=1, batch_dims=1) - tf.gather(
                    logits, y, axis=1, batch_dims=1
                )
                total = tf.reduce_sum(gap)
            w = flat(tf.cast(tape.gradient(total, x_cur), tf.float32))
            b = tf.reduce_sum(w * flat(x_cur), axis=1) - gap
            from_current = hyperplane_step(flat(x_cur), w, b, norm)
            from_clean = hyperplane_step(x_flat, w, b, norm)
            size_current = tf.maximum(flat_norm(from_current, norm), 1e-8)
            size_clean = tf.maximum(flat_norm(from_clean, norm), 1e-8)
            alpha = tf.clip_by_value(size_current / (size_current + size_clean), 0.0, alpha_max)
            alpha = per_example(alpha, x)
            x_cur = tf.clip_by_value(
                (x_cur + eta * tf.reshape(from_current, tf.shape(x))) * (1.0 - alpha)
                + (x + eta * tf.reshape(from_clean, tf.shape(x))) * alpha,
                0.0,
                1.0,
            )
            wrong = predicted(x_cur) != y
            size = flat_norm(x_cur - x, norm)
            better = wrong & (size < best_size)
            best = tf.where(per_example(better, x), x_cur, best)
            best_size = tf.where(better, size, best_size)
            x_cur = tf.where(per_example(wrong, x), x + beta * (x_cur - x), x_cur)
        within = best_size <= epsilon
        fooled = within | (tf.argmax(clean_logits, axis=1) != y)
        return tf.where(per_example(within, x), best, x), fooled

    return run


def fab_targeted(
    logits_fn,
    x,
    y,
    *,
    epsilon,
    norm="linf",
    steps=100,
    num_targets=9,
    alpha_max=0.1,
    eta=1.05,
    beta=0.9,
    batch_size=500,
    progress=None,
    workers=1,
):
    """FAB-T: one FAB run per target class (the 2nd, 3rd, … largest clean logit).

    Each run attacks only the points that earlier targets left unfooled within ε. `alpha_max`
    caps the bias towards the clean point, `eta` overshoots the hyperplane, `beta` shrinks
    the perturbation after a success (the paper's defaults). Returns images (np.ndarray): the
    smallest adversarial example found within ε, else the clean image.
    `batch_size` points per batch, `workers` batches at once (`run_on_unfooled`).
    """
    x, y = check_inputs(x, y, epsilon, norm)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    check_num_targets(num_targets, num_classes(logits_fn, x))
    run = fab_batch_graph(
        logits_fn,
        x.shape[1:],
        epsilon=epsilon,
        norm=norm,
        steps=steps,
        alpha_max=alpha_max,
        eta=eta,
        beta=beta,
    )
    x_adv, _ = run_on_unfooled(
        run,
        x,
        y,
        ranks=range(1, num_targets + 1),
        seed=0,
        batch_size=batch_size,
        progress=progress,
        workers=workers,
    )
    return x_adv
