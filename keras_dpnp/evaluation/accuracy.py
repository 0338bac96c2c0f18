"""Clean and PGD accuracy of a model over a dataset."""

import numpy as np
import tensorflow as tf

from keras_dpnp.attacks.pgd import pgd


def accuracy_under_pgd(model, dataset, attack=None):
    """Clean accuracy and, if `attack` (a `PGDConfig`) is given, accuracy under that PGD attack.

    `dataset` yields `(images in [0, 1], labels)` batches. The model is called in inference mode.
    Returns a dict with `clean_accuracy`, `robust_accuracy` (or None) and `examples`.
    """
    logits_fn = lambda images: model(images, training=False)  # noqa: E731

    @tf.function(reduce_retracing=True)
    def batch_counts(x, y):
        x = tf.cast(x, tf.float32)
        y = tf.cast(y, tf.int64)
        clean = tf.reduce_sum(tf.cast(tf.argmax(logits_fn(x), axis=1) == y, tf.int64))
        if attack is None:
            return clean, tf.constant(0, tf.int64)
        x_adv = pgd(logits_fn, x, y, attack)
        robust = tf.reduce_sum(tf.cast(tf.argmax(logits_fn(x_adv), axis=1) == y, tf.int64))
        return clean, robust

    clean = robust = total = 0
    for x, y in dataset:
        c, r = batch_counts(x, y)
        clean += int(c)
        robust += int(r)
        total += int(np.shape(y)[0])
    if total == 0:
        raise ValueError("the dataset is empty: nothing to evaluate")
    return {
        "clean_accuracy": clean / total,
        "robust_accuracy": robust / total if attack is not None else None,
        "examples": total,
    }
