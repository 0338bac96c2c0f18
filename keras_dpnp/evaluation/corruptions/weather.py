"""CIFAR-10-C's weather corruptions (snow, frost, fog) on float batches [N, H, W, C] in [0, 1].

Each takes (images, severity 1..5, numpy Generator); parameters are those of CIFAR-10-C's
generation script (make_cifar_c.py). Frost uses a procedural texture instead of the script's
photographs (see `corruptions.textures`).
"""

import numpy as np

from keras_dpnp.evaluation.corruptions.blur import clipped_zoom, motion_streaks
from keras_dpnp.evaluation.corruptions.textures import (
    FROST_TEXTURES,
    frost_textures,
    plasma_fractal,
)

# (flake mean, flake std, zoom, threshold, streak radius, streak σ, share of the image kept)
SNOW = (
    (0.1, 0.2, 1.0, 0.6, 8, 3, 0.95),
    (0.1, 0.2, 1.0, 0.5, 10, 4, 0.9),
    (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
    (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
    (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
)
SNOW_ANGLE_RANGE = (-135.0, -45.0)
# (weight of the image, weight of the frost texture)
FROST = ((1.0, 0.2), (1.0, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45))
# (amount of fog, decay of the fractal's roughness)
FOG = ((0.2, 3.0), (0.5, 3.0), (0.75, 2.5), (1.0, 2.0), (1.5, 1.75))
# Fog and frost textures are made at least this large and cropped, as at CIFAR's 32×32.
_TEXTURE_MIN_SIZE = 32
_LUMA = (0.299, 0.587, 0.114)


def _grey(images):
    if images.shape[-1] == 3:
        return images @ np.asarray(_LUMA)[:, None]
    return images.mean(axis=-1, keepdims=True)


def snow(images, severity, rng):
    """Thresholded, zoomed noise smeared into streaks falls on a whitened image (and, turned
    upside down, a second time)."""
    mean, std, zoom, threshold, radius, sigma, kept = SNOW[severity - 1]
    flakes = rng.normal(mean, std, size=images.shape[:3] + (1,))
    flakes = clipped_zoom(flakes, zoom)
    flakes[flakes < threshold] = 0.0
    flakes = np.floor(np.clip(flakes, 0.0, 1.0) * 255.0) / 255.0
    angles = rng.uniform(*SNOW_ANGLE_RANGE, size=len(images))
    flakes = motion_streaks(flakes, radius, sigma, angles)
    whitened = np.maximum(images, _grey(images) * 1.5 + 0.5)
    images = kept * images + (1.0 - kept) * whitened
    return np.clip(images + flakes + flakes[:, ::-1, ::-1], 0.0, 1.0)


def frost(images, severity, rng):
    """The image, dimmed, plus a random crop of one of a few frost textures."""
    image_weight, frost_weight = FROST[severity - 1]
    count, height, width, channels = images.shape
    size = max(_TEXTURE_MIN_SIZE, 4 * max(height, width))
    textures = frost_textures(FROST_TEXTURES, size, rng)
    if channels != 3:
        textures = np.repeat(textures.mean(axis=-1, keepdims=True), channels, axis=-1)
    picks = rng.integers(FROST_TEXTURES, size=count)
    tops = rng.integers(0, size - height + 1, size=count)
    lefts = rng.integers(0, size - width + 1, size=count)
    crops = np.stack(
        [textures[p, t : t + height, x : x + width] for p, t, x in zip(picks, tops, lefts)]
    )
    return np.clip(image_weight * images + frost_weight * crops, 0.0, 1.0)


def fog(images, severity, rng):
    """Adds a plasma-fractal cloud, then rescales so the image's brightest value keeps its
    share of the range."""
    amount, decay = FOG[severity - 1]
    height, width = images.shape[1:3]
    size = 1 << (max(height, width, _TEXTURE_MIN_SIZE) - 1).bit_length()
    clouds = plasma_fractal(len(images), size, decay, rng)[:, :height, :width, None]
    brightest = images.max(axis=(1, 2, 3), keepdims=True)
    return np.clip((images + amount * clouds) * brightest / (brightest + amount), 0.0, 1.0)
