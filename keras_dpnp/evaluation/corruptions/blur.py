"""CIFAR-10-C's blur corruptions on float batches [N, H, W, C] in [0, 1].

Each corruption takes (images, severity 1..5, numpy Generator). Parameters are those of
CIFAR-10-C's generation script (make_cifar_c.py), in pixels, so on images smaller than 32×32
they blur relatively more. `motion_streaks` and `clipped_zoom` also serve the snow corruption.
"""

import math

import numpy as np
from scipy import ndimage, signal

# (disk radius, σ of the 3×3 anti-aliasing Gaussian)
DEFOCUS = ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1.0, 0.2), (1.5, 0.1))
# (Gaussian σ, largest pixel displacement, shuffling passes)
GLASS = ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2))
# (streak radius, streak σ); the direction is uniform in ±45°
MOTION = ((6, 1.0), (6, 1.5), (6, 2.0), (8, 2.0), (9, 2.5))
MOTION_ANGLE_RANGE = (-45.0, 45.0)
# Largest zoom factor; the factors run from 1.00 in steps of 0.01 (the script's float
# `np.arange` stops one step late at the first two severities, hence 1.06 and 1.11).
ZOOM_MAX = (1.06, 1.11, 1.15, 1.20, 1.25)


def _spatial_gaussian(images, sigma, truncate=4.0, mode="nearest"):
    return ndimage.gaussian_filter(images, sigma=(0, sigma, sigma, 0), mode=mode, truncate=truncate)


def defocus_kernel(radius, alias_sigma):
    """A normalised disk of `radius` pixels, smoothed by a small Gaussian against aliasing."""
    reach = int(math.floor(radius))
    grid = np.arange(-reach, reach + 1)
    disk = (grid[:, None] ** 2 + grid[None, :] ** 2 <= radius**2).astype(np.float64)
    disk /= disk.sum()
    smoothing = np.exp(-(np.arange(-1, 2) ** 2) / (2.0 * alias_sigma**2))
    smoothing /= smoothing.sum()
    return signal.convolve2d(disk, np.outer(smoothing, smoothing))


def defocus_blur(images, severity, rng):
    kernel = defocus_kernel(*DEFOCUS[severity - 1])
    blurred = ndimage.convolve(images, kernel[None, :, :, None], mode="mirror")
    return np.clip(blurred, 0.0, 1.0)


def glass_blur(images, severity, rng):
    """Blur, let neighbouring pixels swap places in a sweep from the bottom right, blur again.

    As in the script, the blurred image is first truncated to 8 bits and each swap partner
    lies 0..max_delta pixels up and left (its offsets are drawn from [-max_delta, max_delta)).
    """
    sigma, delta, passes = GLASS[severity - 1]
    count, height, width = images.shape[:3]
    shuffled = np.floor(_spatial_gaussian(images, sigma) * 255.0) / 255.0
    batch = np.arange(count)
    for _ in range(passes):
        for row in range(height - delta, delta, -1):
            for col in range(width - delta, delta, -1):
                d_row, d_col = rng.integers(-delta, delta, size=(2, count))
                other = (batch, row + d_row, col + d_col)
                here = shuffled[batch, row, col].copy()
                shuffled[batch, row, col] = shuffled[other]
                shuffled[other] = here
    return np.clip(_spatial_gaussian(shuffled, sigma), 0.0, 1.0)


def motion_streaks(images, radius, sigma, angles):
    """One-sided motion blur (ImageMagick's `-motion-blur`): each pixel averages the
    2⌈radius⌉+1 pixels along the direction `angles[n]` (degrees) with Gaussian weights of
    `sigma` pixels; positions past the border repeat the edge pixel."""
    count, height, width = images.shape[:3]
    taps = np.arange(2 * math.ceil(radius) + 1)
    weights = np.exp(-(taps**2) / (2.0 * sigma**2))
    weights /= weights.sum()
    radians = np.deg2rad(np.asarray(angles, np.float64))
    # Round half down, as ImageMagick places the taps.
    d_col = np.ceil(taps[None, :] * np.cos(radians)[:, None] - 0.5).astype(int)
    d_row = np.ceil(taps[None, :] * np.sin(radians)[:, None] - 0.5).astype(int)
    batch = np.arange(count)[:, None, None]
    blurred = np.zeros_like(images)
    for tap, weight in enumerate(weights):
        rows = np.clip(np.arange(height)[None, :] + d_row[:, tap : tap + 1], 0, height - 1)
        cols = np.clip(np.arange(width)[None, :] + d_col[:, tap : tap + 1], 0, width - 1)
        blurred += weight * images[batch, rows[:, :, None], cols[:, None, :]]
    return blurred


def motion_blur(images, severity, rng):
    radius, sigma = MOTION[severity - 1]
    angles = rng.uniform(*MOTION_ANGLE_RANGE, size=len(images))
    return np.clip(motion_streaks(images, radius, sigma, angles), 0.0, 1.0)


def _zoom_matrix(size, factor):
    """[size, size] bilinear interpolation weights that magnify one axis by `factor` ≥ 1
    about its centre."""
    centre = (size - 1) / 2.0
    position = centre + (np.arange(size) - centre) / factor
    below = np.clip(np.floor(position).astype(int), 0, size - 1)
    above = np.minimum(below + 1, size - 1)
    fraction = position - below
    weights = np.zeros((size, size))
    np.add.at(weights, (np.arange(size), below), 1.0 - fraction)
    np.add.at(weights, (np.arange(size), above), fraction)
    return weights


def clipped_zoom(images, factor):
    """Zooms into the centre by `factor` ≥ 1 (bilinear), keeping the image size.

    The script crops ⌈side / factor⌉ pixels and rescales them, which rounds small factors
    away on small images; this samples the exact zoom instead (the same within a pixel at 32).
    """
    height, width = images.shape[1:3]
    channels_first = images.transpose(0, 3, 1, 2)
    zoomed = _zoom_matrix(height, factor) @ channels_first @ _zoom_matrix(width, factor).T
    return zoomed.transpose(0, 2, 3, 1)


def zoom_factors(severity):
    largest = ZOOM_MAX[severity - 1]
    return 1.0 + 0.01 * np.arange(round((largest - 1.0) / 0.01) + 1)


def zoom_blur(images, severity, rng):
    """The mean of the image and its zooms by every factor of the severity."""
    total = images.copy()
    factors = zoom_factors(severity)
    for factor in factors:
        total += clipped_zoom(images, factor)
    return np.clip(total / (len(factors) + 1), 0.0, 1.0)
