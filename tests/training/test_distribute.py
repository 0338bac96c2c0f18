"""Strategies and precision: mirrored and multi-worker training match one device."""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

from conftest import tiny_config
from keras_dpnp.config import TrainConfig
from keras_dpnp.data import DatasetInfo
from keras_dpnp.training import distribute, loop

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HELPER = os.path.join(ROOT, "tests", "distributed_run.py")


def _free_port():
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def _launch(output, *flags, tf_config=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.Popen(
        [sys.executable, HELPER, str(output), *flags],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One device, mirrored on two logical CPUs, and two localhost workers, run side by side."""
    folder = tmp_path_factory.mktemp("distributed")
    workers = [f"localhost:{_free_port()}" for _ in range(2)]
    launched = {
        "one_device": _launch(folder / "one_device.npz", "--strategy=one_device"),
        "mirrored": _launch(
            folder / "mirrored.npz", "--strategy=mirrored", "--logical_cpus=2", "--sync_batchnorm"
        ),
        **{
            f"worker{index}": _launch(
                folder / f"worker{index}.npz",
                "--strategy=multi_worker",
                "--sync_batchnorm",
                tf_config={
                    "cluster": {"worker": workers},
                    "task": {"type": "worker", "index": index},
                },
            )
            for index in range(2)
        },
    }
    for name, process in launched.items():
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, f"{name}: {stderr[-3000:]}"
    return {name: dict(np.load(folder / f"{name}.npz")) for name in launched}


def _assert_same_training(reference, other):
    weights = sorted(key for key in reference if key.startswith("weight_"))
    assert weights and weights == sorted(key for key in other if key.startswith("weight_"))
    for key in weights:
        np.testing.assert_allclose(other[key], reference[key], atol=1e-5, err_msg=key)
    logs = sorted(key for key in reference if key.startswith("log_"))
    assert "log_loss" in logs and "log_consistency" in logs
    for key in logs:
        np.testing.assert_allclose(other[key], reference[key], rtol=1e-5, atol=1e-6, err_msg=key)


@pytest.mark.slow
def test_mirrored_on_two_devices_gives_the_one_device_weights_and_loss(runs):
    assert int(runs["mirrored"]["replicas"]) == 2
    _assert_same_training(runs["one_device"], runs["mirrored"])


def test_two_localhost_workers_train_like_one_worker(runs):
    for name in ("worker0", "worker1"):
        assert int(runs[name]["replicas"]) == 2
        _assert_same_training(runs["one_device"], runs[name])


def test_strategy_names_and_tf_config_are_checked(monkeypatch):
    assert distribute.make_strategy("one_device").num_replicas_in_sync == 1
    assert distribute.make_strategy("auto").num_replicas_in_sync == 1
    with pytest.raises(ValueError, match="--strategy='tpu' is not one of"):
        distribute.make_strategy("tpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(distribute.HardwareSetupError, match="needs the TF_CONFIG"):
        distribute.make_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(distribute.HardwareSetupError, match="TF_CONFIG is not valid"):
        distribute.make_strategy("multi_worker")
    monkeypatch.setenv(
        "TF_CONFIG",
        json.dumps(
            {"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 3}}
        ),
    )
    with pytest.raises(distribute.HardwareSetupError, match="does not name one of the 1 workers"):
        distribute.make_strategy("multi_worker")


class _Replicas:
    num_replicas_in_sync = 3


def test_a_batch_that_does_not_split_over_replicas_is_refused():
    distribute.check_global_batch(12, _Replicas())
    with pytest.raises(
        distribute.HardwareSetupError,
        match=r"--batch_size=128 does not split evenly over the 3 replicas; "
        r"use a multiple of 3",
    ):
        distribute.check_global_batch(128, _Replicas())


def test_precision_policy_applies_inside_and_restores_after():
    with distribute.precision_policy("mixed_bfloat16"):
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"
    with pytest.raises(ValueError, match="--precision='float8' is not one of"):
        with distribute.precision_policy("float8"):
            pass


@pytest.mark.parametrize(
    "precision,compute", [("mixed_bfloat16", "bfloat16"), ("mixed_float16", "float16")]
)
def test_mixed_precision_model_keeps_input_head_and_logits_in_float32(precision, compute):
    config = TrainConfig(width=0.25, feature_dim=8, precision=precision, weight_decay=5e-4)
    info = DatasetInfo(
        name="tiny",
        num_classes=10,
        image_shape=(8, 8, 1),
        mean=(0.5,),
        std=(0.25,),
        class_names=tuple("0123456789"),
        augment="none",
        source="test",
    )
    with distribute.precision_policy(precision):
        model = loop.build_model(config, info)
    model.compile(optimizer=loop.build_optimizer(config, steps_per_epoch=1))
    assert model.backbone.get_layer("conv1").compute_dtype == compute
    assert model.backbone.get_layer("pixel_normalization").compute_dtype == "float32"
    assert model.head.compute_dtype == "float32"
    assert model(np.zeros((2, 8, 8, 1), np.float32)).dtype == "float32"
    if precision == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    inner = getattr(model.optimizer, "inner_optimizer", model.optimizer)
    assert not inner._use_weight_decay(model.head.prototypes)
    assert inner._use_weight_decay(model.backbone.get_layer("conv1").kernel)


def test_train_under_mixed_bfloat16_restores_the_global_policy(tmp_path):
    config = tiny_config(tmp_path, precision="mixed_bfloat16")
    results = loop.train(config, verbose=0)
    assert 0.0 <= results["pgd_accuracy"] <= results["clean_accuracy"] <= 1.0
    assert np.isfinite(results["final_train_logs"]["loss"])
    assert keras.config.dtype_policy().name == "float32"
    saved = keras.saving.load_model(tmp_path / "run" / "last.keras")
    assert saved.backbone.get_layer("conv1").compute_dtype == "bfloat16"
