"""The loss terms of SPEC §2 as plain functions; each returns the mean over the batch."""

import math

import tensorflow as tf

SEPARATION_FORMS = ("max_cos", "hinge", "lse")


def cross_entropy(logits, labels):
    """Softmax cross-entropy of integer labels."""
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.cast(labels, tf.int32), logits=tf.cast(logits, tf.float32)
        )
    )


def alignment(features, own_prototypes):
    """Positive-prototype alignment `mean_i ½‖z_i − c_{y_i}‖²`."""
    diff = tf.cast(features, tf.float32) - own_prototypes
    return tf.reduce_mean(0.5 * tf.reduce_sum(tf.square(diff), axis=1))


def true_and_rival_logits(logits, labels):
    """The true-class logit and the largest other logit, each [N]."""
    logits = tf.cast(logits, tf.float32)
    one_hot = tf.one_hot(tf.cast(labels, tf.int32), tf.shape(logits)[1]) > 0.5
    true = tf.reduce_max(tf.where(one_hot, logits, -math.inf), axis=1)
    rival = tf.reduce_max(tf.where(one_hot, -math.inf, logits), axis=1)
    return true, rival


def repulsion(logits, labels, margin):
    """Negative-prototype repulsion `mean_i [m − (l_y − max_{k≠y} l_k)]_+`.

    With dot logits and equal-norm prototypes `l_y − l_k = ½‖z − c_k‖² − ½‖z − c_y‖²`,
    so the nearest rival must be `margin` farther away (in ½-squared-distance units).
    """
    true, rival = true_and_rival_logits(logits, labels)
    return tf.reduce_mean(tf.nn.relu(margin - (true - rival)))


def pairwise_cosines(class_vectors):
    """Cosine similarity matrix [K, K] of the prototypes."""
    unit = tf.math.l2_normalize(tf.cast(class_vectors, tf.float32), axis=1)
    return tf.matmul(unit, unit, transpose_b=True)


def separation(class_vectors, form="max_cos", temperature=0.1):
    """Pushes rival prototypes apart; touches only the prototypes.

    `max_cos`: `mean_j max_{k≠j} cos(c_j, c_k)`.
    `hinge`: `mean_j [max_{k≠j} cos(c_j, c_k) + 1/(K−1)]_+`, zero exactly at the regular simplex,
        so it stops pushing once the nearest rival is as far as K equal classes allow.
    `lse`: a smooth maximum, `mean_j τ·log Σ_{k≠j} exp(cos(c_j, c_k)/τ)`, which moves every
        close pair rather than only the nearest one.
    """
    cos = pairwise_cosines(class_vectors)
    k = tf.shape(cos)[0]
    off_diagonal = tf.logical_not(tf.eye(k, dtype=tf.bool))
    if form == "lse":
        scaled = tf.where(off_diagonal, cos / temperature, -math.inf)
        return tf.reduce_mean(temperature * tf.reduce_logsumexp(scaled, axis=1))
    nearest = tf.reduce_max(tf.where(off_diagonal, cos, -math.inf), axis=1)
    if form == "max_cos":
        return tf.reduce_mean(nearest)
    if form == "hinge":
        simplex_cos = -1.0 / tf.cast(k - 1, tf.float32)
        return tf.reduce_mean(tf.nn.relu(nearest - simplex_cos))
    raise ValueError(f"unknown separation form {form!r}; choose one of {SEPARATION_FORMS}")


def kl_divergence(reference_logits, other_logits):
    """`mean_i KL(softmax(reference_i) ‖ softmax(other_i))` (TRADES' consistency term)."""
    log_p = tf.nn.log_softmax(tf.cast(reference_logits, tf.float32))
    log_q = tf.nn.log_softmax(tf.cast(other_logits, tf.float32))
    return tf.reduce_mean(tf.reduce_sum(tf.exp(log_p) * (log_p - log_q), axis=1))


def margin_loss(logits, labels):
    """`mean_i (max_{k≠y} l_k − l_y)`: the CW∞ objective, positive once misclassified."""
    true, rival = true_and_rival_logits(logits, labels)
    return tf.reduce_mean(rival - true)


def boosted_cross_entropy(logits, labels):
    """MART's boosted CE: `−log p_y − log(1 − max_{k≠y} p_k)` (the rival's margin is pushed too)."""
    _, rival = true_and_rival_logits(tf.nn.softmax(tf.cast(logits, tf.float32)), labels)
    return cross_entropy(logits, labels) - tf.reduce_mean(tf.math.log(1.0001 - rival))


def misclassification_aware_kl(clean_logits, adv_logits, labels):
    """MART's robust term: `mean_i KL(p_i ‖ p'_i) · (1 − p_i[y_i])`, weighting uncertain points."""
    log_p = tf.nn.log_softmax(tf.cast(clean_logits, tf.float32))
    log_q = tf.nn.log_softmax(tf.cast(adv_logits, tf.float32))
    kl = tf.reduce_sum(tf.exp(log_p) * (log_p - log_q), axis=1)
    p_true = tf.gather(tf.exp(log_p), tf.cast(labels, tf.int32), batch_dims=1)
    return tf.reduce_mean(kl * (1.0 - p_true))
