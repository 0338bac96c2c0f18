"""The validation AutoAttack of a run: its points, its numbers, measured once, clear refusals."""

import dataclasses
import json
import os
import shutil

import numpy as np
import pytest

from keras_dpnp.config import TrainConfig
from keras_dpnp.data import load_dataset
from keras_dpnp.evaluation.robustness import autoattack_subset
from keras_dpnp.evaluation.validation_robustness import (
    finished_validation_robustness,
    validation_robustness,
)
from keras_dpnp.training.loop import train
from keras_dpnp.training.run_dir import load_model

CONFIG = TrainConfig(
    dataset="digits",
    method="pgd_at",
    width=0.25,
    epochs=1,
    epsilon=0.3,
    attack_step_size=0.1,
    attack_steps=2,
    batch_size=128,
    seed=3,
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("run"))
    train(dataclasses.replace(CONFIG, model_dir=folder), verbose=0)
    return folder


def test_the_run_is_attacked_on_its_own_validation_points_once(run_dir):
    assert finished_validation_robustness(run_dir, points=60) is None
    measured = validation_robustness(run_dir, points=60, progress=False)
    assert (measured["epsilon"], measured["norm"], measured["seed"]) == (0.3, "linf", 3)
    assert measured["images"] == 60 and measured["model"]["epoch"] == 1
    assert [name for name, _ in measured["stages"]] == ["apgd-ce", "apgd-t"]
    assert measured["robust_accuracy"] == measured["stages"][-1][1] <= measured["clean_accuracy"]
    # Clean accuracy on the same 60 points of the seed-3 validation split, measured apart.
    splits = load_dataset("digits", validation_fraction=0.1, seed=3)
    images, labels = splits.validation
    chosen = autoattack_subset(len(labels), 60)
    model = load_model(os.path.join(run_dir, measured["model"]["path"]))
    predicted = np.argmax(model(images[chosen].astype(np.float32) / 255, training=False), 1)
    assert measured["clean_accuracy"] == pytest.approx(np.mean(predicted == labels[chosen]))
    saved = os.path.join(run_dir, "validation_robustness.json")
    with open(saved, encoding="utf-8") as f:
        assert json.load(f) == measured
    before = os.stat(saved).st_mtime_ns
    assert validation_robustness(run_dir, points=60, progress=False) == measured
    assert finished_validation_robustness(run_dir, points=60) == measured
    assert os.stat(saved).st_mtime_ns == before
    assert finished_validation_robustness(run_dir, points=40) is None  # other settings: not it


def test_a_run_directory_moved_elsewhere_keeps_its_measurement(run_dir, tmp_path):
    measured = validation_robustness(run_dir, points=60, progress=False)
    assert measured["model"]["path"] == "best.keras"  # no absolute path in a committed run
    moved = shutil.copytree(run_dir, tmp_path / "cloned" / "run")
    assert finished_validation_robustness(str(moved), points=60) == measured


def test_more_points_than_the_split_holds_attack_all_of_them(run_dir):
    measured = validation_robustness(run_dir, points=10_000, progress=False)
    assert measured["points"] == 10_000
    validation = load_dataset("digits", validation_fraction=0.1, seed=3).validation
    assert measured["images"] == len(validation[1]) < 10_000


def test_a_run_without_validation_or_attack_radius_is_refused(tmp_path):
    for changes, message in (
        ({"validation_fraction": 0.0}, "without a validation split .*--validation_fraction=0.1"),
        ({"epsilon": 0.0, "method": "standard"}, "trained with ε = 0"),
    ):
        folder = tmp_path / str(len(message))
        folder.mkdir()
        config = dataclasses.replace(CONFIG, model_dir=str(folder), **changes)
        (folder / "config.json").write_text(config.to_json())
        (folder / "last.keras").write_bytes(b"")
        with pytest.raises(ValueError, match=message):
            validation_robustness(str(folder), progress=False)
        assert finished_validation_robustness(str(folder)) is None
