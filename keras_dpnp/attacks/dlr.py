"""The Difference of Logits Ratio (DLR) losses of Croce & Hein (2020), per example.

Both are invariant to shifting and to positively rescaling the logits, so a model cannot hide
behind a large or a small logit scale. Larger values mean closer to a successful attack.
"""

import math

import tensorflow as tf

_DENOMINATOR_FLOOR = 1e-12


def _sorted_descending(logits, count):
    return tf.math.top_k(logits, k=count, sorted=True).values


def _check_classes(logits, needed, name):
    classes = logits.shape[-1]
    if classes is not None and classes < needed:
        raise ValueError(f"{name} needs at least {needed} classes, got logits with {classes}")


def dlr_loss(logits, labels):
    """Untargeted DLR: `−(z_y − max_{i≠y} z_i) / (z_π1 − z_π3)`, [N].

    `π` orders the logits from the largest down.
    """
    logits = tf.cast(logits, tf.float32)
    _check_classes(logits, 3, "the DLR loss")
    own = tf.one_hot(tf.cast(labels, tf.int32), tf.shape(logits)[1]) > 0.5
    true = tf.reduce_sum(tf.where(own, logits, 0.0), axis=1)
    rival = tf.reduce_max(tf.where(own, -math.inf, logits), axis=1)
    top = _sorted_descending(logits, 3)
    return -(true - rival) / (top[:, 0] - top[:, 2] + _DENOMINATOR_FLOOR)


def targeted_dlr_loss(logits, labels, targets):
    """Targeted DLR: `−(z_y − z_t) / (z_π1 − (z_π3 + z_π4) / 2)`, [N]."""
    logits = tf.cast(logits, tf.float32)
    _check_classes(logits, 4, "the targeted DLR loss")
    true = tf.gather(logits, tf.cast(labels, tf.int32), axis=1, batch_dims=1)
    target = tf.gather(logits, tf.cast(targets, tf.int32), axis=1, batch_dims=1)
    top = _sorted_descending(logits, 4)
    return -(true - target) / (top[:, 0] - 0.5 * (top[:, 2] + top[:, 3]) + _DENOMINATOR_FLOOR)
