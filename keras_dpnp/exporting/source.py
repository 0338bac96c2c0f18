"""The model to export and what its run directory says about it."""

import dataclasses
import json
import os

import keras

from keras_dpnp.exporting.errors import ExportError
from keras_dpnp.model import AdvDPNP

# Checkpoints of a run directory, by the name of the --checkpoint choice.
CHECKPOINTS = {"best": ("best.keras", "last.keras"), "last": ("last.keras",)}
RUN_FILES = {"config": "config.json", "results": "results.json", "robustness": "robustness.json"}


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """A loaded `AdvDPNP` model, where it came from, and its run's JSON files (None if absent).

    `path` is what the caller gave; `checkpoint` the `.keras` file actually loaded.
    """

    model: AdvDPNP
    path: str | None
    checkpoint: str | None
    run_dir: str | None
    config: dict | None
    results: dict | None
    robustness: dict | None


def _read_json(path):
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as error:
        raise ExportError(f"could not read {path}: {error}; repair or remove the file") from error


def _checkpoint_path(path, checkpoint):
    if checkpoint not in CHECKPOINTS:
        raise ExportError(f"checkpoint must be one of {list(CHECKPOINTS)}, got {checkpoint!r}")
    if not os.path.exists(path):
        raise ExportError(f"model not found: {path}; give a run directory (holding "
                          f"best.keras or last.keras) or a .keras file")
    if os.path.isdir(path):
        names = CHECKPOINTS[checkpoint]
        for name in names:
            if os.path.isfile(os.path.join(path, name)):
                return os.path.join(path, name)
        raise ExportError(f"{path} holds no {' or '.join(names)}; give a run directory "
                          f"written by keras_dpnp.train or a .keras file")
    if not path.endswith(".keras"):
        raise ExportError(f"{path} is not a .keras file; give a run directory or a .keras file")
    return path


def load_model_file(path):
    """Loads a `.keras` file holding an `AdvDPNP` model, or raises `ExportError` saying why not."""
    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # noqa: BLE001 - keras raises many types for a bad file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ExportError(f"could not load {path} as a Keras model ({type(error).__name__}: "
                          f"{reason}); the file is corrupt or not a .keras archive") from error
    if not isinstance(model, AdvDPNP):
        raise ExportError(f"{path} holds a {type(model).__name__}, not a keras_dpnp AdvDPNP model")
    return model


def load_source(path, checkpoint="best"):
    """Loads the model at `path` and its run's JSON files.

    `path` is a `.keras` file or a run directory; from a run directory `checkpoint='best'`
    takes best.keras (the epoch of best validation accuracy) when it exists, else last.keras.
    """
    model_path = _checkpoint_path(path, checkpoint)
    folder = os.path.dirname(os.path.abspath(model_path))
    run_dir = folder if os.path.isfile(os.path.join(folder, RUN_FILES["config"])) else None
    files = {key: _read_json(os.path.join(run_dir, name)) if run_dir else None
             for key, name in RUN_FILES.items()}
    return ModelSource(model=load_model_file(model_path), path=path, checkpoint=model_path,
                       run_dir=run_dir, **files)
