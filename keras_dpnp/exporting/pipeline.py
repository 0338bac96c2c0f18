"""`export_model`: write each artefact into a staging folder, verify it, then move it into place."""

import dataclasses
import json
import math
import os

from keras_dpnp.exporting import formats
from keras_dpnp.exporting.errors import ExportError, VerificationError
from keras_dpnp.exporting.metadata import build_metadata, class_names_for, summary
from keras_dpnp.exporting.serving import float32_copy
from keras_dpnp.exporting.staging import check_destination, staged_directory
from keras_dpnp.exporting.verification import TOLERANCE, make_probes, reference_outputs, verify
from keras_dpnp.files import write_text
from keras_dpnp.model import AdvDPNP
from keras_dpnp.training.run_dir import (
    RESULTS_FILE,
    ROBUSTNESS_FILE,
    ModelLoadError,
    find_model,
    load_model,
)

METADATA_NAME = "metadata.json"


def load_for_export(model, checkpoint="best"):
    """(the `AdvDPNP` to export, its `ModelSource` or None, its run's result files).

    `model` is an `AdvDPNP`, a `.keras` path or a run directory; a run's config.json,
    results.json and robustness.json are read here, so a broken one stops the export first.
    """
    if isinstance(model, AdvDPNP):
        return model, None, {}
    if not isinstance(model, (str, os.PathLike)):
        raise ExportError(
            f"expected an AdvDPNP model, a run directory or a .keras path, "
            f"got {type(model).__name__}"
        )
    try:
        source = find_model(os.fspath(model), checkpoint)
        loaded = load_model(source.model_path, compile=True)
        run_files = (
            {name: source.run.read_json(name) for name in (RESULTS_FILE, ROBUSTNESS_FILE)}
            if source.run
            else {}
        )
    except ModelLoadError as error:
        raise ExportError(str(error)) from error
    if not isinstance(loaded, AdvDPNP):
        raise ExportError(
            f"{source.model_path} holds a {type(loaded).__name__}, not a keras_dpnp AdvDPNP model"
        )
    return loaded, source, run_files


def _first_non_finite(value, path=""):
    """The dotted key of the first NaN or infinite number in a JSON-ready value, or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _first_non_finite(item, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


def metadata_text(metadata):
    """The text of metadata.json; `ExportError` naming the key of a NaN or infinite number
    (JSON has none, so a reader of the file would fail)."""
    found = _first_non_finite(metadata)
    if found is not None:
        raise ExportError(
            f"{METADATA_NAME} would hold a NaN or infinite number at {found}, which is not "
            f"valid JSON; check the run's results.json and robustness.json"
        )
    return json.dumps(metadata, indent=2, allow_nan=False) + "\n"


def _write_and_verify(artefact_format, model, staging, options, probes, references, tolerance):
    name = artefact_format.name
    try:
        entry = artefact_format.write(model, staging, options)
    except Exception as error:  # noqa: BLE001 - a converter may raise anything
        raise ExportError(f"{name}: writing failed: {type(error).__name__}: {error}") from error
    try:
        run = artefact_format.load(os.path.join(staging, entry["path"]))
    except Exception as error:  # noqa: BLE001 - a bad artefact may fail to load in any way
        raise VerificationError(
            f"{name}: the written artefact could not be reloaded: {type(error).__name__}: {error}"
        ) from error
    return entry, verify(name, run, probes, references, tolerance)


def export_model(
    model,
    out_dir,
    export_formats=tuple(formats.FORMATS),
    *,
    checkpoint="best",
    overwrite=False,
    class_names=None,
    opset=17,
    saved_model_version=1,
    tolerance=TOLERANCE,
    probe_count=16,
    seed=0,
):
    """Exports `model` to `out_dir` as verified SavedModel / ONNX / `.keras` plus metadata.json.

    Args:
        model: an `AdvDPNP`, a `.keras` path, or a run directory (its checkpoint, config.json,
            results.json and robustness.json).
        out_dir: the export folder; it must be absent or empty unless `overwrite`.
        export_formats: names in `FORMATS` (list or comma-separated string). SavedModel and
            ONNX are written from the model's float32 copy if it was trained in mixed
            precision; `.keras` keeps the model as it is.
        checkpoint: for a run directory, `best` (best.keras if present, else last.keras) or
            `last`.
        class_names: names of the classes; default: the run's dataset's, else the indices.
        opset: ONNX opset (17 or 18). saved_model_version: TF Serving version folder.
        tolerance: allowed |Δ| between each reloaded artefact and the Keras model.
        probe_count, seed: how many random probe images (each also attacked by PGD), and seed.

    Returns:
        The metadata dict written to `out_dir/metadata.json`.

    Raises:
        ExportError (VerificationError for a failed parity check): `out_dir` is then untouched.
    """
    names = formats.parse_formats(export_formats)
    options = formats.ExportOptions(opset=opset, saved_model_version=saved_model_version)
    check_destination(out_dir, overwrite)
    model, source, run_files = load_for_export(model, checkpoint)
    dataset = source.config.dataset if source and source.config else None
    labels, labels_source = class_names_for(
        model, dataset, class_names, run_files.get(RESULTS_FILE)
    )
    options = dataclasses.replace(options, summary=summary(model, labels))
    serving_model = float32_copy(model)
    probes = make_probes(serving_model, probe_count, seed)
    serving_references = reference_outputs(serving_model, probes)
    keras_references = (
        serving_references if serving_model is model else reference_outputs(model, probes)
    )
    artefacts, results = {}, {}
    with staged_directory(out_dir, overwrite) as staging:
        for name in names:
            artefact_format = formats.FORMATS[name]
            artefact_model, references = (
                (serving_model, serving_references)
                if artefact_format.float32
                else (model, keras_references)
            )
            artefacts[name], results[name] = _write_and_verify(
                artefact_format, artefact_model, staging, options, probes, references, tolerance
            )
        metadata = build_metadata(
            model, source, run_files, labels, labels_source, artefacts, results, probes, tolerance
        )
        write_text(os.path.join(staging, METADATA_NAME), metadata_text(metadata))
    return metadata
