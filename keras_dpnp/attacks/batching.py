"""What the AutoAttack attacks share: input checks, per-example helpers, and batching.

Each attack compiles one graph for a batch (`batch_signature`), and `run_on_unfooled` feeds it
the points not yet fooled, batch by batch (and target by target), `workers` batches at once.
"""

import concurrent.futures

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


def check_workers(workers):
    """Rejects a count of batches attacked at once below 1."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")


def _balanced_batches(points, batch_size):
    """(offset, points) of the fewest batches of at most `batch_size` of `points`, their sizes
    within one of each other, so that batches attacked at once finish together."""
    batches = np.array_split(points, -(-len(points) // batch_size)) if len(points) else []
    offsets = np.cumsum([0, *(len(batch) for batch in batches)])
    return list(zip(offsets[:-1].tolist(), batches))


def _attack_batch(run_batch, x, y, index, rank, batch_seed):
    images, hit = run_batch(
        tf.constant(x[index]), tf.constant(y[index]), tf.constant(rank, tf.int32), batch_seed
    )
    return images.numpy(), hit.numpy()


def run_on_unfooled(run_batch, x, y, *, ranks, seed, batch_size, progress=None, workers=1):
    """Runs `run_batch(x, y, rank, seed) -> (x_out, fooled)` on the points not yet fooled.

    One pass per entry of `ranks` (the target ranks of a targeted attack; `[0]` for an
    untargeted one), each over batches of the points every earlier pass left unfooled: the
    fewest batches of at most `batch_size` points, of equal size (within one).
    Returns the attacked images and the fooled mask. `progress(points)` is called after
    every batch with the work it did, counted in points: each point is one pass per rank, done
    when attacked or skipped for being fooled earlier, so the calls add up to `len(x)` and a
    progress bar's estimate of the time left stays linear in a targeted attack's many passes.

    `workers` batches of a pass are attacked at once, each in a thread of its own; a batch's
    seed depends on its place in the pass only, so the result is the same for any `workers`.
    Concurrent batches keep the cores busy where one batch's small operations cannot (best
    with TensorFlow's intra-op threads set to the cores divided by `workers`).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    check_workers(workers)
    x_out = x.copy()
    fooled = np.zeros(len(x), dtype=bool)
    ranks = list(ranks)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for pass_index, rank in enumerate(ranks):
            active = np.flatnonzero(~fooled)
            batches = {}
            for start, index in _balanced_batches(active, batch_size):
                batch_seed = tf.constant([seed, rank * 1_000_003 + start], tf.int64)
                job = pool.submit(_attack_batch, run_batch, x, y, index, rank, batch_seed)
                batches[job] = index
            for job in concurrent.futures.as_completed(batches):
                index = batches[job]
                try:
                    x_out[index], fooled[index] = job.result()
                except BaseException:
                    for other in batches:
                        other.cancel()
                    raise
                if progress is not None:
                    skipped_later = int(fooled[index].sum()) * (len(ranks) - 1 - pass_index)
                    progress((len(index) + skipped_later) / len(ranks))
    return x_out, fooled
