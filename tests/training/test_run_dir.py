"""The run directory: its writer's refusals, and the one loader of run directories and
`.keras` files (safe mode, one `ModelSource`, one error type)."""

import dataclasses
import errno
import json
import os
import shutil
import socket
import subprocess
import sys

import keras
import pytest

from conftest import lock_held_by_another_process, tiny_config, tiny_model
from keras_dpnp import files
from keras_dpnp.training import epoch_state
from keras_dpnp.training.run_dir import (
    ModelLoadError,
    RunDir,
    RunDirectoryError,
    fields_of_test_check,
    find_model,
    load_model,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_TEXT = {"capture_output": True, "text": True, "check": True}


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


def test_a_model_is_shown_by_the_path_the_caller_gave(finished_run, monkeypatch):
    _, run = finished_run
    parent, folder = os.path.split(run.path)
    monkeypatch.chdir(parent)
    source = find_model(folder)
    assert source.model_path == run.file("last.keras")
    assert source.shown_path == os.path.join(folder, "last.keras")
    file_given = os.path.join(folder, "last.keras")
    assert find_model(file_given).shown_path == file_given


def test_an_unread_test_set_is_masked_and_a_later_read_recorded(finished_run):
    config, run = finished_run
    unread = dataclasses.replace(config, final_test=False)
    assert run.finished_results(unread) == fields_of_test_check(None)
    assert fields_of_test_check(None) == {
        "test_examples": 0,
        "clean_accuracy": None,
        "pgd_accuracy": None,
    }
    measured = {"examples": 30, "clean_accuracy": 0.8, "robust_accuracy": 0.4}
    completed = run.add_final_test({"name": "tiny"}, measured)
    assert completed == {
        "name": "tiny",
        "test_examples": 30,
        "clean_accuracy": 0.8,
        "pgd_accuracy": 0.4,
    }
    assert run.read_json("results.json") == completed
    assert run.read_json("config.json")["final_test"] is True


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
    (tmp_path / "history.csv").write_text("epoch,loss\n0,3.0\n1,abc\n")
    with pytest.raises(RunDirectoryError, match=r"history\.csv: a row is not numbers"):
        run.logged_epochs()


def test_a_config_json_of_wrong_types_is_named(tmp_path):
    config = tiny_config(tmp_path)
    _prepare(config)
    saved = json.loads(config.to_json())
    (tmp_path / "run" / "config.json").write_text(json.dumps({**saved, "epochs": "ten"}))
    with pytest.raises(
        ModelLoadError,
        match=r"could not read .*config\.json: epochs must be of type int, got 'ten'",
    ):
        RunDir(config.run_dir).read_config()
    with pytest.raises(RunDirectoryError, match=r"different config \(--epochs='ten' there, 1 now"):
        _prepare(config)


def test_every_spelling_of_one_folder_is_the_same_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.symlink(tmp_path / "run", tmp_path / "link")
    spellings = ["run", "run/", "./run//", str(tmp_path / "run"), "link", "link/"]
    assert {RunDir(spelling).path for spelling in spellings} == {str(tmp_path / "run")}
    _prepare(tiny_config(tmp_path, model_dir="run"))
    for spelling in spellings:
        _prepare(tiny_config(tmp_path, model_dir=spelling))  # accepted: no "different config"
    assert os.listdir(tmp_path / "run") == ["config.json"]


def test_a_run_reached_under_another_name_is_the_same_run(tmp_path):
    # Two study configs (e.g. the tuning trials and the main comparison) name one shared run
    # after their own flagfiles.
    _prepare(tiny_config(tmp_path, name="fashion_mnist_tuning/pgd_at/seed0"))
    (tmp_path / "run" / "results.json").write_text(json.dumps({"clean_accuracy": 0.5}))
    other = tiny_config(tmp_path, name="fashion_mnist_compare/pgd_at/seed0")
    assert RunDir(other.run_dir).finished_results(other) == {"clean_accuracy": 0.5}
    _prepare(other)  # accepted: no "different config"
    with pytest.raises(RunDirectoryError, match=r"\(--beta=6\.0 there, 1\.0 now\); pass"):
        _prepare(tiny_config(tmp_path, name="a third name", beta=1.0))


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    with lock_held_by_another_process(str(tmp_path / "run")) as pid:
        with pytest.raises(
            RunDirectoryError,
            match=rf"run is being written by another training run \(pid {pid} on ",
        ):
            with RunDir(str(tmp_path / "run")).lock():
                pass
    assert not (tmp_path / "run" / "train.lock").exists()
    with RunDir(str(tmp_path / "run")).lock():
        pass


def test_a_stale_lock_is_taken_over_and_released_also_on_error(tmp_path, capsys):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], **_TEXT)
    lock = tmp_path / "run" / "train.lock"
    lock.parent.mkdir()
    stale = {"pid": int(dead.stdout), "host": socket.gethostname(), "started": "yesterday"}
    lock.write_text(json.dumps(stale))
    with pytest.raises(RuntimeError, match="training failed"):
        with RunDir(str(tmp_path / "run")).lock():
            assert json.loads(lock.read_text())["pid"] == os.getpid()
            raise RuntimeError("training failed")
    message = capsys.readouterr().err.strip()
    assert message == (
        f"[train] taking over the stale lock of {tmp_path / 'run'} (pid {dead.stdout.strip()} "
        f"on {socket.gethostname()}, started yesterday, no longer running)"
    )
    assert not lock.exists()


