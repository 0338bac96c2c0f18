"""Finding and loading the model to evaluate: a run directory or a bare `.keras` file."""

import dataclasses
import os

import keras
import numpy as np

from keras_dpnp.config import TrainConfig

CHECKPOINTS = ("best", "last")


class ModelLoadError(RuntimeError):
    """The model (or its run directory) is missing, corrupt or does not fit the data."""


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """Where the model file is, the run's config if it came from a run directory, and the
    folder its report goes to by default."""

    model_path: str
    config: TrainConfig | None
    folder: str


def find_model(path, checkpoint="best"):
    """Resolves `path` (a run directory or a `.keras` file) to a `ModelSource`.

    A run directory must hold `config.json` and a checkpoint: `best.keras` (the epoch of best
    validation accuracy under attack) if `checkpoint` is 'best' and it exists, else
    `last.keras`.
    """
    if checkpoint not in CHECKPOINTS:
        raise ValueError(f"checkpoint must be one of {CHECKPOINTS}, got {checkpoint!r}")
    if os.path.isdir(path):
        config_path = os.path.join(path, "config.json")
        if not os.path.isfile(config_path):
            raise ModelLoadError(f"{path} is a folder without config.json: pass a run "
                                 f"directory written by keras_dpnp.train, or a .keras file")
        try:
            with open(config_path, encoding="utf-8") as f:
                config = TrainConfig.from_json(f.read())
        except ValueError as error:
            raise ModelLoadError(f"{config_path} is not a valid run config: {error}") from error
        names = ("best.keras", "last.keras") if checkpoint == "best" else ("last.keras",)
        for name in names:
            candidate = os.path.join(path, name)
            if os.path.isfile(candidate):
                return ModelSource(candidate, config, path)
        raise ModelLoadError(f"{path} holds no {' or '.join(names)}: has its training "
                             f"finished an epoch?")
    if not os.path.exists(path):
        raise ModelLoadError(f"model file {path} does not exist")
    if not path.endswith(".keras"):
        raise ModelLoadError(f"{path} is not a .keras file or a run directory")
    return ModelSource(path, None, os.path.dirname(os.path.abspath(path)))


def load_model(path):
    """Loads a `.keras` model (keras_dpnp's layers are registered on import), or raises a
    one-line `ModelLoadError`."""
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # noqa: BLE001  (any reader failure means "not a usable model")
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ModelLoadError(f"could not load {path} as a Keras model "
                             f"({type(error).__name__}: {reason[:200]}); is the file "
                             f"complete and written by keras_dpnp?") from error


def check_fits_data(model, info):
    """Raises `ModelLoadError` unless the model takes `info.image_shape` images and returns
    `info.num_classes` logits."""
    probe = np.zeros((1,) + tuple(info.image_shape), np.float32)
    try:
        logits = model(probe, training=False)
    except Exception as error:  # noqa: BLE001  (a shape mismatch surfaces as several types)
        raise ModelLoadError(f"the model does not accept {info.name} images of shape "
                             f"{tuple(info.image_shape)}: {type(error).__name__}") from error
    classes = int(logits.shape[-1])
    if classes != info.num_classes:
        raise ModelLoadError(f"the model predicts {classes} classes but {info.name} has "
                             f"{info.num_classes}: pass the --dataset it was trained on")
