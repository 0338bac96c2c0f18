"""The attack benchmark: its setups and timings on a tiny batch, and the CLI."""

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import tiny_model
from keras_dpnp.benchmarks import attacks

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_standard_setups_are_batches_in_pixel_range():
    setups = attacks.standard_setups(batch_size=8, seed=0, epsilon=0.1)
    assert [setup.images.shape for setup in setups] == [(8, 32, 32, 3), (8, 8, 8, 1)]
    for setup in setups:
        assert setup.images.dtype == np.float32 and setup.epsilon == 0.1
        assert 0.0 <= setup.images.min() and setup.images.max() <= 1.0
        assert setup.labels.shape == (8,)
        assert setup.model(setup.images[:1], training=False).shape == (1, 10)


def test_a_trained_model_file_is_a_setup_at_its_training_epsilon(tmp_path):
    path = str(tmp_path / "model.keras")
    tiny_model().save(path)
    with pytest.raises(ValueError, match="needs --dataset"):
        attacks.trained_setup(path, batch_size=4)
    setup = attacks.trained_setup(path, batch_size=4, dataset="digits", epsilon=0.2)
    assert setup.images.shape == (4, 8, 8, 1) and setup.epsilon == 0.2


def test_both_pgds_and_autoattack_are_timed():
    setup = attacks.standard_setups(batch_size=4, seed=0, epsilon=0.1)[1]
    ours, theirs = attacks.pgd_speeds(setup, repeats=1)
    assert ours > 0 and theirs > 0
    seconds, robust = attacks.autoattack_timing(setup, points=2, seed=0)
    assert seconds > 0 and robust in (0.0, 0.5, 1.0)


@pytest.mark.slow
def test_cli_prints_both_tables():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_dpnp.bench_attacks",
            "--batch_size=4",
            "--repeats=1",
            "--autoattack_points=0",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| small CNN, digits 8×8×1 | 0.03137 |" in result.stdout
    assert "AutoAttack" not in result.stdout.split("higher is better", 1)[1]
