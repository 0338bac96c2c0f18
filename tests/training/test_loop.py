"""The train CLI end to end on a tiny config, and one run's guarantees."""

import contextlib
import dataclasses
import io
import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import lock_held_by_another_process, tiny_config, tiny_model
from keras_dpnp.data import load_dataset, make_dataset
from keras_dpnp.evaluation.accuracy import accuracy_under_pgd
from keras_dpnp.training import callbacks, epoch_state, loop
from keras_dpnp.training.run_dir import RunDir, RunDirectoryError, load_model

TINY = [
    "--dataset=digits",
    "--width=0.25",
    "--feature_dim=16",
    "--epochs=1",
    "--batch_size=128",
    "--epsilon=0.2",
    "--attack_step_size=0.1",
    "--attack_steps=1",
    "--val_attack_steps=1",
    "--eval_attack_steps=2",
]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _train_cli(*args, cwd):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    return subprocess.run(
        [sys.executable, "-m", "keras_dpnp.train", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_trains_and_writes_the_run_directory(tmp_path):
    flagfile = tmp_path / "tiny.cfg"
    flagfile.write_text("\n".join(["# a tiny config", *TINY, "--method=standard"]) + "\n")
    result = _train_cli(f"--flagfile={flagfile}", "--method=adv_dpnp", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    run_dir = tmp_path / "runs" / "tiny+method=adv_dpnp"  # its own folder beside runs/tiny
    written = ("config.json", "last.keras", "best.keras", "history.csv", "results.json")
    for name in (*written, "training_curves.png"):
        assert (run_dir / name).exists(), name
    assert not (run_dir / "backup").exists()
    config = json.loads((run_dir / "config.json").read_text())
    assert config["method"] == "adv_dpnp"  # the command line overrides the flagfile
    results = json.loads((run_dir / "results.json").read_text())
    assert results["test_examples"] == 450
    assert 0.0 <= results["pgd_accuracy"] <= results["clean_accuracy"] <= 1.0
    header, epoch_row = (run_dir / "history.csv").read_text().splitlines()
    seconds = float(dict(zip(header.split(","), epoch_row.split(",")))["epoch_seconds"])
    assert 0 < seconds <= results["train_seconds"] and results["seconds_per_epoch"] == seconds
    assert "| tiny+method=adv_dpnp | best.keras (epoch 1) | adv_dpnp | digits (450 test)" in (
        result.stdout
    )
    assert "PGD-2 %" in result.stdout
    assert "\b" not in result.stdout and "epoch 1/1: loss " in result.stdout
    assert f"python -m keras_dpnp.evaluate --model={os.path.join('runs', run_dir.name)}" in (
        result.stdout
    )


@pytest.mark.parametrize(
    "flag,needle",
    [
        ("--no_such_flag=1", "no_such_flag"),
        pytest.param("--epochs=two", "epochs", marks=pytest.mark.slow),
        pytest.param("--epsilon=-0.1", "epsilon", marks=pytest.mark.slow),
        pytest.param("--attack_steps=0", "attack_steps", marks=pytest.mark.slow),
        pytest.param("--radius=0", "radius", marks=pytest.mark.slow),
        pytest.param("--dataset=mnist", "dataset", marks=pytest.mark.slow),
        pytest.param("--method=foo", "method", marks=pytest.mark.slow),
        pytest.param("--backbone=vgg", "backbone", marks=pytest.mark.slow),
    ],
)
def test_bad_flags_fail_in_one_line_and_create_nothing(tmp_path, flag, needle):
    result = _train_cli(*TINY, flag, cwd=tmp_path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if ": error:" in line]
    assert len(lines) == 1 and needle in lines[0], result.stderr[-2000:]
    assert lines[0].startswith("python -m keras_dpnp.train: error:")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_a_diverging_run_stops_naming_the_step_and_keeps_no_bad_checkpoint(tmp_path):
    config = tiny_config(tmp_path, learning_rate=1e30, method="standard")
    with pytest.raises(callbacks.TrainingDivergedError, match=r"non-finite .*loss.* epoch 1, step"):
        loop.train(config, verbose=0)
    assert not (tmp_path / "run" / "last.keras").exists()
    assert not (tmp_path / "run" / "results.json").exists()


@pytest.mark.slow
def test_cli_errors_for_run_directory_and_batch_size_leave_the_old_run_untouched(tmp_path):
    first = _train_cli(*TINY, "--method=standard", "--model_dir=run", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    before = (tmp_path / "run" / "last.keras").read_bytes()
    refused = _train_cli(*TINY, "--method=standard", "--beta=1", "--model_dir=run", cwd=tmp_path)
    lines = [line for line in refused.stderr.splitlines() if ": error:" in line]
    assert refused.returncode != 0 and len(lines) == 1 and "--overwrite" in lines[0]
    assert (tmp_path / "run" / "last.keras").read_bytes() == before
    too_big = _train_cli(*TINY[:4], "--batch_size=5000", "--model_dir=big", cwd=tmp_path)
    lines = [line for line in too_big.stderr.splitlines() if ": error:" in line]
    assert too_big.returncode != 0 and len(lines) == 1, too_big.stderr[-2000:]
    assert "--batch_size=5000 is larger than the 1212 training examples" in lines[0]
    assert "Traceback" not in too_big.stderr
    assert not (tmp_path / "big").exists()


def test_a_validation_only_run_leaves_the_test_set_unread_until_a_config_asks_for_it(tmp_path):
    unread = tiny_config(tmp_path, final_test=False)
    results = loop.train(unread, verbose=0)
    assert results["clean_accuracy"] is None and results["test_examples"] == 0
    assert "test set not read" in loop.format_results(results)
    run = RunDir(unread.run_dir)
    model_bytes = pathlib.Path(run.file("best.keras")).read_bytes()
    history = pathlib.Path(run.history_path).read_text()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        tested = loop.train(dataclasses.replace(unread, final_test=True), verbose=2)
    assert "test set unread: read now, nothing trained" in printed.getvalue()
    assert tested["test_examples"] == 450 and 0 < tested["clean_accuracy"] <= 1
    assert tested["validation"] == results["validation"]
    assert pathlib.Path(run.file("best.keras")).read_bytes() == model_bytes
    assert pathlib.Path(run.history_path).read_text() == history
    assert json.loads(pathlib.Path(run.file("config.json")).read_text())["final_test"] is True
    splits = load_dataset("digits", validation_fraction=unread.validation_fraction)
    test = make_dataset(*splits.test, batch_size=256, training=False)
    measured = accuracy_under_pgd(load_model(run.file("best.keras")), test, None)
    assert measured["clean_accuracy"] == pytest.approx(tested["clean_accuracy"], abs=1e-6)
    assert loop.train(unread, verbose=0)["clean_accuracy"] is None  # still unread for it


def test_class_mean_prototypes_point_at_the_class_means_when_the_next_epoch_begins():
    rng = np.random.default_rng(0)
    images = rng.random((60, 8, 8, 1)).astype("float32")
    labels = np.arange(60) % 10
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(20)
    model = tiny_model(prototype_init="class_means")
    model.compile(optimizer="sgd")
    seen = {}

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            features = np.asarray(model.backbone(images, training=False))
            means = np.stack([features[labels == k].mean(0) for k in range(10)])
            seen[epoch] = (means, np.asarray(model.head.class_vectors()))

    model.fit(
        data,
        epochs=3,
        verbose=0,
        callbacks=[callbacks.ClassMeanPrototypes(data, epochs=2), Record()],
    )
    for epoch in (0, 1, 2):
        means, prototypes = seen[epoch]
        cosines = np.sum(means * prototypes, 1) / (np.linalg.norm(means, axis=1) * 4.0)
        if epoch == 2:
            np.testing.assert_allclose(cosines, 1.0, atol=1e-5)
        else:
            assert cosines.min() < 0.99


@pytest.mark.slow
def test_a_second_training_into_a_locked_run_is_refused_naming_the_holder(tmp_path):
    with lock_held_by_another_process(str(tmp_path / "run")) as pid:
        refused = _train_cli(*TINY, "--model_dir=run", cwd=tmp_path)
    lines = [line for line in refused.stderr.splitlines() if ": error:" in line]
    assert refused.returncode == 1 and len(lines) == 1, refused.stderr[-2000:]
    assert f"is being written by another training run (pid {pid} on " in lines[0]
    assert "Traceback" not in refused.stderr
    assert os.listdir(tmp_path / "run") == []  # nothing written while another run held it


def _write_constant_images(folder, classes=2, count=8):
    for label in range(classes):
        for index in range(count):
            path = os.path.join(folder, f"class{label}", f"{index}.png")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tf.io.write_file(path, tf.io.encode_png(np.full((8, 8, 1), 128, np.uint8)))


def test_overwrite_checks_data_and_model_before_deleting_the_old_run(tmp_path):
    old = tiny_config(tmp_path)
    run = RunDir(old.run_dir)
    run.prepare(old)
    tiny_model().save(run.file("last.keras"))
    run.write_history([{"epoch": 0, "loss": 1.5}], 1)
    before = {name: open(run.file(name), "rb").read() for name in os.listdir(run.path)}
    _write_constant_images(tmp_path / "constant")
    changed = tiny_config(tmp_path, dataset=f"folder:{tmp_path / 'constant'}", batch_size=4)
    with pytest.raises(ValueError, match=r"`std` must be positive"):
        loop.train(changed, verbose=0, overwrite=True)
    after = {name: open(run.file(name), "rb").read() for name in os.listdir(run.path)}
    assert after == before


def test_a_backup_of_another_model_is_refused_naming_the_folder_to_remove(tmp_path):
    run = RunDir(str(tmp_path / "run"))
    saved, other = tiny_model(), tiny_model(feature_dim=4)
    for model in (saved, other):
        model.compile(optimizer="sgd")
        model.optimizer.build(model.trainable_variables)
    state = epoch_state.capture(saved, 1, 0.5, 1, [{"epoch": 0, "loss": 1.0}])
    recorder = callbacks.EpochRecorder(run, "val_pgd_accuracy", state)
    recorder.set_model(other)
    with pytest.raises(
        RunDirectoryError, match=rf"shapes do not match .*; remove {run.backup_dir} to start"
    ):
        recorder.on_train_begin()
    assert not os.path.exists(run.path)  # nothing rewritten from the foreign backup


def test_the_cost_per_epoch_is_the_median_of_the_epochs_times_over_every_process():
    epochs = {
        1: {"epoch_seconds": 700.0},
        2: {"epoch_seconds": 2400.0},
        3: {"epoch_seconds": 650.0},
    }
    assert loop._seconds_per_epoch(epochs, train_seconds=864.7, epochs_trained=1) == 700.0
    older = {1: {"loss": 1.0}, 2: {"loss": 0.9}}  # a history written before epochs were timed
    assert loop._seconds_per_epoch(older, train_seconds=90.0, epochs_trained=2) == 45.0
