"""The train CLI end to end on a tiny config, and the run directory's guarantees."""

import json
import os
import subprocess
import sys

import pytest

from keras_dpnp import training
from keras_dpnp.config import TrainConfig

TINY = ["--dataset=digits", "--width=0.25", "--feature_dim=16", "--epochs=1",
        "--batch_size=128", "--epsilon=0.2", "--attack_step_size=0.1", "--attack_steps=1",
        "--val_attack_steps=1", "--eval_attack_steps=2"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _train_cli(*args, cwd):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    return subprocess.run([sys.executable, "-m", "keras_dpnp.train", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_trains_and_writes_the_run_directory(tmp_path):
    flagfile = tmp_path / "tiny.cfg"
    flagfile.write_text("\n".join(["# a tiny config", *TINY, "--method=standard"]) + "\n")
    result = _train_cli(f"--flagfile={flagfile}", "--method=adv_dpnp", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    run_dir = tmp_path / "runs" / "tiny"
    for name in ("config.json", "last.keras", "best.keras", "history.csv", "results.json"):
        assert (run_dir / name).exists(), name
    assert not (run_dir / "backup").exists()
    config = json.loads((run_dir / "config.json").read_text())
    assert config["method"] == "adv_dpnp"  # the command line overrides the flagfile
    results = json.loads((run_dir / "results.json").read_text())
    assert results["test_examples"] == 450
    assert 0.0 <= results["pgd_accuracy"] <= results["clean_accuracy"] <= 1.0
    assert "| tiny | adv_dpnp | digits (450 test)" in result.stdout
    assert "PGD-2 %" in result.stdout


@pytest.mark.parametrize("flag,needle", [
    ("--no_such_flag=1", "no_such_flag"),
    ("--epochs=two", "epochs"),
    ("--epsilon=-0.1", "epsilon"),
    ("--method=foo", "method"),
    ("--backbone=vgg", "backbone"),
])
def test_bad_flags_fail_in_one_line_and_create_nothing(tmp_path, flag, needle):
    result = _train_cli(*TINY, flag, cwd=tmp_path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if ": error:" in line]
    assert len(lines) == 1 and needle in lines[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def _tiny_config(tmp_path, **changes):
    values = dict(dataset="digits", width=0.25, feature_dim=16, epochs=1, batch_size=128,
                  epsilon=0.2, attack_step_size=0.1, attack_steps=1, val_attack_steps=1,
                  eval_attack_steps=1, model_dir=str(tmp_path / "run"))
    values.update(changes)
    return TrainConfig(**values)


def test_a_different_config_in_an_existing_run_directory_is_refused(tmp_path):
    training.prepare_run_directory(_tiny_config(tmp_path))
    before = (tmp_path / "run" / "config.json").read_text()
    with pytest.raises(training.RunDirectoryError, match="different config"):
        training.prepare_run_directory(_tiny_config(tmp_path, beta=1.0))
    assert (tmp_path / "run" / "config.json").read_text() == before


def test_a_diverging_run_stops_naming_the_step_and_keeps_no_bad_checkpoint(tmp_path):
    config = _tiny_config(tmp_path, learning_rate=1e30, method="standard")
    with pytest.raises(training.TrainingDivergedError, match=r"non-finite .*loss.* epoch 1, step"):
        training.train(config, verbose=0)
    assert not (tmp_path / "run" / "last.keras").exists()
    assert not (tmp_path / "run" / "results.json").exists()
