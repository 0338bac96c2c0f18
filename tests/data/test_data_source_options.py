"""The `tfds:` / `folder:` options as `TrainConfig` fields and flags, and a CLI run on a folder."""

import dataclasses
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
from absl import flags
from test_data_folder import write_image

from keras_dpnp.config import TrainConfig, config_from_flags, define_flags
from keras_dpnp.data import parse_image_size
from keras_dpnp.exporting.metadata import class_names_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NEW_FIELDS = (
    "tfds_split_train",
    "tfds_split_test",
    "image_size",
    "folder_test_fraction",
    "max_in_memory_mb",
)


def test_a_saved_config_without_the_new_fields_still_matches():
    config = TrainConfig(precision="float32")
    older = json.loads(config.to_json())
    for name in NEW_FIELDS:
        del older[name]
    assert config.matches_saved(json.dumps(older))
    assert TrainConfig.from_json(json.dumps(older)).data_options() == config.data_options()


def test_the_defaults_load_as_before():
    assert TrainConfig().data_options() == {
        "data_dir": None,
        "manual_dir": None,
        "tfds_split_train": "train",
        "tfds_split_test": "test",
        "image_size": None,
        "folder_test_fraction": 0.2,
        "max_in_memory_mb": 4096.0,
    }


def test_flags_set_the_source_options():
    values = flags.FlagValues()
    define_flags(values)
    values(
        [
            "prog",
            "--dataset=tfds:tf_flowers",
            "--image_size=28,32",
            "--tfds_split_test=train[90%:]",
            "--tfds_split_train=train[:90%]",
        ]
    )
    options = config_from_flags(values, argv=["prog"]).data_options()
    assert options["image_size"] == (28, 32)
    assert (options["tfds_split_train"], options["tfds_split_test"]) == (
        "train[:90%]",
        "train[90%:]",
    )


@pytest.mark.parametrize(
    "dataset",
    [
        "digits",
        "cifar10",
        "tfds:mnist",
        "tfds:mnist/3.0.1",
        "folder:my images",
        "folder:/data/pets",
    ],
)
def test_catalog_tfds_and_folder_names_are_accepted(dataset):
    assert TrainConfig(dataset=dataset).dataset == dataset


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"dataset": "imagenet"}, "--dataset='imagenet' is not a data set; use one of digits, "),
        ({"dataset": "tfds:"}, "tfds:<name>, folder:<path>"),
        ({"dataset": "folder:x", "image_size": "32x32"}, "--image_size='32x32' must be SIDE or"),
        ({"dataset": "folder:x", "image_size": "0"}, "must be SIDE or HEIGHT,WIDTH"),
        ({"image_size": "32"}, "--image_size applies only to --dataset=tfds:... or --dataset="),
        ({"image_size": "32"}, "; drop it for --dataset=digits"),
        (
            {"dataset": "folder:x", "tfds_split_test": "validation"},
            "--tfds_split_test applies only",
        ),
        ({"dataset": "tfds:mnist", "max_in_memory_mb": 10.0}, "--max_in_memory_mb applies only"),
        (
            {"dataset": "folder:x", "folder_test_fraction": 1.0},
            "--folder_test_fraction must be < 1",
        ),
        (
            {"dataset": "folder:x", "folder_test_fraction": 0.0},
            "--folder_test_fraction must be > 0",
        ),
    ],
)
def test_bad_source_options_are_refused_in_one_line(changes, message):
    with pytest.raises(ValueError) as error:
        dataclasses.replace(TrainConfig(), **changes)
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    "value, size",
    [
        (None, None),
        ("", None),
        ("32", (32, 32)),
        ("28, 32", (28, 32)),
        (16, (16, 16)),
        ((20, 24), (20, 24)),
    ],
)
def test_image_size_forms(value, size):
    assert parse_image_size(value) == size


def _cli(module, *args, cwd):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_cli_trains_on_an_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for name, base in (("circle", 40), ("square", 200)):
        for index in range(12):
            suffix = ".jpg" if index % 2 else ".png"
            shape = (12, 12, 1) if index % 3 else (10, 14, 1)
            write_image(
                str(tmp_path / "images" / name / f"{index}{suffix}"),
                base + rng.integers(-30, 30, shape),
            )
    result = _cli(
        "keras_dpnp.train",
        f"--dataset=folder:{tmp_path / 'images'}",
        "--image_size=8",
        "--max_in_memory_mb=0",
        "--epochs=1",
        "--batch_size=8",
        "--width=0.25",
        "--feature_dim=8",
        "--epsilon=0.1",
        "--attack_steps=1",
        "--attack_step_size=0.05",
        "--val_attack_steps=1",
        "--eval_attack_steps=1",
        "--validation_fraction=0.2",
        "--name=pets",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads((tmp_path / "runs" / "pets" / "results.json").read_text())
    assert results["test_examples"] == 5 and results["class_names"] == ["circle", "square"]
    assert "train and test streamed from disk" in results["data_source"]
    assert 0.0 <= results["clean_accuracy"] <= 1.0
    config = json.loads((tmp_path / "runs" / "pets" / "config.json").read_text())
    assert (config["image_size"], config["max_in_memory_mb"]) == ("8", 0.0)


@pytest.mark.slow
def test_cli_names_the_bad_file_of_an_image_folder(tmp_path):
    for name in ("a", "b"):
        write_image(str(tmp_path / name / "x.png"), np.zeros((4, 4, 1)))
    (tmp_path / "b" / "readme.md").write_text("not an image")
    result = _cli("keras_dpnp.train", f"--dataset=folder:{tmp_path}", "--epochs=1", cwd=tmp_path)
    errors = [line for line in result.stderr.splitlines() if ": error:" in line]
    assert result.returncode == 1 and len(errors) == 1
    assert f"{tmp_path / 'b' / 'readme.md'} is not an image" in errors[0]
    assert not (tmp_path / "runs").exists()


def test_export_takes_the_class_names_a_folder_run_recorded():
    model = types.SimpleNamespace(num_classes=2)
    names, source = class_names_for(model, "folder:pets", results={"class_names": ["cat", "dog"]})
    assert names == ["cat", "dog"] and "folder:pets" in source
    names, source = class_names_for(
        model, "folder:pets", results={"class_names": ["cat", "dog", "owl"]}
    )
    assert names == ["0", "1"] and source == "class indices (names unknown)"
