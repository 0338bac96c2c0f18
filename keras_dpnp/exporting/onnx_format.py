"""ONNX (opset >= 17, dynamic batch) with named outputs, runnable in onnxruntime."""

import json
import logging
import os

import onnx
import onnxruntime
import tf2onnx

from keras_dpnp.exporting.serving import (INPUT_NAME, OUTPUT_NAMES, input_signature,
                                          serving_function)

FILE_NAME = "model.onnx"
OPSETS = (17, 18)
BATCH_DIM = "batch"
# Key of the JSON summary (class names, input range, method) in the model's metadata_props,
# so a predictor needs nothing but the .onnx file.
SUMMARY_KEY = "keras_dpnp"


def _name_batch_dims(graph):
    for value in list(graph.input) + list(graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = BATCH_DIM


def write(model, export_dir, options):
    """Converts the serving function to `model.onnx` under `export_dir`; returns its entry."""
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    proto, _ = tf2onnx.convert.from_function(
        serving_function(model), input_signature=input_signature(model), opset=options.opset)
    _name_batch_dims(proto.graph)
    proto.doc_string = "images [batch, H, W, C] float32 in [0, 1] -> logits, probabilities"
    entry = proto.metadata_props.add()
    entry.key, entry.value = SUMMARY_KEY, json.dumps(options.summary)
    onnx.checker.check_model(proto)
    onnx.save(proto, os.path.join(export_dir, FILE_NAME))
    return {"path": FILE_NAME, "opset": options.opset, "input": INPUT_NAME,
            "outputs": list(OUTPUT_NAMES), "batch_dimension": BATCH_DIM}


def load(path):
    """A function from float32 images to onnxruntime's outputs."""
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])

    def run(images):
        values = session.run(list(OUTPUT_NAMES), {INPUT_NAME: images})
        return dict(zip(OUTPUT_NAMES, values))

    return run
