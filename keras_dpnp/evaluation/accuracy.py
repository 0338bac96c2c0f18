"""Clean and PGD accuracy of a model over a dataset."""

import numpy as np
import tensorflow as tf

from keras_dpnp.attacks.pgd import pgd
from keras_dpnp.model import inference_function


class NonFiniteLogitsError(ValueError):
    """The model's logits hold NaN or inf, so no accuracy can honestly be scored."""

    def __init__(self, broken, total):
        super().__init__(
            f"the model's logits are NaN or infinite on {broken} of {total} images: its "
            f"weights are broken or its computation overflows, so no accuracy is reported"
        )


def predicted_classes(logits):
    """The argmax classes of `logits` [N, K]; `NonFiniteLogitsError` if any row is not finite."""
    logits = np.asarray(logits)
    broken = int(np.sum(~np.all(np.isfinite(logits), axis=1)))
    if broken:
        raise NonFiniteLogitsError(broken, len(logits))
    return np.argmax(logits, axis=1)


def _hits_and_broken(logits, labels):
    """(correct predictions, rows with NaN or inf) of a batch of logits, in the graph."""
    hits = tf.reduce_sum(tf.cast(tf.argmax(logits, axis=1) == labels, tf.int64))
    finite_rows = tf.reduce_all(tf.math.is_finite(logits), axis=1)
    return hits, tf.reduce_sum(tf.cast(tf.logical_not(finite_rows), tf.int64))


def accuracy_under_pgd(model, dataset, attack=None):
    """Clean accuracy and, if `attack` (a `PGDConfig`) is given, accuracy under that PGD attack.

    `dataset` yields `(images in [0, 1], labels)` batches. The model is called in inference mode.
    Returns a dict with `clean_accuracy`, `robust_accuracy` (or None) and `examples`.
    Raises `NonFiniteLogitsError` if the logits of any clean or attacked image are not finite.
    """
    logits_fn = inference_function(model)

    @tf.function(reduce_retracing=True)
    def batch_counts(x, y):
        x = tf.cast(x, tf.float32)
        y = tf.cast(y, tf.int64)
        clean, broken = _hits_and_broken(logits_fn(x), y)
        if attack is None:
            return clean, tf.constant(0, tf.int64), broken
        robust, broken_adversarial = _hits_and_broken(logits_fn(pgd(logits_fn, x, y, attack)), y)
        return clean, robust, tf.maximum(broken, broken_adversarial)

    clean = robust = broken = total = 0
    for x, y in dataset:
        c, r, b = batch_counts(x, y)
        clean, robust, broken = clean + int(c), robust + int(r), broken + int(b)
        total += int(np.shape(y)[0])
    if total == 0:
        raise ValueError("the dataset is empty: nothing to evaluate")
    if broken:
        raise NonFiniteLogitsError(broken, total)
    return {
        "clean_accuracy": clean / total,
        "robust_accuracy": robust / total if attack is not None else None,
        "examples": total,
    }
