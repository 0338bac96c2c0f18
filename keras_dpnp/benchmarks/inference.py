"""Timing one exported model as Keras, SavedModel and onnxruntime on the same inputs."""

import json
import os
import platform
import statistics
import time

import numpy as np
import onnxruntime
import tensorflow as tf

from keras_dpnp.exporting import METADATA_NAME, ExportError
from keras_dpnp.training.run_dir import load_model

# The parts of metadata.json the benchmark reads, and their JSON types.
_METADATA_PARTS = {
    "artefacts": dict,
    "input": dict,
    "model": dict,
    "versions": dict,
    "source": (str, type(None)),
}

MIN_CALLS = 5


def time_calls(function, images, seconds, warmup):
    """Per-call seconds of `function(images)` over at least `seconds` (and `MIN_CALLS` calls)."""
    for _ in range(warmup):
        function(images)
    durations = []
    started = time.perf_counter()
    while len(durations) < MIN_CALLS or time.perf_counter() - started < seconds:
        begin = time.perf_counter()
        function(images)
        durations.append(time.perf_counter() - begin)
    return durations


def summarise(backend, batch_size, durations):
    ordered = sorted(durations)
    return {
        "backend": backend,
        "batch_size": batch_size,
        "calls": len(durations),
        "median_ms": 1e3 * statistics.median(ordered),
        "p90_ms": 1e3 * ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
        "images_per_second": batch_size * len(durations) / sum(durations),
    }


def _saved_model_runner(path, signature_name):
    loaded = tf.saved_model.load(path)

    def run(images):
        outputs = loaded.signatures[signature_name](images=tf.constant(images))
        return {name: value.numpy() for name, value in outputs.items()}

    return run


def _onnx_runner(path, threads):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return lambda images: session.run(None, {"images": images})


def backends(export_dir, artefacts, threads=0):
    """Backend name -> function(images), for each artefact listed in `artefacts`."""
    functions = {}
    if "keras" in artefacts:
        model = load_model(os.path.join(export_dir, artefacts["keras"]["path"]))
        functions["keras"] = model.predict_on_batch
    if "saved_model" in artefacts:
        entry = artefacts["saved_model"]
        functions["saved_model"] = _saved_model_runner(
            os.path.join(export_dir, entry["path"]), entry["signature"]
        )
    if "onnx" in artefacts:
        functions["onnxruntime"] = _onnx_runner(
            os.path.join(export_dir, artefacts["onnx"]["path"]), threads
        )
    return functions


def read_metadata(export_dir):
    """The metadata.json of an export folder; `ExportError` naming the file when it is
    unreadable, not UTF-8 JSON, or lacks a part the benchmark reads."""
    path = os.path.join(export_dir, METADATA_NAME)
    try:
        with open(path, encoding="utf-8") as f:
            metadata = json.load(f)
    except (OSError, ValueError) as error:
        raise ExportError(f"cannot read {path} ({type(error).__name__}: {error})") from error
    wrong = [
        name
        for name, kind in _METADATA_PARTS.items()
        if not isinstance(metadata, dict) or not isinstance(metadata.get(name), kind)
    ]
    if wrong or not isinstance(metadata["input"].get("shape"), list):
        raise ExportError(
            f"{path} is not an export's metadata (missing or malformed: "
            f"{', '.join(wrong or ['input.shape'])}); export the model again"
        )
    return metadata


def run_benchmark(export_dir, batch_sizes, seconds, warmup=3, threads=0):
    """Timings of every artefact in `export_dir` at each batch size, as a JSON-ready dict."""
    metadata = read_metadata(export_dir)
    functions = backends(export_dir, metadata["artefacts"], threads)
    image_shape = tuple(metadata["input"]["shape"][1:])
    rng = np.random.default_rng(0)
    results = []
    for batch_size in batch_sizes:
        images = rng.random((batch_size, *image_shape), dtype=np.float32)
        for name, function in functions.items():
            durations = time_calls(function, images, seconds, warmup)
            results.append(summarise(name, batch_size, durations))
    return {
        "model": metadata["source"],
        "input_shape": list(image_shape),
        "backbone": metadata["model"]["backbone"],
        "parameters": metadata["model"]["parameters"],
        "cpu": {
            "machine": platform.machine(),
            "cores": os.cpu_count(),
            "threads": threads or "default",
        },
        "seconds_per_cell": seconds,
        "versions": metadata["versions"],
        "results": results,
    }


def format_table(report):
    lines = [
        f"{report['backbone']} ({report['parameters']:,} parameters, input "
        f"{'×'.join(map(str, report['input_shape']))}), {report['cpu']['cores']} CPU cores",
        "| backend | batch | median latency (ms) | p90 latency (ms) | images/s |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {row['backend']} | {row['batch_size']} | {row['median_ms']:.2f} | "
        f"{row['p90_ms']:.2f} | {row['images_per_second']:.0f} |"
        for row in report["results"]
    ]
    return "\n".join(lines)
