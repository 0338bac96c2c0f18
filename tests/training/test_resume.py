"""Crash safety: a run killed with SIGKILL and rerun ends exactly where an unbroken run ends."""

import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLAGS = [
    "--dataset=digits",
    "--width=0.25",
    "--feature_dim=16",
    "--epochs=4",
    "--batch_size=16",
    "--epsilon=0.2",
    "--attack_step_size=0.1",
    "--attack_steps=2",
    "--val_attack_steps=1",
    "--eval_attack_steps=1",
    "--deterministic",
]


def _command(run_dir):
    return [sys.executable, "-m", "keras_dpnp.train", *FLAGS, f"--model_dir={run_dir}"]


def _env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}


def _finished_epochs(run_dir):
    try:
        with open(os.path.join(run_dir, "history.csv"), encoding="utf-8") as f:
            return max(0, len(f.read().splitlines()) - 1)
    except FileNotFoundError:
        return 0


def _weights(run_dir):
    model = keras.saving.load_model(os.path.join(run_dir, "last.keras"))
    return [np.asarray(v) for v in model.weights] + [np.asarray(model.attack_seed.state)]


def test_sigkill_mid_epoch_then_rerun_matches_an_uninterrupted_run(tmp_path):
    whole, broken = str(tmp_path / "whole"), str(tmp_path / "broken")
    done = subprocess.run(_command(whole), env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]

    process = subprocess.Popen(
        _command(broken), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while _finished_epochs(broken) < 2 and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not os.path.exists(os.path.join(broken, "results.json"))
    assert os.path.isdir(os.path.join(broken, "backup"))
    interrupted_after = _finished_epochs(broken)
    assert 2 <= interrupted_after < 4

    resumed = subprocess.run(
        _command(broken), env=_env(), capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _finished_epochs(broken) == 4  # the resumed run trained only the missing epochs
    assert not os.path.isdir(os.path.join(broken, "backup"))
    for expected, actual in zip(_weights(whole), _weights(broken), strict=True):
        np.testing.assert_array_equal(actual, expected)
