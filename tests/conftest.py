"""Shared fixtures: tiny models and data that keep the suite fast on a 2-core CPU."""

import contextlib
import os

import keras
import numpy as np
import pytest

from keras_dpnp.backbones import build_backbone
from keras_dpnp.config import TrainConfig
from keras_dpnp.model import AdvDPNP
from keras_dpnp.training.run_dir import RunDir


def tiny_backbone(feature_dim=8, image_shape=(8, 8, 1)):
    channels = image_shape[-1]
    return build_backbone(
        "small_cnn",
        image_shape,
        mean=(0.5,) * channels,
        std=(0.25,) * channels,
        feature_dim=feature_dim,
        width=0.25,
    )


def tiny_model(method="adv_dpnp", **kwargs):
    kwargs.setdefault("attack", {"epsilon": 0.2, "step_size": 0.05, "steps": 2})
    return AdvDPNP(tiny_backbone(kwargs.pop("feature_dim", 8)), 10, method=method, **kwargs)


def tiny_config(tmp_path, **changes):
    """A one-epoch digits `TrainConfig` with a quarter-width CNN, run in `tmp_path/run`."""
    values = dict(
        dataset="digits",
        width=0.25,
        feature_dim=16,
        epochs=1,
        batch_size=128,
        epsilon=0.2,
        attack_step_size=0.1,
        attack_steps=1,
        val_attack_steps=1,
        eval_attack_steps=1,
        model_dir=str(tmp_path / "run"),
    )
    values.update(changes)
    return TrainConfig(**values)


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    return rng.random((16, 8, 8, 1), dtype=np.float32), rng.integers(0, 10, 16)


@pytest.fixture(autouse=True)
def _seeded():
    keras.utils.set_random_seed(0)


@pytest.fixture(scope="session")
def standard_model():
    """A tiny CNN trained without attacks on 10 well-separated synthetic classes; 20 points."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 20)
    images = rng.random((10, 8, 8, 1))[labels] + 0.05 * rng.normal(size=(200, 8, 8, 1))
    images = np.clip(images, 0, 1).astype(np.float32)
    model = tiny_model("standard")
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    model.fit(images, labels, batch_size=32, epochs=15, verbose=0)
    logits_fn = lambda t: model(t, training=False)  # noqa: E731
    x, y = images[::10], labels[::10]
    assert np.mean(np.argmax(logits_fn(x), 1) == y) == 1.0
    return logits_fn, x, y


@contextlib.contextmanager
def lock_held_by_another_process(folder):
    """Yields the pid of a forked child that holds `RunDir(folder).lock()` until the block ends
    (a fork, not a fresh interpreter, so TensorFlow is not imported again)."""
    ready_read, ready_write = os.pipe()
    release_read, release_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        with RunDir(folder).lock():
            os.write(ready_write, b"1")
            os.read(release_read, 1)
        os._exit(0)
    try:
        assert os.read(ready_read, 1) == b"1"
        yield pid
    finally:
        os.write(release_write, b"1")
        assert os.waitpid(pid, 0)[1] == 0
        for handle in (ready_read, ready_write, release_read, release_write):
            os.close(handle)
