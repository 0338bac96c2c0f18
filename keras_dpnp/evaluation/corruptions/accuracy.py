"""Accuracy under the 15 CIFAR-10-C common corruptions × 5 severities (SPEC §5).

Two sources: the official CIFAR-10-C images (TFDS `cifar10_corrupted`, prepared beforehand) or
sets generated here from any test set with CIFAR-10-C's own parameters
(`corruptions.generated`), labelled "generated" in every result. The headline is the mean
corruption accuracy: the mean over every corruption and severity evaluated.
"""

import dataclasses
import time

import numpy as np
import tensorflow as tf
from absl import logging

from keras_dpnp.data import cifar10_corrupted
from keras_dpnp.data.cifar10_corrupted import CORRUPTIONS, SEVERITIES
from keras_dpnp.evaluation.accuracy import predicted_classes
from keras_dpnp.evaluation.corruptions.generated import PARAMETER_SOURCE, cached_corruption
from keras_dpnp.files import UnwritableError, check_writable
from keras_dpnp.model import inference_function

SOURCES = ("auto", "tfds", "generated")
OFFICIAL_DATASET = "cifar10"


@dataclasses.dataclass(frozen=True)
class CorruptionSettings:
    """Where corrupted images come from, and which corruptions and severities to evaluate.

    source: `tfds` (official CIFAR-10-C, prepared in `data_dir`), `generated` (from the test
        points, cached in `cache_dir`; None: not cached), or `auto`: `tfds` when `dataset` is
        cifar10 and CIFAR-10-C is prepared, else `generated`.
    dataset: the name of the test set the points come from (None: unknown).
    """

    source: str = "auto"
    dataset: str | None = None
    data_dir: str | None = None
    cache_dir: str | None = None
    corruptions: tuple[str, ...] = CORRUPTIONS
    severities: tuple[int, ...] = SEVERITIES

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"corruption source must be one of {SOURCES}, got {self.source!r}")
        corruptions = tuple(self.corruptions)
        unknown = [name for name in corruptions if name not in CORRUPTIONS]
        if not corruptions or unknown:
            raise ValueError(
                f"corruptions must be a non-empty selection of "
                f"{', '.join(CORRUPTIONS)}; got unknown {unknown or 'none'}"
            )
        severities = tuple(int(s) for s in self.severities)
        if not severities or any(s not in SEVERITIES for s in severities):
            raise ValueError(
                f"severities must be a non-empty selection of {SEVERITIES}, got "
                f"{list(self.severities)}"
            )
        if self.source == "tfds" and self.dataset not in (None, OFFICIAL_DATASET):
            raise ValueError(
                f"CIFAR-10-C corrupts the CIFAR-10 test set, but the test points "
                f"come from {self.dataset}: use the corruption source 'generated'"
            )
        object.__setattr__(self, "corruptions", tuple(dict.fromkeys(corruptions)))
        object.__setattr__(self, "severities", tuple(sorted(set(severities))))

    def resolved(self):
        """These settings with `auto` replaced by the source that will be used, and without a
        cache that cannot be written (a warning says so); raises `DatasetNotFoundError` (with
        what to do) when `tfds` is asked for but not prepared."""
        if self.source == "tfds":
            cifar10_corrupted.require_prepared(self.data_dir, self.corruptions, self.severities)
            return self
        if self.source == "generated":
            return self._with_writable_cache()
        official = self.dataset == OFFICIAL_DATASET and not cifar10_corrupted.missing_configs(
            self.data_dir, self.corruptions, self.severities
        )
        if official:
            return dataclasses.replace(self, source="tfds")
        return dataclasses.replace(self, source="generated")._with_writable_cache()

    def _with_writable_cache(self):
        if self.cache_dir is None:
            return self
        try:
            check_writable(self.cache_dir)
        except UnwritableError as error:
            logging.warning("%s; the corrupted sets are generated without a cache", error)
            return dataclasses.replace(self, cache_dir=None)
        return self


def _accuracy(predict, images, labels, batch_size):
    correct = 0
    for start in range(0, len(images), batch_size):
        batch = tf.constant(images[start : start + batch_size].astype(np.float32) / 255.0)
        predicted = predicted_classes(predict(batch))
        correct += int(np.sum(predicted == labels[start : start + batch_size]))
    return correct / len(labels)


def _subset(count, num_points, seed):
    if num_points is None or num_points >= count:
        return None
    return np.sort(np.random.default_rng(seed).choice(count, num_points, replace=False))


