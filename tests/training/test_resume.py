"""Crash safety: a run killed, or stopped by a full disk, at any point of an epoch and rerun
ends exactly where an unbroken run ends, with every epoch once in its history."""

import csv
import errno
import os
import shutil
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from conftest import tiny_config
from keras_dpnp import files
from keras_dpnp.model import AdvDPNP
from keras_dpnp.training import loop
from keras_dpnp.training.run_dir import RunDirectoryError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CRASHING_TRAIN = os.path.join(ROOT, "tests", "crashing_train.py")
FLAGS = [
    "--dataset=digits",
    "--width=0.25",
    "--feature_dim=16",
    "--epochs=3",
    "--batch_size=64",
    "--epsilon=0.2",
    "--attack_step_size=0.1",
    "--attack_steps=1",
    "--val_attack_steps=1",
    "--eval_attack_steps=1",
    "--deterministic",
]


def _env():
    # Set here, the CLI's oneDNN default also reaches crashing_train.py, which keras_dpnp's
    # start-up does not recognise as an entry point: every run then computes alike.
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1")
    return {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": ROOT,
        "TF_ENABLE_ONEDNN_OPTS": onednn,
    }


def _train(run_dir, *prefix):
    command = [sys.executable, *prefix] if prefix else [sys.executable, "-m", "keras_dpnp.train"]
    return subprocess.run(
        [*command, *FLAGS, f"--model_dir={run_dir}"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _finished_epochs(run_dir):
    try:
        with open(os.path.join(run_dir, "history.csv"), encoding="utf-8") as f:
            return max(0, len(f.read().splitlines()) - 1)
    except FileNotFoundError:
        return 0


def _weights(path):
    model = keras.saving.load_model(path)
    return [np.asarray(v) for v in model.weights] + [np.asarray(model.attack_seed.state)]


def _history_without_times(run_dir):
    """history.csv's rows without the epochs' wall times, which differ from run to run."""
    with open(os.path.join(run_dir, "history.csv"), encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert all(float(row.pop("epoch_seconds")) > 0 for row in rows)
    return rows


def _assert_same_run(expected_dir, actual_dir):
    """The same last.keras and best.keras weights, and the same history, row for row."""
    for name in ("last.keras", "best.keras"):
        expected = _weights(os.path.join(expected_dir, name))
        actual = _weights(os.path.join(actual_dir, name))
        for wanted, found in zip(expected, actual, strict=True):
            np.testing.assert_array_equal(found, wanted, err_msg=name)
    expected_history = _history_without_times(expected_dir)
    assert _history_without_times(actual_dir) == expected_history
    assert [row["epoch"] for row in expected_history] == ["0", "1", "2"]
    assert not os.path.exists(os.path.join(actual_dir, "backup"))
    assert not os.path.exists(os.path.join(actual_dir, "train.lock"))


def _error_lines(result):
    return [line for line in result.stderr.splitlines() if ": error:" in line]


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """An uninterrupted run of FLAGS."""
    folder = str(tmp_path_factory.mktemp("whole") / "run")
    done = _train(folder)
    assert done.returncode == 0, done.stderr[-2000:]
    return folder


# Each test below trains twice in subprocesses (a minute or more on 2 shared cores): slow.
@pytest.mark.slow
def test_sigkill_mid_epoch_then_rerun_matches_an_uninterrupted_run(tmp_path, whole):
    broken = str(tmp_path / "broken")
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_dpnp.train", *FLAGS, f"--model_dir={broken}"],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while _finished_epochs(broken) < 1 and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not os.path.exists(os.path.join(broken, "results.json"))
    assert 1 <= _finished_epochs(broken) < 3

    resumed = _train(broken)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "taking over the stale lock" in resumed.stderr
    _assert_same_run(whole, broken)


@pytest.mark.slow
@pytest.mark.parametrize(
    "point,complete",
    [
        ("unit_file", 1),  # killed while writing epoch 2's unit: resumes after epoch 1
        ("after_unit", 2),  # unit 2 committed, history and checkpoints not yet: after epoch 2
        ("in_last", 2),  # killed while writing last.keras: after epoch 2
    ],
)
def test_sigkill_during_the_epoch_end_writes_then_rerun_matches(tmp_path, whole, point, complete):
    broken = str(tmp_path / "broken")
    killed = _train(broken, CRASHING_TRAIN, point, "2", "sigkill")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    units = sorted(os.listdir(os.path.join(broken, "backup")))
    assert units[-1] == f"epoch-000{complete}"  # a partial unit is never under a unit's name
    resumed = _train(broken)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    _assert_same_run(whole, broken)


@pytest.mark.slow
@pytest.mark.parametrize(
    "point,what,complete",
    [("unit_file", "the epoch-2 backup", 1), ("in_last", "last.keras", 2)],
)
def test_a_full_disk_is_one_line_then_the_rerun_resumes(tmp_path, whole, point, what, complete):
    broken = str(tmp_path / "broken")
    full = _train(broken, CRASHING_TRAIN, point, "2", "enospc")
    lines = _error_lines(full)
    assert full.returncode == 1 and len(lines) == 1, full.stderr[-2000:]
    assert "Traceback" not in full.stderr
    assert f"cannot write {what} in {os.path.realpath(broken)}: No space left on device" in lines[0]
    assert "KiB free there; free space and rerun the same command" in lines[0]
    assert lines[0].endswith(f"(it resumes after epoch {complete})")
    assert not [name for name in os.listdir(broken) if name.startswith(".")]  # no temporary
    keras.saving.load_model(os.path.join(broken, "last.keras"))  # the previous one, intact
    resumed = _train(broken)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    _assert_same_run(whole, broken)


def _config(folder, **changes):
    values = {"epochs": 3, "deterministic": True, "final_test": False, **changes}
    return tiny_config(folder, **values)


@pytest.fixture(scope="module")
def whole_in_process(tmp_path_factory):
    """An uninterrupted run of `_config`, trained in this process."""
    folder = tmp_path_factory.mktemp("whole_in_process")
    loop.train(_config(folder), verbose=0)
    return str(folder / "run")


def _full_disk_at(monkeypatch, needle):
    """Makes every durable write whose path holds `needle` fail as a full disk does."""
    write = files.write_durably

    def fill_up(path, payload):
        if needle in path:
            raise OSError(errno.ENOSPC, "No space left on device")
        write(path, payload)

    monkeypatch.setattr(files, "write_durably", fill_up)


def test_a_full_disk_at_the_unit_stops_cleanly_and_the_rerun_catches_up(
    tmp_path, monkeypatch, whole_in_process
):
    config = _config(tmp_path)
    _full_disk_at(monkeypatch, "epoch-0002")
    with pytest.raises(RunDirectoryError, match=r"the epoch-2 backup .* resumes after epoch 1\)$"):
        loop.train(config, verbose=0)
    run = tmp_path / "run"
    assert _finished_epochs(run) == 1 and not (run / "results.json").exists()
    assert sorted(os.listdir(run / "backup")) == ["epoch-0001"]
    assert not (run / "train.lock").exists()
    monkeypatch.undo()
    loop.train(config, verbose=0)
    _assert_same_run(whole_in_process, str(run))


@pytest.mark.slow
def test_a_full_disk_at_last_keras_keeps_the_previous_checkpoint(
    tmp_path, monkeypatch, whole_in_process
):
    config = _config(tmp_path)
    save, saves = AdvDPNP.save, []

    def fill_up(model, path, *args, **kwargs):
        saves.append(os.path.basename(path).startswith(".last.keras."))
        if sum(saves) == 2 and saves[-1]:  # the second epoch's last.keras
            with open(path, "wb") as f:
                f.write(b"PK\x03\x04 a partial zip")
            raise OSError(errno.ENOSPC, "No space left on device")
        save(model, path, *args, **kwargs)

    monkeypatch.setattr(AdvDPNP, "save", fill_up)
    with pytest.raises(RunDirectoryError, match=r"cannot write last\.keras .* after epoch 2\)$"):
        loop.train(config, verbose=0)
    run = tmp_path / "run"
    assert _finished_epochs(run) == 2
    assert sorted(name for name in os.listdir(run) if name.endswith(".keras")) == [
        "best.keras",
        "last.keras",
    ]
    monkeypatch.undo()
    loop.train(config, verbose=0)
    _assert_same_run(whole_in_process, str(run))


@pytest.fixture(scope="module")
def stopped_after_two(tmp_path_factory):
    """A run of `_config` stopped by a full disk at epoch 3's unit: units 1 and 2 on disk."""
    folder = tmp_path_factory.mktemp("stopped")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _full_disk_at(monkeypatch, "epoch-0003")
        with pytest.raises(RunDirectoryError, match="epoch-3 backup"):
            loop.train(_config(folder), verbose=0)
    return folder


@pytest.mark.parametrize(
    "name,keep",
    [("variables.npz", 0.5), pytest.param("state.json", -1, marks=pytest.mark.slow)],
)
def test_a_truncated_latest_unit_falls_back_to_the_one_before(
    tmp_path, capsys, stopped_after_two, whole_in_process, name, keep
):
    shutil.copytree(stopped_after_two / "run", tmp_path / "run")
    path = tmp_path / "run" / "backup" / "epoch-0002" / name
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep) if keep > 0 else len(data) + keep])
    capsys.readouterr()
    loop.train(_config(tmp_path), verbose=0)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "skipping the damaged backup" in warnings[0], warnings
    assert "epoch-0002" in warnings[0]
    _assert_same_run(whole_in_process, str(tmp_path / "run"))


@pytest.mark.slow
def test_a_mirrored_run_stopped_at_its_unit_resumes(tmp_path, monkeypatch, capsys):
    config = _config(tmp_path, epochs=2, strategy="mirrored")
    _full_disk_at(monkeypatch, "epoch-0002")
    with pytest.raises(RunDirectoryError, match=r"the epoch-2 backup .* resumes after epoch 1\)$"):
        loop.train(config, verbose=0)
    monkeypatch.undo()
    results = loop.train(config, verbose=0)
    run = tmp_path / "run"
    assert "skipping" not in capsys.readouterr().err
    with open(run / "history.csv", encoding="utf-8") as f:
        assert [line.split(",")[0] for line in f.read().splitlines()] == ["epoch", "0", "1"]
    assert np.isfinite(results["final_train_logs"]["loss"]) and not (run / "backup").exists()
