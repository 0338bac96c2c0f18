"""keras_dpnp: adversarially trained Deep Positive-Negative Prototypes (Adv-DPNP) in Keras 3."""

# First, before TensorFlow loads: the entry points' TensorFlow settings (keras_dpnp.startup).
from keras_dpnp import startup

startup.prepare_entry_point()

# ruff: noqa: E402 (the imports below must follow the start-up settings)
from keras_dpnp import losses
from keras_dpnp.attacks import PGDConfig, pgd
from keras_dpnp.backbones import BACKBONES, build_backbone
from keras_dpnp.config import TrainConfig
from keras_dpnp.data import DATASETS, DatasetNotFoundError, load_dataset, make_dataset
from keras_dpnp.evaluation.accuracy import accuracy_under_pgd
from keras_dpnp.heads import LinearHead, PrototypeHead
from keras_dpnp.methods import METHODS, LossForm, LossWeights
from keras_dpnp.model import AdvDPNP
from keras_dpnp.training.callbacks import ClassMeanPrototypes, EpochSchedules
from keras_dpnp.training.loop import build_model, train

# Evaluation and export pull in onnx, tf2onnx, cleverhans and scikit-learn: loaded on first use.
_LAZY = {
    "autoattack": "keras_dpnp.attacks.autoattack",
    "corruption_accuracy": "keras_dpnp.evaluation.corruptions",
    "feature_geometry": "keras_dpnp.evaluation.geometry",
    "evaluate_robustness": "keras_dpnp.evaluation.robustness",
    "evaluate_run": "keras_dpnp.evaluation.run_report",
    "export_model": "keras_dpnp.exporting",
    "ExportError": "keras_dpnp.exporting",
    "VerificationError": "keras_dpnp.exporting",
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'keras_dpnp' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)


__all__ = [
    "AdvDPNP",
    "BACKBONES",
    "ClassMeanPrototypes",
    "DATASETS",
    "DatasetNotFoundError",
    "EpochSchedules",
    "ExportError",
    "LinearHead",
    "LossForm",
    "LossWeights",
    "METHODS",
    "PGDConfig",
    "PrototypeHead",
    "TrainConfig",
    "VerificationError",
    "accuracy_under_pgd",
    "autoattack",
    "build_backbone",
    "build_model",
    "corruption_accuracy",
    "evaluate_robustness",
    "feature_geometry",
    "evaluate_run",
    "export_model",
    "load_dataset",
    "losses",
    "make_dataset",
    "pgd",
    "train",
]