def _as_uint8(images):
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    if images.size and (images.min() < 0.0 or images.max() > 1.0):
        raise ValueError(
            f"float images must lie in [0, 1], got values in "
            f"[{images.min():.4g}, {images.max():.4g}]; pass uint8 images or "
            f"divide by 255"
        )
    return np.rint(images * 255.0).astype(np.uint8)


def summarise(accuracy):
    """Means per severity, per corruption and overall of {corruption: [accuracy per severity]}."""
    table = np.array([accuracy[name] for name in accuracy])
    return {
        "mean_per_severity": [float(v) for v in table.mean(axis=0)],
        "mean_per_corruption": {name: float(np.mean(row)) for name, row in accuracy.items()},
        "mean_corruption_accuracy": float(table.mean()),
    }


def corruption_accuracy(
    model,
    images=None,
    labels=None,
    *,
    settings=None,
    seed=0,
    num_points=None,
    batch_size=256,
    log=None,
):
    """Accuracy of `model` on every corruption × severity of `settings`, as a JSON-ready dict.

    Args:
        model: maps float32 images in [0, 1] to logits (called with `training=False`).
        images, labels: the clean test points (uint8, or float in [0, 1] which is stored as
            8-bit like CIFAR-10-C) to corrupt for the `generated` source; the `tfds` source
            reads its own CIFAR-10-C images and ignores them.
        settings: a `CorruptionSettings` (default: `auto`, which generates unless told the
            points are CIFAR-10's and CIFAR-10-C is prepared).
        seed: the generated corruptions' seed, and the seed of the `num_points` subset.
        num_points: evaluate a seeded subset of this many points (the same indices for every
            corruption and severity); None: all.
        log: called with a progress line after each corruption (None: silent).

    Returns a dict with `source` (`tfds` or `generated`), a `label` saying where the images
    come from, `accuracy` {corruption: [accuracy per severity]}, `mean_per_severity`,
    `mean_per_corruption`, `mean_corruption_accuracy` (the headline) and `clean_accuracy`
    (generated only: the same points uncorrupted).
    """
    settings = (settings or CorruptionSettings()).resolved()
    if num_points is not None and num_points < 1:
        raise ValueError(f"num_points must be >= 1 (or None for all), got {num_points}")
    predict = tf.function(inference_function(model), reduce_retracing=True)
    started = time.perf_counter()
    entry = {
        "source": settings.source,
        "seed": int(seed),
        "corruptions": list(settings.corruptions),
        "severities": list(settings.severities),
    }
    if settings.source == "tfds":
        entry["label"] = (
            f"official CIFAR-10-C (TFDS {cifar10_corrupted.TFDS_NAME}, "
            f"data_dir={settings.data_dir or 'default'})"
        )
        entry["clean_accuracy"] = None

        def corrupted_set(name, severity):
            # Every config lists the same test images in the same order, so one seeded
            # subset picks the same points everywhere.
            images, labels = cifar10_corrupted.load_corrupted(name, severity, settings.data_dir)
            chosen = _subset(len(labels), num_points, seed)
            if chosen is not None:
                images, labels = images[chosen], labels[chosen]
            return images, labels, chosen
    else:
        if images is None or labels is None:
            raise ValueError("the generated corruption source needs the clean images and labels")
        images = _as_uint8(images)
        labels = np.asarray(labels).astype(np.int64)
        if images.ndim != 4 or not len(images) or labels.shape != (len(images),):
            raise ValueError(
                f"images must be [N >= 1, H, W, C] with one label each, got images "
                f"{images.shape} and labels {labels.shape}"
            )
        subset = _subset(len(images), num_points, seed)
        if subset is not None:
            images, labels = images[subset], labels[subset]
        where = f"the {settings.dataset} test points" if settings.dataset else "the test points"
        entry["label"] = f"generated from {where} with {PARAMETER_SOURCE}"
        entry["clean_accuracy"] = _accuracy(predict, images, labels, batch_size)

        def corrupted_set(name, severity):
            corrupted = cached_corruption(images, name, severity, seed, settings.cache_dir)
            return corrupted, labels, subset

    accuracy = {}
    for name in settings.corruptions:
        row = []
        for severity in settings.severities:
            corrupted, truth, chosen = corrupted_set(name, severity)
            row.append(_accuracy(predict, corrupted, truth, batch_size))
        accuracy[name] = row
        if log:
            log(f"{name}: " + ", ".join(f"{100 * a:.1f}" for a in row) + " %")
    entry.update(
        {
            "points": int(len(truth)),
            "subset": None if chosen is None else chosen.tolist(),
            "accuracy": accuracy,
            **summarise(accuracy),
            "seconds": round(time.perf_counter() - started, 2),
        }
    )
    return entry
