"""Seeded random textures for the weather corruptions: plasma clouds (fog) and frost.

CIFAR-10-C's frost overlays crops of six frost photographs, which we do not have; `frost_textures`
draws a procedural stand-in instead (cloudy haze plus thin bright ice needles, bluish white), so
frost numbers are comparable between our runs but not with the official CIFAR-10-C frost.
"""

import numpy as np
from scipy import ndimage

FROST_TEXTURES = 5
FROST_TINT = (0.84, 0.92, 1.0)  # RGB: ice is bluish white
_INITIAL_SPREAD = 1e4


def plasma_fractal(count, size, decay, rng):
    """`count` periodic diamond-square height maps [count, size, size], each scaled to [0, 1].

    `size` is a power of two. The random offset added at each level shrinks by `decay`² from
    one level to the next, the rule of CIFAR-10-C's fog, so a smaller decay gives rougher fog.
    """
    if size < 2 or size & (size - 1):
        raise ValueError(f"plasma fractal size must be a power of two >= 2, got {size}")
    heights = np.zeros((count, size, size))
    spread = _INITIAL_SPREAD
    step = size
    while step >= 2:
        half = step // 2
        corners = heights[:, ::step, ::step]
        # Square step: a cell's centre is its four corners' mean plus noise (the map wraps).
        around = corners + np.roll(corners, -1, axis=1)
        around = around + np.roll(around, -1, axis=2)
        heights[:, half::step, half::step] = around / 4 + rng.uniform(-spread, spread, around.shape)
        # Diamond step: each edge midpoint averages its two corners and two centres.
        centres = heights[:, half::step, half::step]
        top = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=2)
        heights[:, ::step, half::step] = top / 4 + rng.uniform(-spread, spread, top.shape)
        left = centres + np.roll(centres, 1, axis=2) + corners + np.roll(corners, -1, axis=1)
        heights[:, half::step, ::step] = left / 4 + rng.uniform(-spread, spread, left.shape)
        step = half
        spread /= decay**2
    heights -= heights.min(axis=(1, 2), keepdims=True)
    return heights / heights.max(axis=(1, 2), keepdims=True)


def _ice_needles(size, rng):
    """Thin straight needles of random length, direction and brightness on a dark [size, size]
    field, drawn at twice the resolution and averaged down so their edges are soft."""
    fine = 2 * size
    canvas = np.zeros((fine, fine))
    count = size * size // 8
    starts = rng.uniform(0, fine, size=(count, 2))
    angles = rng.uniform(0, np.pi, size=count)
    lengths = rng.exponential(fine / 12, size=count) + 2
    brightness = rng.uniform(0.3, 1.0, size=count)
    steps = np.linspace(0.0, 1.0, 24)
    rows = starts[:, :1] + np.sin(angles)[:, None] * lengths[:, None] * steps
    cols = starts[:, 1:] + np.cos(angles)[:, None] * lengths[:, None] * steps
    inside = (rows >= 0) & (rows < fine) & (cols >= 0) & (cols < fine)
    values = np.broadcast_to(brightness[:, None], rows.shape)
    np.maximum.at(canvas, (rows[inside].astype(int), cols[inside].astype(int)), values[inside])
    canvas = ndimage.gaussian_filter(canvas, 0.6, mode="wrap")
    return canvas.reshape(size, 2, size, 2).mean(axis=(1, 3))


def frost_textures(count, size, rng):
    """`count` RGB frost textures [count, size, size, 3] in [0, 1]: haze plus ice needles."""
    plasma_size = 1 << (size - 1).bit_length()
    haze = plasma_fractal(count, plasma_size, 1.5, rng)[:, :size, :size]
    needles = np.stack([_ice_needles(size, rng) for _ in range(count)])
    needles /= needles.max(axis=(1, 2), keepdims=True)
    intensity = np.clip(0.45 * haze + 0.75 * needles, 0.0, 1.0)
    return intensity[..., None] * np.asarray(FROST_TINT)
