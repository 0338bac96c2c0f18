"""Datasets as in-memory uint8 arrays (or image files streamed from disk) and the tf.data
pipeline over them."""

from keras_dpnp.data.catalog import DATASETS
from keras_dpnp.data.image_files import ImageFiles
from keras_dpnp.data.info import DatasetInfo, DatasetNotFoundError, Splits
from keras_dpnp.data.loading import load_dataset
from keras_dpnp.data.pipeline import make_dataset
from keras_dpnp.data.sources import DATASET_FORMS, check_dataset_name, parse_image_size

__all__ = [
    "DATASETS",
    "DATASET_FORMS",
    "DatasetInfo",
    "DatasetNotFoundError",
    "ImageFiles",
    "Splits",
    "check_dataset_name",
    "load_dataset",
    "make_dataset",
    "parse_image_size",
]
