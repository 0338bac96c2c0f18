"""The native `.keras` file, for further `fit` (custom objects are registered by keras_dpnp)."""

import os

import numpy as np

from keras_dpnp.exporting.source import load_model_file

FILE_NAME = "model.keras"


def write(model, export_dir, options):
    """Saves the model (and its optimizer state, if compiled) under `export_dir`."""
    model.save(os.path.join(export_dir, FILE_NAME))
    return {"path": FILE_NAME, "outputs": ["logits"]}


def load(path):
    """A function from float32 images to the reloaded model's inference-mode logits."""
    model = load_model_file(path)
    return lambda images: {"logits": np.asarray(model(images, training=False))}
