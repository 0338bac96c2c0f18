"""Datasets as in-memory uint8 arrays and the tf.data pipeline over them."""

from keras_dpnp.data.catalog import DATASETS
from keras_dpnp.data.info import DatasetInfo, DatasetNotFoundError, Splits
from keras_dpnp.data.loading import load_dataset
from keras_dpnp.data.pipeline import make_dataset

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "DatasetNotFoundError",
    "Splits",
    "load_dataset",
    "make_dataset",
]
