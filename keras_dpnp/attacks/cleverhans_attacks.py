"""The one door to cleverhans 4.0.0 (`cleverhans.tf2.attacks`): FGSM and PGD, used safely.

Every call passes the TRUE labels (cleverhans otherwise attacks the model's own predictions,
the "label leaking" default), clips to [0, 1], and turns cleverhans's `sanity_checks` off: on
numpy 2 they build a ragged array and crash (`inhomogeneous shape`). PGD always starts from a
uniform random point of the ε-ball (`rand_init`). cleverhans's `carlini_wagner_l2` returns its
input unchanged on current TensorFlow, so it is not offered here: see `keras_dpnp.attacks.cw`.
"""

import numpy as np
import tensorflow as tf
from cleverhans.tf2.attacks import fast_gradient_method as _fgm_module
from cleverhans.tf2.attacks import projected_gradient_descent as _pgd_module

NORM_ORDERS = {"linf": np.inf, "l2": 2}


def _checked(x, labels, epsilon, norm):
    if norm not in NORM_ORDERS:
        raise ValueError(f"norm must be one of {tuple(NORM_ORDERS)}, got {norm!r}")
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    if labels is None:
        raise ValueError("labels are required: attacks use the true labels, never predictions")
    x = tf.convert_to_tensor(x, tf.float32)
    labels = tf.cast(tf.convert_to_tensor(labels), tf.int64)
    if labels.shape.rank != 1 or labels.shape[0] != x.shape[0]:
        raise ValueError(
            f"labels must be integer class ids of shape [{x.shape[0]}] "
            f"(one per image), got shape {labels.shape.as_list()}"
        )
    low, high = float(tf.reduce_min(x)), float(tf.reduce_max(x))
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"images must be float pixels in [0, 1], got values in "
            f"[{low:.4g}, {high:.4g}]; divide uint8 images by 255"
        )
    return x, labels


def fgsm(logits_fn, x, labels, *, epsilon, norm="linf"):
    """One gradient step of size ε on the cross-entropy of the true labels (Goodfellow et al.).

    `logits_fn` maps images in [0, 1] to logits; pass the same callable on every call, since
    cleverhans's compiled gradient is traced once per callable.
    """
    x, labels = _checked(x, labels, epsilon, norm)
    return _fgm_module.fast_gradient_method(
        logits_fn,
        x,
        epsilon,
        NORM_ORDERS[norm],
        clip_min=0.0,
        clip_max=1.0,
        y=labels,
        targeted=False,
        sanity_checks=False,
    )


def pgd(logits_fn, x, labels, *, epsilon, step_size, steps, norm="linf", seed=None):
    """cleverhans's PGD (Madry et al.) on the cross-entropy of the true labels, random start.

    cleverhans draws its random start from TensorFlow's global generator, so an integer `seed`
    is applied with `tf.random.set_seed` (which reseeds the whole process); None leaves the
    global generator as it is.
    """
    x, labels = _checked(x, labels, epsilon, norm)
    if not 0 < step_size <= epsilon:
        raise ValueError(f"step_size must be in (0, epsilon={epsilon}], got {step_size}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if seed is not None:
        tf.random.set_seed(seed)
    return _pgd_module.projected_gradient_descent(
        logits_fn,
        x,
        epsilon,
        step_size,
        int(steps),
        NORM_ORDERS[norm],
        clip_min=0.0,
        clip_max=1.0,
        y=labels,
        targeted=False,
        rand_init=True,
        rand_minmax=epsilon,
        sanity_checks=False,
    )
