"""Square attack (Andriushchenko et al. 2020): random search in squares, no gradients, L∞ and L2.

Each iteration proposes a change inside one random square window per image and keeps it if
it lowers the margin `z_y − max_{k≠y} z_k`; the window shrinks on a fixed schedule. Only
forward passes of the model are used, so gradient masking cannot stop it.
"""

import numpy as np
import tensorflow as tf

from keras_dpnp import losses
from keras_dpnp.attacks.batching import batch_signature, check_inputs, per_example, run_on_unfooled

# The paper's schedule (for 10 000 queries; AutoAttack uses it unscaled with 5 000): the
# fraction of pixels a square covers halves after each of these iterations.
HALVING_ITERATIONS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def square_fraction(iteration, p_init):
    """Fraction `p` of the image a square covers at a 0-based iteration."""
    halvings = sum(int(iteration > mark) for mark in HALVING_ITERATIONS)
    return p_init / 2**halvings


def square_side(iteration, p_init, height, width, norm):
    """Side of the square window at an iteration: `round(sqrt(p·h·w))` within the image.

    At least 1 pixel (L∞); at least 3 and odd (L2, whose window holds a ± pattern).
    """
    side = int(round(np.sqrt(square_fraction(iteration, p_init) * height * width)))
    if norm == "l2":
        side = max(side, 3)
        side += 1 - side % 2
    return min(max(side, 1), height, width)


