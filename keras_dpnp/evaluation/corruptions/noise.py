"""CIFAR-10-C's noise corruptions on float batches [N, H, W, C] in [0, 1].

Each function takes (images, severity 1..5, numpy Generator) and returns the corrupted batch;
the parameters are those of CIFAR-10-C's generation script (make_cifar_c.py).
"""

import numpy as np

GAUSSIAN_STD = (0.04, 0.06, 0.08, 0.09, 0.10)
SHOT_PHOTONS = (500, 250, 100, 75, 50)  # photon count of a white pixel: fewer is noisier
IMPULSE_AMOUNT = (0.01, 0.02, 0.03, 0.05, 0.07)


def gaussian_noise(images, severity, rng):
    noise = rng.normal(0.0, GAUSSIAN_STD[severity - 1], images.shape)
    return np.clip(images + noise, 0.0, 1.0)


def shot_noise(images, severity, rng):
    photons = SHOT_PHOTONS[severity - 1]
    return np.clip(rng.poisson(images * photons) / photons, 0.0, 1.0)


def impulse_noise(images, severity, rng):
    """Salt and pepper: each value (each channel separately) becomes 0 or 1, equally likely,
    with probability `amount`."""
    hit = rng.random(images.shape) < IMPULSE_AMOUNT[severity - 1]
    salt = rng.random(images.shape) < 0.5
    return np.where(hit, salt.astype(images.dtype), images)
