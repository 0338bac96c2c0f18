"""Seeded, stratified hold-out splits."""

import numpy as np


def stratified_holdout(
    labels: np.ndarray, holdout_size: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Splits indices of `labels` into (kept, held out) with exactly `holdout_size` held out.

    Every class contributes in proportion to its size; the classes with the
    largest fractional share receive the leftover places. Both index arrays
    are sorted, so the original order of the data is kept.
    """
    labels = np.asarray(labels)
    if not 0 < holdout_size < len(labels):
        raise ValueError(f"holdout_size must be in (0, {len(labels)}), got {holdout_size}.")
    classes, counts = np.unique(labels, return_counts=True)
    shares = counts * holdout_size / len(labels)
    quotas = np.floor(shares).astype(np.int64)
    leftover = holdout_size - int(quotas.sum())
    largest_remainders = np.argsort(-(shares - quotas), kind="stable")[:leftover]
    quotas[largest_remainders] += 1

    rng = np.random.default_rng(seed)
    held_out = [
        rng.permutation(np.flatnonzero(labels == label))[:quota]
        for label, quota in zip(classes, quotas)
    ]
    held_out = np.sort(np.concatenate(held_out))
    kept = np.setdiff1d(np.arange(len(labels)), held_out)
    return kept, held_out


def split_validation(
    images: np.ndarray, labels: np.ndarray, fraction: float, seed: int
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None]:
    """Carves a stratified `fraction` of (images, labels) out as a validation split."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {fraction}.")
    if fraction == 0.0:
        return (images, labels), None
    holdout_size = max(1, round(fraction * len(labels)))
    kept, held_out = stratified_holdout(labels, holdout_size, seed)
    return (images[kept], labels[kept]), (images[held_out], labels[held_out])
