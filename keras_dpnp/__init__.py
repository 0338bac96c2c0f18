"""keras_dpnp: adversarially trained Deep Positive-Negative Prototypes (Adv-DPNP) in Keras 3."""

from keras_dpnp import losses
from keras_dpnp.attacks import PGDConfig, pgd
from keras_dpnp.backbones import BACKBONES, build_backbone
from keras_dpnp.config import TrainConfig
from keras_dpnp.data import DATASETS, DatasetNotFoundError, load_dataset, make_dataset
from keras_dpnp.evaluation.accuracy import accuracy_under_pgd
from keras_dpnp.heads import LinearHead, PrototypeHead
from keras_dpnp.methods import METHODS, LossWeights
from keras_dpnp.model import AdvDPNP
from keras_dpnp.training import build_model, train

__all__ = [
    "AdvDPNP", "BACKBONES", "DATASETS", "DatasetNotFoundError", "LinearHead", "LossWeights",
    "METHODS", "PGDConfig", "PrototypeHead", "TrainConfig", "accuracy_under_pgd",
    "build_backbone", "build_model", "load_dataset", "losses", "make_dataset", "pgd", "train",
]
