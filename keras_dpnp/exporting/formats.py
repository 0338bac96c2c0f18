"""The artefact formats: SavedModel (TF Serving layout), ONNX and the native `.keras` file.

Each format has a writer, `write_*(model, export_dir, options)`, which returns the artefact's
metadata entry (with `path`, relative to `export_dir`), and a loader, `load_*(path)`, which
returns a function images -> {output: array} for the verification.
"""

import dataclasses
import json
import logging
import os
from collections.abc import Callable

import keras
import numpy as np
import onnx
import onnxruntime
import tensorflow as tf
import tf2onnx

from keras_dpnp.exporting.errors import ExportError
from keras_dpnp.exporting.serving import (
    INPUT_NAME,
    OUTPUT_NAMES,
    input_signature,
    serving_function,
    serving_outputs,
)
from keras_dpnp.training.run_dir import load_model

SAVED_MODEL_SIGNATURE = "serving_default"
ONNX_FILE = "model.onnx"
OPSETS = (17, 18)
BATCH_DIM = "batch"
# Key of the JSON summary (class names, input range, method) in the model's metadata_props,
# so a predictor needs nothing but the .onnx file.
SUMMARY_KEY = "keras_dpnp"
KERAS_FILE = "model.keras"


# SavedModel


def write_saved_model(model, export_dir, options):
    """Writes the SavedModel under `export_dir`; returns its metadata entry."""
    relative = os.path.join("saved_model", str(options.saved_model_version))

    def serve(images):
        return serving_outputs(model, images)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SAVED_MODEL_SIGNATURE, serve, input_signature=input_signature(model))
    archive.write_out(os.path.join(export_dir, relative), verbose=False)
    return {
        "path": relative,
        "signature": SAVED_MODEL_SIGNATURE,
        "input": INPUT_NAME,
        "outputs": ["logits", "probabilities"],
    }


def load_saved_model(path):
    """A function from float32 images to the reloaded signature's outputs (numpy)."""
    loaded = tf.saved_model.load(path)

    def run(images):
        outputs = loaded.signatures[SAVED_MODEL_SIGNATURE](**{INPUT_NAME: tf.constant(images)})
        return {name: value.numpy() for name, value in outputs.items()}

    return run


# ONNX


def _name_batch_dims(graph):
    for value in list(graph.input) + list(graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = BATCH_DIM


def write_onnx(model, export_dir, options):
    """Converts the serving function to `model.onnx` under `export_dir`; returns its entry."""
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    proto, _ = tf2onnx.convert.from_function(
        serving_function(model), input_signature=input_signature(model), opset=options.opset
    )
    _name_batch_dims(proto.graph)
    proto.doc_string = "images [batch, H, W, C] float32 in [0, 1] -> logits, probabilities"
    entry = proto.metadata_props.add()
    entry.key, entry.value = SUMMARY_KEY, json.dumps(options.summary)
    onnx.checker.check_model(proto)
    onnx.save(proto, os.path.join(export_dir, ONNX_FILE))
    return {
        "path": ONNX_FILE,
        "opset": options.opset,
        "input": INPUT_NAME,
        "outputs": list(OUTPUT_NAMES),
        "batch_dimension": BATCH_DIM,
    }


def load_onnx(path):
    """A function from float32 images to onnxruntime's outputs."""
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])

    def run(images):
        values = session.run(list(OUTPUT_NAMES), {INPUT_NAME: images})
        return dict(zip(OUTPUT_NAMES, values))

    return run


# .keras


def write_keras(model, export_dir, options):
    """Saves the model (and its optimizer state, if compiled) under `export_dir`."""
    model.save(os.path.join(export_dir, KERAS_FILE))
    return {"path": KERAS_FILE, "outputs": ["logits"]}


def load_keras(path):
    """A function from float32 images to the reloaded model's inference-mode logits."""
    model = load_model(path)
    return lambda images: {"logits": np.asarray(model(images, training=False))}


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """Settings of the writers; `summary` is the short description embedded in the ONNX file."""

    opset: int = 17
    saved_model_version: int = 1
    summary: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.opset not in OPSETS:
            raise ExportError(f"ONNX opset must be one of {list(OPSETS)}, got {self.opset}")
        if self.saved_model_version < 1:
            raise ExportError(
                f"the SavedModel version must be a positive integer, got {self.saved_model_version}"
            )


@dataclasses.dataclass(frozen=True)
class ArtefactFormat:
    """`write(model, export_dir, options)` returns the artefact's metadata entry (with `path`,
    relative to `export_dir`); `load(path)` returns a function images -> {output: array}.
    `float32`: the artefact is written from the model's float32 copy (a serving graph)."""

    name: str
    write: Callable
    load: Callable
    float32: bool


FORMATS = {
    "saved_model": ArtefactFormat("saved_model", write_saved_model, load_saved_model, float32=True),
    "onnx": ArtefactFormat("onnx", write_onnx, load_onnx, float32=True),
    "keras": ArtefactFormat("keras", write_keras, load_keras, float32=False),
}


def parse_formats(names):
    """Format names (a list or a comma-separated string), checked and without repeats."""
    if isinstance(names, str):
        names = names.split(",")
    names = [name.strip() for name in names if name.strip()]
    if not names:
        raise ExportError(f"no export format given; choose from {', '.join(FORMATS)}")
    unknown = [name for name in names if name not in FORMATS]
    if unknown:
        raise ExportError(
            f"unknown export format {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(FORMATS)}"
        )
    return list(dict.fromkeys(names))
