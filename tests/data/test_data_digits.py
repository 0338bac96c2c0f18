"""Digits loading, its fixed test split and the stratified validation split."""

import collections

import numpy as np
import pytest
from sklearn.datasets import load_digits

from keras_dpnp.data import DATASETS, load_dataset
from keras_dpnp.data.splitting import stratified_holdout
from keras_dpnp.data.stats import channel_mean_std


def _examples(images, labels):
    """A multiset of (pixels, label) pairs."""
    return collections.Counter(zip((image.tobytes() for image in images), labels.tolist()))


def test_digits_shapes_dtypes_and_info():
    splits = load_dataset("digits")
    train_images, train_labels = splits.train
    test_images, test_labels = splits.test
    assert train_images.shape == (1797 - 450, 8, 8, 1) and train_images.dtype == np.uint8
    assert test_images.shape == (450, 8, 8, 1) and test_images.dtype == np.uint8
    assert train_labels.dtype == np.int64 and test_labels.dtype == np.int64
    assert splits.validation is None
    assert train_images.min() == 0 and train_images.max() == 255
    info = splits.info
    assert (info.name, info.num_classes, info.image_shape) == ("digits", 10, (8, 8, 1))
    assert info.augment == "none"
    assert len(info.mean) == len(info.std) == 1 and len(info.class_names) == 10
    assert "digits" in info.source and "digits" in DATASETS


def test_digits_test_split_is_stratified_and_independent_of_seed():
    first = load_dataset("digits", seed=1, validation_fraction=0.2)
    second = load_dataset("digits", seed=7)
    np.testing.assert_array_equal(first.test[0], second.test[0])
    np.testing.assert_array_equal(first.test[1], second.test[1])
    counts = np.bincount(first.test[1], minlength=10)
    # Proportional shares: 450 / 1797 of each class (class 8 has only 174 images).
    shares = np.bincount(load_digits().target, minlength=10) * 450 / 1797
    assert counts.sum() == 450 and np.all(np.abs(counts - shares) < 1)
    assert np.all(np.abs(counts - 45) <= 2)


def test_digits_validation_is_disjoint_stratified_and_seeded():
    splits = load_dataset("digits", validation_fraction=0.25, seed=3)
    val_images, val_labels = splits.validation
    assert len(val_labels) == round(0.25 * (1797 - 450))
    assert len(splits.train[1]) + len(val_labels) == 1797 - 450
    # Together the three splits are exactly the full data set: a partition.
    full = load_digits()
    full_images = np.rint(full.images * 255 / 16).astype(np.uint8)[..., None]
    parts = _examples(*splits.train) + _examples(val_images, val_labels) + _examples(*splits.test)
    assert parts == _examples(full_images, full.target)
    expected = np.bincount(splits.train[1], minlength=10) + np.bincount(val_labels, minlength=10)
    assert np.all(np.abs(np.bincount(val_labels, minlength=10) - 0.25 * expected) <= 1)
    other_seed = load_dataset("digits", validation_fraction=0.25, seed=4)
    assert not np.array_equal(other_seed.validation[0], val_images)
    same_seed = load_dataset("digits", validation_fraction=0.25, seed=3)
    np.testing.assert_array_equal(same_seed.validation[0], val_images)


def test_stratified_holdout_is_exact_disjoint_and_proportional():
    labels = np.repeat(np.arange(3), [50, 30, 20])
    kept, held_out = stratified_holdout(labels, 17, seed=0)
    assert len(held_out) == 17 and len(kept) == 83
    assert not set(kept) & set(held_out)
    np.testing.assert_array_equal(np.sort(np.concatenate([kept, held_out])), np.arange(100))
    assert np.all(np.abs(np.bincount(labels[held_out]) - np.array([8.5, 5.1, 3.4])) < 1)


@pytest.mark.parametrize("fraction", [-0.1, 1.0])
def test_invalid_validation_fraction_is_rejected(fraction):
    with pytest.raises(ValueError):
        load_dataset("digits", validation_fraction=fraction)


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError, match="fashion_mnist, mnist, .*svhn_cropped, or tfds:<name>"):
        load_dataset("kmnist")


def test_channel_mean_std_matches_numpy():
    images = np.random.default_rng(0).integers(0, 256, size=(5000, 4, 4, 3), dtype=np.uint8)
    mean, std = channel_mean_std(images)
    scaled = images.astype(np.float64) / 255.0
    np.testing.assert_allclose(mean, scaled.mean(axis=(0, 1, 2)), rtol=1e-10)
    np.testing.assert_allclose(std, scaled.std(axis=(0, 1, 2)), rtol=1e-8)
