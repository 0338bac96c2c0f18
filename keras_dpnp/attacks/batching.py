"""What the AutoAttack attacks share: input checks, per-example helpers, and batching.

Each attack compiles one graph for a batch (`batch_signature`), and `run_on_unfooled` feeds it
the points not yet fooled, batch by batch (and target by target).
"""

import numpy as np
import tensorflow as tf

from keras_dpnp.attacks.pgd import NORMS


def check_inputs(x, y, epsilon, norm):
    """`x` as float32 [N, H, W, C] in [0, 1] and `y` as int64 [N]; rejects anything else."""
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y)
    if x.ndim != 4:
        raise ValueError(f"images must be [N, H, W, C], got shape {x.shape}")
    if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            f"labels must be {len(x)} integers (one per image), got dtype {y.dtype} "
            f"and shape {y.shape}"
        )
    if x.size and (x.min() < 0.0 or x.max() > 1.0):
        raise ValueError(
            f"images must lie in [0, 1] (got [{x.min():g}, {x.max():g}]); "
            "attacks work in pixel space, so scale them before attacking"
        )
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    return x, y.astype(np.int64)


def flat_norm(t, norm):
    """Per-example L∞ or L2 norm, [N]."""
    flat = tf.reshape(t, [tf.shape(t)[0], -1])
    if norm == "linf":
        return tf.reduce_max(tf.abs(flat), axis=1)
    return tf.sqrt(tf.reduce_sum(tf.square(flat), axis=1))


def per_example(values, like):
    """Reshapes [N] values to broadcast against images shaped like `like`."""
    return tf.reshape(values, [-1] + [1] * (len(like.shape) - 1))


def num_classes(logits_fn, x):
    """The number of logits `logits_fn` returns for images like `x`."""
    return int(logits_fn(tf.constant(x[:1])).shape[-1])


def check_num_targets(num_targets, classes):
    """Rejects a target count the model's classes cannot supply (the true class is no target)."""
    if not 1 <= num_targets < classes:
        raise ValueError(
            f"num_targets must be in [1, {classes - 1}] for {classes} classes, got {num_targets}"
        )


def ranked_class(logits, rank):
    """The class with the `rank`-th largest logit (rank 0 is the prediction), [N]."""
    return tf.math.top_k(logits, k=rank + 1).indices[:, rank]


def batch_signature(image_shape):
    """Input signature of a per-batch attack graph: images, labels, target rank, seed."""
    return [
        tf.TensorSpec([None, *image_shape], tf.float32),
        tf.TensorSpec([None], tf.int64),
        tf.TensorSpec([], tf.int32),
        tf.TensorSpec([2], tf.int64),
    ]


def run_on_unfooled(run_batch, x, y, *, ranks, seed, batch_size, progress=None):
    """Runs `run_batch(x, y, rank, seed) -> (x_out, fooled)` on the points not yet fooled.

    One pass per entry of `ranks` (the target ranks of a targeted attack; `[0]` for an
    untargeted one), each over batches of the points every earlier pass left unfooled.
    Returns the attacked images and the fooled mask. `progress(points)` is called after
    every batch with the work it did, counted in points: each point is one pass per rank, done
    when attacked or skipped for being fooled earlier, so the calls add up to `len(x)` and a
    progress bar's estimate of the time left stays linear in a targeted attack's many passes.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    x_out = x.copy()
    fooled = np.zeros(len(x), dtype=bool)
    ranks = list(ranks)
    for pass_index, rank in enumerate(ranks):
        active = np.flatnonzero(~fooled)
        for start in range(0, len(active), batch_size):
            index = active[start : start + batch_size]
            batch_seed = tf.constant([seed, rank * 1_000_003 + start], tf.int64)
            images, hit = run_batch(
                tf.constant(x[index]),
                tf.constant(y[index]),
                tf.constant(rank, tf.int32),
                batch_seed,
            )
            x_out[index] = images.numpy()
            fooled[index] = hit.numpy()
            if progress is not None:
                skipped_later = int(fooled[index].sum()) * (len(ranks) - 1 - pass_index)
                progress((len(index) + skipped_later) / len(ranks))
    return x_out, fooled
