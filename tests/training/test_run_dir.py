"""The run directory: its writer's refusals, and the one loader of run directories and
`.keras` files (safe mode, one `ModelSource`, one error type)."""

import dataclasses
import json
import os

import keras
import pytest

from conftest import tiny_config, tiny_model
from keras_dpnp.training.run_dir import (
    ModelLoadError,
    RunDir,
    RunDirectoryError,
    find_model,
    load_model,
)


def _prepare(config, overwrite=False):
    RunDir(config.run_dir).prepare(config, overwrite)


@pytest.fixture
def code_carrying_model(tmp_path):
    inputs = keras.Input((4,))
    outputs = keras.layers.Lambda(lambda x: x * 2.0)(inputs)
    path = str(tmp_path / "lambda.keras")
    keras.Model(inputs, outputs).save(path)
    return path


def test_a_model_file_that_carries_code_is_refused(code_carrying_model):
    with pytest.raises(ModelLoadError, match=r"could not load .*lambda\.keras"):
        load_model(code_carrying_model)


@pytest.fixture
def finished_run(tmp_path):
    """A run directory with config.json, last.keras and results.json, as training leaves it."""
    config = tiny_config(tmp_path)
    run = RunDir(config.run_dir)
    run.prepare(config)
    tiny_model().save(run.file("last.keras"))
    run.write_results({"clean_accuracy": 0.9})
    return config, run


def test_a_run_directory_resolves_to_its_checkpoint_and_config(finished_run):
    config, run = finished_run
    source = find_model(run.path)
    assert source.model_path == run.file("last.keras")  # no best.keras: the last one
    assert source.config == config and source.run == run and source.folder == run.path
    inside = find_model(run.file("last.keras"))
    assert inside.config == config and inside.run.path == os.path.abspath(run.path)
    tiny_model().save(run.file("best.keras"))
    assert find_model(run.path).model_path == run.file("best.keras")
    assert find_model(run.path, "last").model_path == run.file("last.keras")
    assert run.finished_results(config) == {"clean_accuracy": 0.9}
    assert run.finished_results(dataclasses.replace(config, beta=1.0)) is None


def test_a_bare_model_file_has_no_run(tmp_path):
    path = str(tmp_path / "bare" / "model.keras")
    os.makedirs(os.path.dirname(path))
    tiny_model().save(path)
    source = find_model(path)
    assert source.run is None and source.config is None
    assert source.folder == os.path.dirname(path)
    assert load_model(source.model_path).num_classes == 10


@pytest.mark.parametrize(
    "name,checkpoint,message",
    [
        ("nowhere", "best", r"model not found: .*nowhere; give a run directory"),
        ("", "best", r"holds no best\.keras or last\.keras; give a run directory"),
        ("weights.h5", "best", r"weights\.h5 is not a \.keras file"),
        ("", "first", r"checkpoint must be one of \['best', 'last'\], got 'first'"),
    ],
)
def test_what_cannot_be_loaded_says_why(tmp_path, name, checkpoint, message):
    (tmp_path / "weights.h5").write_bytes(b"\x89HDF")
    with pytest.raises(ModelLoadError, match=message):
        find_model(str(tmp_path / name), checkpoint)


def test_a_broken_config_is_named(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    tiny_model().save(str(tmp_path / "last.keras"))
    with pytest.raises(ModelLoadError, match=r"could not read .*config\.json: .*; repair"):
        find_model(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"no_such_flag": 1}))
    with pytest.raises(ModelLoadError, match=r"config\.json: unknown config keys"):
        find_model(str(tmp_path))


def test_the_best_logged_value_is_read_back_from_the_history(tmp_path):
    run = RunDir(str(tmp_path))
    assert run.best_logged("val_pgd_accuracy") == float("-inf")
    (tmp_path / "history.csv").write_text("epoch,val_pgd_accuracy\n0,0.5\n1,0.75\n2,0.25\n")
    assert run.best_logged("val_pgd_accuracy") == 0.75


def test_a_different_config_in_an_existing_run_directory_is_refused(tmp_path):
    _prepare(tiny_config(tmp_path))
    before = (tmp_path / "run" / "config.json").read_text()
    with pytest.raises(RunDirectoryError, match="different config"):
        _prepare(tiny_config(tmp_path, beta=1.0))
    assert (tmp_path / "run" / "config.json").read_text() == before


def test_the_refusal_names_what_differs_and_overwrite_replaces_the_run(tmp_path):
    config = tiny_config(tmp_path)
    _prepare(config)
    (tmp_path / "run" / "last.keras").write_bytes(b"old checkpoint")
    changed = tiny_config(tmp_path, beta=1.0)
    with pytest.raises(RunDirectoryError, match=r"--beta=6\.0 there, 1\.0 now\); pass --overwrite"):
        _prepare(changed)
    assert (tmp_path / "run" / "last.keras").exists()
    _prepare(changed, overwrite=True)
    assert not (tmp_path / "run" / "last.keras").exists()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["beta"] == 1.0


def test_an_older_config_without_newer_fields_is_the_same_run(tmp_path):
    config = tiny_config(tmp_path)
    older = json.loads(config.to_json())
    del older["final_test"], older["deterministic"]
    assert config.matches_saved(json.dumps(older))
    assert not config.matches_saved("{not json")


def test_an_unwritable_run_directory_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    config = tiny_config(tmp_path, model_dir=str(blocker / "run"))
    with pytest.raises(
        RunDirectoryError, match=r"cannot write the run directory .*a_file/run: .*writable"
    ):
        _prepare(config)


def test_the_model_of_a_run_and_its_epoch_come_from_history_csv(tmp_path):
    run = RunDir(str(tmp_path))
    rows = ["epoch,loss,val_pgd_accuracy", "0,3.0,0.5", "1,2.0,0.7", "1,2.1,0.7", "2,1.0,0.7"]
    (tmp_path / "history.csv").write_text("\n".join(rows) + "\n")  # epoch 2 logged again
    assert sorted(run.logged_epochs()) == [1, 2, 3]
    assert run.logged_epochs()[2]["loss"] == 2.1
    (tmp_path / "last.keras").write_bytes(b"")
    assert run.checkpoint_entry("val_pgd_accuracy") == {
        "file": "last.keras",
        "epoch": 3,
        "chosen_by": None,
    }
    (tmp_path / "best.keras").write_bytes(b"")
    best = run.checkpoint_entry("val_pgd_accuracy")
    assert best == {"file": "best.keras", "epoch": 2, "chosen_by": "val_pgd_accuracy"}
    (tmp_path / "results.json").write_text(json.dumps({"checkpoint": best}))
    assert run.recorded_epoch(str(tmp_path / "best.keras")) == 2
    assert run.recorded_epoch(str(tmp_path / "last.keras")) is None