def _rings(rows, cols):
    """Concentric square rings around the centre with weights `Σ_{k≥d} 1/(k+1)²`, unit norm."""
    if rows == 0:
        return np.zeros((0, cols))
    distance = np.maximum(
        np.abs(np.arange(rows)[:, None] - rows // 2), np.abs(np.arange(cols)[None, :] - cols // 2)
    )
    weights = 1.0 / (np.arange(max(rows, cols) // 2 + 1) + 1.0) ** 2
    pattern = np.cumsum(weights[::-1])[::-1][distance]
    return pattern / np.linalg.norm(pattern)


def l2_window_pattern(side):
    """The L2 attack's window content: rings of + on the top half, − on the bottom, unit norm."""
    pattern = np.concatenate([_rings(side // 2, side), -_rings(side - side // 2, side)])
    return pattern / np.linalg.norm(pattern)


def _random_signs(shape, seed):
    return tf.where(tf.random.stateless_uniform(shape, seed) < 0.5, -1.0, 1.0)


def _window_masks(count, side, height, width, seed):
    """Boolean [N, H, W, 1] masks of one random side×side window per image, and its corner."""
    row_seed, col_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    top = tf.random.stateless_uniform([count], row_seed, 0, height - side + 1, tf.int32)
    left = tf.random.stateless_uniform([count], col_seed, 0, width - side + 1, tf.int32)
    rows = tf.range(height)[None, :] - top[:, None]
    cols = tf.range(width)[None, :] - left[:, None]
    mask = ((rows >= 0) & (rows < side))[:, :, None] & ((cols >= 0) & (cols < side))[:, None, :]
    return mask[..., None], rows, cols


class _Proposals:
    """Initial point and per-iteration proposals of the Square attack for one norm."""

    def __init__(self, image_shape, epsilon, norm, p_init):
        self.height, self.width, self.channels = image_shape
        self.epsilon, self.norm = epsilon, norm
        short = min(self.height, self.width)
        sides = [
            square_side(i, p_init, self.height, self.width, norm)
            for i in range(HALVING_ITERATIONS[-1] + 2)
        ]
        self.sides = tf.constant(sides, tf.int32)
        patterns = np.zeros((short + 1, short, short), np.float32)
        for side in set(sides):
            patterns[side, :side, :side] = l2_window_pattern(side)
        self.patterns = tf.constant(patterns)

    def side(self, iteration):
        return self.sides[tf.minimum(iteration, HALVING_ITERATIONS[-1] + 1)]

    def initial(self, x, seed):
        if self.norm == "linf":
            stripes = _random_signs([tf.shape(x)[0], 1, self.width, self.channels], seed)
            return tf.clip_by_value(x + self.epsilon * stripes, 0.0, 1.0)
        delta = self._tiles(tf.shape(x)[0], seed)
        return self._scaled_to_sphere(x, delta)

    def _tiles(self, count, seed):
        """A grid of ± window patterns of side h/5, one random sign per tile and channel."""
        tile = max(min(self.height, self.width) // 5, 1)
        rows, cols = self.height // tile, self.width // tile
        pattern = np.tile(l2_window_pattern(tile), (rows, cols)).astype(np.float32)
        signs = _random_signs([count, rows, cols, self.channels], seed)
        signs = tf.repeat(tf.repeat(signs, tile, axis=1), tile, axis=2)
        top, left = (self.height - rows * tile) // 2, (self.width - cols * tile) // 2
        delta = signs * pattern[None, :, :, None]
        return tf.pad(
            delta,
            [
                [0, 0],
                [top, self.height - rows * tile - top],
                [left, self.width - cols * tile - left],
                [0, 0],
            ],
        )

    def _scaled_to_sphere(self, x, delta):
        size = tf.sqrt(tf.reduce_sum(tf.square(delta), axis=[1, 2, 3]))
        return tf.clip_by_value(x + self.epsilon * delta / per_example(size + 1e-12, x), 0.0, 1.0)

    def propose(self, x, x_best, iteration, seed):
        side = self.side(iteration)
        count = tf.shape(x)[0]
        seeds = tf.random.experimental.stateless_split(seed, 4)
        window, rows, cols = _window_masks(count, side, self.height, self.width, seeds[0])
        colors = _random_signs([count, 1, 1, self.channels], seeds[1])
        if self.norm == "linf":
            return tf.clip_by_value(tf.where(window, x + self.epsilon * colors, x_best), 0.0, 1.0)
        return self._l2_proposal(x, x_best, side, window, rows, cols, colors, seeds[2:])

    def _l2_proposal(self, x, x_best, side, window, rows, cols, colors, seeds):
        """Moves the energy of a second window into the first, which gets a fresh ± pattern."""
        count = tf.shape(x)[0]
        emptied, _, _ = _window_masks(count, side, self.height, self.width, seeds[0])
        window = tf.cast(window, tf.float32)
        emptied = tf.cast(emptied, tf.float32)
        delta = x_best - x
        spatial = [1, 2]
        total = tf.reduce_sum(tf.square(delta), axis=[1, 2, 3], keepdims=True)
        in_window = tf.sqrt(tf.reduce_sum(tf.square(delta * window), spatial, keepdims=True))
        in_both = tf.sqrt(
            tf.reduce_sum(tf.square(delta * tf.maximum(window, emptied)), spatial, keepdims=True)
        )
        pattern = self._placed_pattern(side, rows, cols, seeds[1])
        fresh = pattern * colors + delta * window / (in_window + 1e-12)
        fresh_size = tf.sqrt(tf.reduce_sum(tf.square(fresh), spatial, keepdims=True))
        budget = tf.sqrt(
            tf.maximum(self.epsilon**2 - total, 0.0) / self.channels + tf.square(in_both)
        )
        fresh = fresh / (fresh_size + 1e-12) * budget
        delta = delta * (1.0 - tf.maximum(window, emptied)) + fresh * window
        return self._scaled_to_sphere(x, delta)

    def _placed_pattern(self, side, rows, cols, seed):
        """The window pattern at each image's window ([N, H, W, 1]), transposed at random."""
        count = tf.shape(rows)[0]
        pattern = self.patterns[side]
        flip = tf.random.stateless_uniform([count], seed) < 0.5
        patterns = tf.where(flip[:, None, None], tf.transpose(pattern)[None], pattern[None])
        last = tf.shape(pattern)[0] - 1
        placed = tf.gather(patterns, tf.clip_by_value(rows, 0, last), axis=1, batch_dims=1)
        placed = tf.gather(placed, tf.clip_by_value(cols, 0, last), axis=2, batch_dims=1)
        in_rows = (rows >= 0) & (rows < side)
        in_cols = (cols >= 0) & (cols < side)
        return tf.where(in_rows[:, :, None] & in_cols[:, None, :], placed, 0.0)[..., None]


def square_batch_graph(logits_fn, image_shape, *, epsilon, norm, queries, p_init):
    """One compiled Square run over a batch: `(x, y, rank, seed) -> (x_out, fooled)`.

    Each iteration queries the model only on the points not yet fooled, and stops early once
    all are. `x_out` holds the lowest-margin point found (misclassified where fooled).
    """
    proposals = _Proposals(image_shape, epsilon, norm, p_init)

    def margin(images, labels):
        true, rival = losses.true_and_rival_logits(logits_fn(images), labels)
        return true - rival

    @tf.function(input_signature=batch_signature(image_shape))
    def run(x, y, rank, seed):
        del rank  # an untargeted attack
        start_seed, loop_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        clean_wrong = tf.argmax(tf.cast(logits_fn(x), tf.float32), axis=1) != y
        x_best = proposals.initial(x, start_seed)
        best = margin(x_best, y)
        iteration = tf.constant(0)
        while iteration < queries and tf.reduce_any((best > 0) & ~clean_wrong):
            index = tf.where((best > 0) & ~clean_wrong)
            x_active = tf.gather_nd(x, index)
            candidate = proposals.propose(
                x_active,
                tf.gather_nd(x_best, index),
                iteration,
                tf.random.experimental.stateless_fold_in(loop_seed, iteration),
            )
            value = margin(candidate, tf.gather_nd(y, index))
            keep = value < tf.gather_nd(best, index)
            chosen = tf.boolean_mask(index, keep)
            best = tf.tensor_scatter_nd_update(best, chosen, tf.boolean_mask(value, keep))
            x_best = tf.tensor_scatter_nd_update(x_best, chosen, tf.boolean_mask(candidate, keep))
            iteration += 1
        return tf.where(per_example(clean_wrong, x), x, x_best), clean_wrong | (best <= 0)

    return run


def square(
    logits_fn,
    x,
    y,
    *,
    epsilon,
    norm="linf",
    queries=5000,
    p_init=0.8,
    seed=0,
    batch_size=500,
    progress=None,
    workers=1,
):
    """Square attack on the margin loss; makes no gradient call.

    Starts from vertical ±ε stripes (L∞) or a grid of ± patterns on the ε-sphere (L2), then
    runs up to `queries` iterations, one model query each for every point not yet fooled.
    Returns adversarial images (np.ndarray): misclassified where the attack succeeded, else
    the lowest-margin point found; points misclassified clean come back unchanged.
    `batch_size` points per batch, `workers` batches at once (`run_on_unfooled`).
    """
    x, y = check_inputs(x, y, epsilon, norm)
    if queries < 1:
        raise ValueError(f"queries must be >= 1, got {queries}")
    if not 0.0 < p_init <= 1.0:
        raise ValueError(f"p_init must be in (0, 1], got {p_init}")
    run = square_batch_graph(
        logits_fn, x.shape[1:], epsilon=epsilon, norm=norm, queries=queries, p_init=p_init
    )
    x_adv, _ = run_on_unfooled(
        run, x, y, ranks=[0], seed=seed, batch_size=batch_size, progress=progress, workers=workers
    )
    return x_adv