def test_a_lock_naming_a_live_process_is_not_taken(tmp_path):
    lock = tmp_path / "run" / "train.lock"
    lock.parent.mkdir()
    alive = {"pid": os.getppid(), "host": socket.gethostname(), "started": "now"}
    lock.write_text(json.dumps(alive))
    with pytest.raises(RunDirectoryError, match=rf"names a running process \(pid {os.getppid()} "):
        with RunDir(str(tmp_path / "run")).lock():
            pass
    assert json.loads(lock.read_text()) == alive


def _full_disk(monkeypatch, *, free=10**12, fail=True):
    def refuse(path, payload):
        raise OSError(errno.ENOSPC, "No space left on device")

    if fail:
        monkeypatch.setattr(files, "write_durably", refuse)
    usage = shutil.disk_usage("/")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=free))


@pytest.mark.parametrize("free,fail", [(10**12, True), (100, False)])
def test_a_full_disk_at_the_backup_is_one_line_naming_folder_and_size(
    tmp_path, monkeypatch, free, fail
):
    run = RunDir(str(tmp_path / "run"))
    model = tiny_model()
    model.compile(optimizer="sgd")
    model.optimizer.build(model.trainable_variables)
    state = epoch_state.capture(model, 3, 0.5, 2, [{"epoch": 0}])
    size = sum(len(data) for data in epoch_state.encode(state).values())
    _full_disk(monkeypatch, free=free, fail=fail)
    os.makedirs(run.path)
    with pytest.raises(RunDirectoryError) as refused:
        run.commit_epoch(state)
    message = str(refused.value)
    assert message.startswith(f"cannot write the epoch-3 backup in {run.path}: No space left")
    assert f"it needs {size / 1024:.1f} KiB free there" in message
    assert message.endswith("free space and rerun the same command (it resumes after epoch 2)")
    assert "\n" not in message and run.backup.epochs() == []
    assert not os.path.exists(run.backup_dir) or os.listdir(run.backup_dir) == []  # no partial


def test_a_full_disk_at_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    run = RunDir(str(tmp_path / "run"))
    os.makedirs(run.path)
    model = tiny_model()
    run.save_checkpoint(model, "last.keras", 0, 1)
    before = open(run.file("last.keras"), "rb").read()
    _full_disk(monkeypatch, free=1000, fail=False)
    with pytest.raises(
        RunDirectoryError,
        match=r"cannot write last\.keras in .*: No space left on "
        r"device \(1000 bytes free\); it needs 2\.0 KiB free there; .*after epoch 2",
    ):
        run.save_checkpoint(model, "last.keras", 2048, 2)
    assert open(run.file("last.keras"), "rb").read() == before
    assert sorted(os.listdir(run.path)) == ["last.keras"]
