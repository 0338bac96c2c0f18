"""scikit-learn's bundled handwritten digits as uint8 images."""

import numpy as np
from sklearn.datasets import load_digits

from keras_dpnp.data.catalog import DIGITS_TEST_SEED, DIGITS_TEST_SIZE
from keras_dpnp.data.splitting import stratified_holdout

_DIGITS_MAX_VALUE = 16


def load_digits_arrays() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Returns ((train images, labels), (test images, labels)) with a fixed 450-image test set.

    Images are uint8 [N, 8, 8, 1] rescaled from 0..16 to 0..255; the test split
    is stratified and seeded independently of any run seed, so every run sees
    the same test images.
    """
    bunch = load_digits()
    scaled = np.rint(bunch.images * (255.0 / _DIGITS_MAX_VALUE))
    images = scaled.astype(np.uint8)[..., np.newaxis]
    labels = bunch.target.astype(np.int64)
    train_idx, test_idx = stratified_holdout(labels, DIGITS_TEST_SIZE, DIGITS_TEST_SEED)
    return (images[train_idx], labels[train_idx]), (images[test_idx], labels[test_idx])
