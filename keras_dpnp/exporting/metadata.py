"""`metadata.json`: what the exported model takes and returns, how it was trained and how robust
it is."""

import dataclasses
import datetime
import importlib.metadata
import os
import platform

import keras
import numpy as np
import onnx
import onnxruntime
import tensorflow as tf
import tf2onnx

from keras_dpnp.data.catalog import CATALOG
from keras_dpnp.exporting.errors import ExportError
from keras_dpnp.exporting.serving import INPUT_NAME, compute_dtypes, image_shape
from keras_dpnp.training.run_dir import RESULTS_FILE, ROBUSTNESS_FILE, recorded_checkpoint

FORMAT_VERSION = 1
INPUT_RANGE = (0.0, 1.0)
# The test-set figures of a run's results.json that describe robustness.
RESULT_KEYS = (
    "dataset",
    "data_source",
    "test_examples",
    "attack",
    "epsilon",
    "clean_accuracy",
    "pgd_accuracy",
    "checkpoint",
)


def _check_utf8(names, origin):
    """Refuses class names that cannot be written as UTF-8 (they go into metadata.json)."""
    for name in names:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ExportError(
                f"the class name {name.encode('utf-8', 'backslashreplace').decode()!r} "
                f"({origin}) is not valid UTF-8; give --class_names in UTF-8"
            ) from error
    return names


def class_names_for(model, dataset=None, given=None, results=None):
    """(class names, where they came from): `given`, else the run's catalog dataset's, else
    those its results.json recorded (`tfds:` and `folder:` data), else the indices; names that
    are not valid UTF-8 raise `ExportError`."""
    names, origin = _chosen_class_names(model, dataset, given, results)
    return _check_utf8(names, origin), origin


def _chosen_class_names(model, dataset, given, results):
    count = model.num_classes
    if given is not None:
        names = [str(name) for name in given]
        if len(names) != count:
            raise ExportError(
                f"{len(names)} class names given for a model with {count} "
                f"classes; give exactly {count}"
            )
        return names, "given"
    entry = CATALOG.get(dataset)
    if entry and entry.class_names and len(entry.class_names) == count:
        return list(entry.class_names), f"dataset {dataset}"
    recorded = (results or {}).get("class_names")
    if recorded and len(recorded) == count:
        return [str(name) for name in recorded], f"dataset {dataset} (the run's results.json)"
    return [str(index) for index in range(count)], "class indices (names unknown)"


def input_description(model):
    return {
        "name": INPUT_NAME,
        "shape": [None, *image_shape(model)],
        "dtype": "float32",
        "layout": "NHWC",
        "range": list(INPUT_RANGE),
        "normalisation": "inside the model (per-channel mean and std)",
    }


def summary(model, class_names):
    """The short description embedded in the ONNX file for a stand-alone predictor."""
    return {
        "class_names": class_names,
        "input": input_description(model),
        "method": model.method_name,
        "epsilon": model.attack_config.epsilon,
    }


def library_versions():
    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "onnx": onnx.__version__,
        "tf2onnx": tf2onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }
    try:
        versions["keras_dpnp"] = importlib.metadata.version("keras_dpnp")
    except importlib.metadata.PackageNotFoundError:
        pass
    return versions


def _model_description(model):
    head = {"kind": model.head_kind}
    if model.head_kind == "prototype":
        head.update(logits=model.head.logit_form, radius=model.head.radius)
        if model.head.logit_form == "cosine":
            head["scale"] = model.head.scale
    return {
        "class": type(model).__name__,
        "backbone": model.backbone.name,
        "feature_dim": int(model.backbone.output_shape[-1]),
        "head": head,
        "num_classes": model.num_classes,
        "parameters": int(model.count_params()),
    }


def _robustness(checkpoint, results, robustness):
    """The run's robustness figures that describe the exported checkpoint, and notes on others.

    results.json and robustness.json each name the file they measured.
    """
    if checkpoint is None:
        return None
    exported = os.path.basename(checkpoint)
    known, notes = {}, []
    if results:
        measured = recorded_checkpoint(results)["file"]
        if exported == measured:
            known["test"] = {key: results[key] for key in RESULT_KEYS if key in results}
        else:
            notes.append(
                f"results.json describes {measured}, not the exported {exported}; left out"
            )
    if robustness:
        evaluated = (robustness.get("model") or {}).get("path")
        if evaluated and os.path.basename(evaluated) == exported:
            known["report"] = robustness
        else:
            notes.append(
                f"robustness.json describes {evaluated or 'an unnamed model'}, not the "
                f"exported {exported}; left out (run keras_dpnp.evaluate on it)"
            )
    if notes:
        known["notes"] = notes
    return known or None


def build_metadata(
    model,
    source,
    run_files,
    class_names,
    class_names_source,
    artefacts,
    verification,
    probes,
    tolerance,
):
    """The metadata dict for the export of `model`.

    `source` is the `ModelSource` it was loaded from (None for a model object) and `run_files`
    its run's results.json and robustness.json ({name: dict or None}).
    """
    checkpoint = source.shown_path if source else None
    config = source.config.to_dict() if source and source.config else None
    return {
        "format_version": FORMAT_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "source": source.given if source else None,
        "checkpoint": checkpoint,
        "checkpoint_epoch": source.epoch() if source else None,
        "class_names": class_names,
        "class_names_source": class_names_source,
        "input": input_description(model),
        "outputs": {
            "logits": f"float32 [batch, {model.num_classes}]",
            "probabilities": "float32 softmax of the logits (SavedModel, ONNX)",
        },
        "model": _model_description(model),
        "precision": {
            "model_compute_dtypes": sorted(compute_dtypes(model)),
            "saved_model_and_onnx": "float32",
            "keras": "the model's own dtype policies",
        },
        "training": {
            "method": model.method_name,
            "epsilon": model.attack_config.epsilon,
            "attack": dataclasses.asdict(model.attack_config),
            "config": config,
        },
        "robustness": _robustness(
            checkpoint, run_files.get(RESULTS_FILE), run_files.get(ROBUSTNESS_FILE)
        ),
        "artefacts": artefacts,
        "verification": {
            "tolerance": tolerance,
            "rule": "max |Δ logits| <= tolerance * max(1, max |Keras logits|), "
            "max |Δ probabilities| <= tolerance, at the probe batch and at batch 1",
            "probes": {
                "clean": f"{len(probes.clean)} uniform random images",
                "adversarial": "PGD examples from the clean probes against the "
                "Keras model's own labels",
                "attack": dataclasses.asdict(probes.attack),
            },
            "results": verification,
        },
        "versions": library_versions(),
    }
