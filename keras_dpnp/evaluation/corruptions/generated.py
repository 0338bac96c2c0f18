"""Corrupted copies of any test set with CIFAR-10-C's parameters: seeded and cached on disk.

`corrupt` applies one of the 15 corruptions at one severity to uint8 or [0, 1] float images
[N, H, W, C] of any size (at least 4×4) and channel count. The randomness comes from a numpy
Generator seeded by (seed, corruption, severity), so a set is the same for the same seed and
images whatever else is generated. `cached_corruption` keeps each set in a `.npz` file with its
sha256 digest beside it (`.npz.sha256`), checked before the set is used.
"""

import hashlib
import os
import zipfile

import numpy as np
from absl import logging

from keras_dpnp.data.cifar10_corrupted import CORRUPTIONS, SEVERITIES
from keras_dpnp.evaluation.corruptions import blur, digital, noise, weather
from keras_dpnp.files import atomic_path, write_text

PARAMETER_SOURCE = (
    "CIFAR-10-C's severity parameters (Hendrycks & Dietterich 2019, "
    "make_cifar_c.py); procedural frost texture"
)
# Part of every cache key: raise it whenever a corruption changes, so old files are not reused.
GENERATOR_VERSION = 1
MIN_SIDE = 4
_CHUNK = 256
CORRUPTION_FUNCTIONS = {
    "gaussian_noise": noise.gaussian_noise,
    "shot_noise": noise.shot_noise,
    "impulse_noise": noise.impulse_noise,
    "defocus_blur": blur.defocus_blur,
    "glass_blur": blur.glass_blur,
    "motion_blur": blur.motion_blur,
    "zoom_blur": blur.zoom_blur,
    "snow": weather.snow,
    "frost": weather.frost,
    "fog": weather.fog,
    "brightness": digital.brightness,
    "contrast": digital.contrast,
    "elastic_transform": digital.elastic_transform,
    "pixelate": digital.pixelate,
    "jpeg_compression": digital.jpeg_compression,
}


def _check(images, corruption, severity):
    if corruption not in CORRUPTION_FUNCTIONS:
        raise ValueError(f"unknown corruption {corruption!r}; choose from {', '.join(CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
    if images.ndim != 4:
        raise ValueError(f"images must be a batch [N, H, W, C], got shape {images.shape}")
    if min(images.shape[1:3]) < MIN_SIDE:
        raise ValueError(
            f"images must be at least {MIN_SIDE}×{MIN_SIDE} pixels to corrupt, got "
            f"{images.shape[1]}×{images.shape[2]}"
        )
    if images.dtype == np.uint8:
        return
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"images must be uint8 or float in [0, 1], got dtype {images.dtype}")
    if images.size and (images.min() < 0.0 or images.max() > 1.0):
        raise ValueError(
            f"float images must lie in [0, 1], got values in "
            f"[{images.min():.4g}, {images.max():.4g}]; pass uint8 images or "
            f"divide by 255"
        )


def corrupt(images, corruption, severity, seed=0):
    """`images` corrupted by `corruption` at `severity` (1..5), in their own dtype and range."""
    images = np.asarray(images)
    _check(images, corruption, severity)
    if len(images) == 0:
        return images.copy()
    unit = images.astype(np.float64) / (255.0 if images.dtype == np.uint8 else 1.0)
    rng = np.random.default_rng([seed, CORRUPTIONS.index(corruption), severity])
    apply = CORRUPTION_FUNCTIONS[corruption]
    corrupted = np.clip(
        np.concatenate(
            [
                apply(unit[start : start + _CHUNK], severity, rng)
                for start in range(0, len(unit), _CHUNK)
            ]
        ),
        0.0,
        1.0,
    )
    if images.dtype == np.uint8:
        return np.rint(corrupted * 255.0).astype(np.uint8)
    return corrupted.astype(images.dtype)


def cache_key(images, seed):
    """A digest of the images (values, shape, dtype), the seed and the generator version."""
    images = np.ascontiguousarray(images)
    digest = hashlib.sha256(f"{GENERATOR_VERSION}|{seed}|{images.shape}|{images.dtype}|".encode())
    digest.update(images.tobytes())
    return digest.hexdigest()[:16]


def cache_path(cache_dir, images, corruption, severity, seed):
    return os.path.join(cache_dir, f"{corruption}_{severity}_{cache_key(images, seed)}.npz")


def digest_path(path):
    """Where the sha256 digest of the cached set at `path` is kept."""
    return path + ".sha256"


def _file_digest(path):
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _read_verified(path, images):
    """The cached set at `path` if its digest matches and it fits `images`, else None (with a
    warning for a set whose digest is missing or differs: it is regenerated)."""
    if not os.path.isfile(path):
        return None
    try:
        with open(digest_path(path), encoding="utf-8") as f:
            expected = f.read().strip()
        if _file_digest(path) != expected:
            logging.warning("%s does not match its sha256 digest; regenerating it", path)
            return None
        with np.load(path, allow_pickle=False) as stored:
            corrupted = stored["images"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        logging.warning("%s is unusable (%s); regenerating it", path, error)
        return None
    if corrupted.shape != images.shape or corrupted.dtype != images.dtype:
        return None
    return corrupted


def _store(path, corrupted):
    """Writes the set and then its digest; a cache that cannot be written is skipped."""
    try:
        with atomic_path(path) as temporary:
            np.savez(temporary, images=corrupted)
        write_text(digest_path(path), _file_digest(path) + "\n")
    except OSError as error:
        logging.warning("could not write the corruption cache %s (%s); continuing", path, error)


def cached_corruption(images, corruption, severity, seed=0, cache_dir=None):
    """`corrupt(...)`, read from `cache_dir` when an earlier call stored it there (and its
    sha256 digest still matches), else generated and stored (written whole or not at all).
    `cache_dir=None`: no cache."""
    images = np.asarray(images)
    if cache_dir is None:
        return corrupt(images, corruption, severity, seed)
    _check(images, corruption, severity)
    path = cache_path(cache_dir, images, corruption, severity, seed)
    corrupted = _read_verified(path, images)
    if corrupted is None:
        corrupted = corrupt(images, corruption, severity, seed)
        _store(path, corrupted)
    return corrupted
