"""Shared fixtures: tiny models and data that keep the suite fast on a 2-core CPU."""

import numpy as np
import pytest

import keras

from keras_dpnp.backbones import build_backbone
from keras_dpnp.model import AdvDPNP


def tiny_backbone(feature_dim=8, image_shape=(8, 8, 1)):
    channels = image_shape[-1]
    return build_backbone("small_cnn", image_shape, mean=(0.5,) * channels,
                          std=(0.25,) * channels, feature_dim=feature_dim, width=0.25)


def tiny_model(method="adv_dpnp", **kwargs):
    kwargs.setdefault("attack", {"epsilon": 0.2, "step_size": 0.05, "steps": 2})
    return AdvDPNP(tiny_backbone(kwargs.pop("feature_dim", 8)), 10, method=method, **kwargs)


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    return rng.random((16, 8, 8, 1), dtype=np.float32), rng.integers(0, 10, 16)


@pytest.fixture(autouse=True)
def _seeded():
    keras.utils.set_random_seed(0)
