"""The run directory: the one reader and writer of what a training run leaves on disk.

    <run>/config.json      the run's `TrainConfig` (flat JSON, one key per flag)
    <run>/last.keras       the model after the latest epoch
    <run>/best.keras       the epoch of best validation accuracy (when there is validation)
    <run>/history.csv      one row of logs per epoch
    <run>/training_curves.png  history.csv drawn: accuracies and geometry logs per epoch
    <run>/backup/          the epoch-state units a rerun resumes from (`epoch_state.py`)
    <run>/train.lock       held by the one training process writing the run (pid, host, start)
    <run>/logs/            TensorBoard
    <run>/results.json     the test accuracy of the run's model, measured at the end of training,
                           and which checkpoint that is (`checkpoint: {file, epoch, chosen_by}`)
    <run>/robustness.json  the robustness report (`keras_dpnp.evaluate`)
    <run>/validation_robustness.json  AutoAttack's APGD stages on validation points, for the
                           choice among tuning trials (`evaluation/validation_robustness.py`)

Training writes it through `RunDir.lock`, `prepare`, `commit_epoch`, `write_history`,
`save_checkpoint` and `write_results` (and the curves through `training/curves.py`); evaluation,
export,
comparison and the attack benchmark find and load models through `find_model` and `load_model`.

The model of a run is one file for every reader: `RunDir.checkpoint()`, best.keras when the run
had validation data, else last.keras. The final test measures it, results.json names it, and
evaluation, comparison and export take it by default.
"""

import contextlib
import csv
import dataclasses
import errno
import fcntl
import io
import json
import math
import os
import shutil
import socket
import sys
import time

import keras
import numpy as np

from keras_dpnp.config import AFTER_TRAINING_FIELDS, RUN_LABEL_FIELDS, TrainConfig
from keras_dpnp.files import atomic_path, write_text
from keras_dpnp.training import epoch_state

CONFIG_FILE = "config.json"
RESULTS_FILE = "results.json"
ROBUSTNESS_FILE = "robustness.json"
# AutoAttack's APGD stages on a subset of the validation split (`--choose_by=val_apgd`).
VALIDATION_ROBUSTNESS_FILE = "validation_robustness.json"
# AutoAttack's finished stages while a report is being made; removed once it is written.
AUTOATTACK_PROGRESS_FILE = "autoattack_progress.npz"
# The history.csv column of each epoch's wall time (training and validation), in seconds.
EPOCH_SECONDS = "epoch_seconds"
HISTORY_FILE = "history.csv"
# File name, without its suffix, of the figure of history.csv (`training/curves.py`).
TRAINING_CURVES = "training_curves"
LOCK_FILE = "train.lock"
LAST_CHECKPOINT = "last.keras"
BEST_CHECKPOINT = "best.keras"
# The files each --checkpoint choice takes, in order of preference.
CHECKPOINTS = {"best": (BEST_CHECKPOINT, LAST_CHECKPOINT), "last": (LAST_CHECKPOINT,)}


def fields_of_test_check(test):
    """results.json's test fields for `test` (examples, clean and robust accuracy of a test
    check, `accuracy_under_pgd`'s dict), or for None: the test set unread (`--nofinal_test`)."""
    if test is None:
        return {"test_examples": 0, "clean_accuracy": None, "pgd_accuracy": None}
    return {
        "test_examples": test["examples"],
        "clean_accuracy": test["clean_accuracy"],
        "pgd_accuracy": test["robust_accuracy"],
    }


def recorded_checkpoint(results):
    """The `checkpoint` entry of a results.json dict; results written before it existed
    measured last.keras at the last epoch."""
    fallback = {"file": LAST_CHECKPOINT, "epoch": results.get("epochs"), "chosen_by": None}
    return results.get("checkpoint") or fallback


class RunDirectoryError(RuntimeError):
    """The run directory cannot be used for this configuration."""


class ModelLoadError(RuntimeError):
    """The model (or its run directory) is missing, corrupt or does not fit the data."""


def _config_differences(config, saved_text):
    try:
        saved = json.loads(saved_text)
    except ValueError:
        return "its config.json is unreadable"
    current = config.to_dict()
    changed = [
        f"--{key}={saved.get(key)!r} there, {value!r} now"
        for key, value in current.items()
        if key in saved
        and saved[key] != value
        and key not in RUN_LABEL_FIELDS + AFTER_TRAINING_FIELDS
    ]
    unknown = sorted(set(saved) - set(current))
    return "; ".join(changed + [f"unknown setting {key!r}" for key in unknown]) or "?"


def _size_text(size):
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024


def _alive_here(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder_text(holder):
    return f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}"


@dataclasses.dataclass(frozen=True)
class RunDir:
    """The folder of one training run (see the module docstring for its files).

    Args:
        path: the folder, in any spelling: it is canonicalised (absolute, symlinks resolved),
            so `runs/a`, `runs/a/` and a link to it are the same run.
    """

    path: str

    def __post_init__(self):
        object.__setattr__(self, "path", os.path.realpath(self.path))

    def file(self, name):
        return os.path.join(self.path, name)

    @property
    def backup_dir(self):
        return self.file("backup")

    @property
    def backup(self):
        return epoch_state.EpochStateStore(self.backup_dir)

    @property
    def logs_dir(self):
        return self.file("logs")

    @property
    def history_path(self):
        return self.file(HISTORY_FILE)

    def is_run(self):
        """Whether the folder holds a run's config.json."""
        return os.path.isfile(self.file(CONFIG_FILE))

    @contextlib.contextmanager
    def lock(self):
        """Holds `<run>/train.lock` while the block runs: one training process per run.

        A second process gets a `RunDirectoryError` naming the holder's pid; the lock of a
        process that is no longer running on this host is taken over with a message. The lock
        is an `flock` on the file, which the system releases when its holder dies, even by
        SIGKILL; the file records who holds it.
        """
        self._make_folder()
        handle = self._locked_handle()
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.remove(self.file(LOCK_FILE))
            handle.close()

    def _locked_handle(self):
        path = self.file(LOCK_FILE)
        while True:
            handle = open(path, "a+", encoding="utf-8")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(handle)
                handle.close()
                raise RunDirectoryError(
                    f"{self.path} is being written by another training run "
                    f"({_holder_text(holder)}); wait for it to finish or stop it, or choose "
                    f"another --model_dir"
                ) from None
            # The holder may have released and removed the file after we opened it.
            if _is_open_file(handle, path):
                self._claim(handle)
                return handle
            handle.close()

    def _claim(self, handle):
        previous = _read_holder(handle)
        if previous:
            if previous.get("host") == socket.gethostname() and _alive_here(previous["pid"]):
                handle.close()
                raise RunDirectoryError(
                    f"{self.file(LOCK_FILE)} names a running process ({_holder_text(previous)}) "
                    f"that does not hold the lock; if it is not a training run, remove the file"
                )
            print(
                f"[train] taking over the stale lock of {self.path} ({_holder_text(previous)}, "
                f"no longer running)",
                file=sys.stderr,
                flush=True,
            )
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(holder) + "\n")
        handle.flush()
        os.fsync(handle.fileno())

    def read_json(self, name):
        """The JSON file `name` of the run, or None if absent; `ModelLoadError` if unreadable."""
        path = self.file(name)
        if not os.path.exists(path):
            return None
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError) as error:
            raise ModelLoadError(
                f"could not read {path}: {error}; repair or remove the file"
            ) from error

    def read_config(self):
        """The run's `TrainConfig`; `ModelLoadError` if config.json is absent or invalid."""
        values = self.read_json(CONFIG_FILE)
        if values is None:
            raise ModelLoadError(
                f"{self.path} holds no {CONFIG_FILE}: pass a run directory "
                f"written by keras_dpnp.train"
            )
        try:
            return TrainConfig.from_dict(values)
        except (ValueError, TypeError) as error:
            raise ModelLoadError(
                f"could not read {self.file(CONFIG_FILE)}: {error}; repair or remove the file"
            ) from error

    def checkpoint(self, choice="best"):
        """The `.keras` file of a --checkpoint choice: best.keras if present, else last.keras
        (the default is the model of the run)."""
        names = CHECKPOINTS[choice]
        for name in names:
            if os.path.isfile(self.file(name)):
                return self.file(name)
        raise ModelLoadError(
            f"{self.path} holds no {' or '.join(names)}; give a run "
            f"directory written by keras_dpnp.train or a .keras file"
        )

    def logged_epochs(self):
        """{epoch, counted from 1: {log key: value}} from history.csv; a row logged again after
        a resume replaces the earlier one."""
        try:
            with open(self.history_path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        except FileNotFoundError:
            return {}
        try:
            return {
                int(row["epoch"]) + 1: {key: float(value) for key, value in row.items() if value}
                for row in rows
            }
        except (KeyError, TypeError, ValueError) as error:
            raise RunDirectoryError(
                f"{self.history_path}: a row is not numbers under the header's columns ({error}); "
                f"the file is damaged: rerun the training to rebuild it from the run's backup, or "
                f"pass --overwrite to start again"
            ) from None

    def checkpoint_entry(self, monitor):
        """{file, epoch, chosen_by} of the run's model (`checkpoint()`): best.keras is the first
        epoch of the best `monitor` in history.csv, last.keras the latest epoch."""
        name = os.path.basename(self.checkpoint())
        epochs = self.logged_epochs()
        if name == BEST_CHECKPOINT and monitor:
            best = max(epochs, key=lambda epoch: (epochs[epoch].get(monitor, -math.inf), -epoch))
            return {"file": name, "epoch": best, "chosen_by": monitor}
        return {"file": name, "epoch": max(epochs, default=0), "chosen_by": None}

    def recorded_epoch(self, model_path):
        """The epoch results.json records for the checkpoint `model_path`, else None."""
        checkpoint = (self.read_json(RESULTS_FILE) or {}).get("checkpoint") or {}
        same_file = checkpoint.get("file") == os.path.basename(model_path)
        return checkpoint.get("epoch") if same_file else None

    def finished_results(self, config):
        """The results of an earlier run of the same config in this folder, or None; without
        their test numbers for a config that keeps the test set unread (`--nofinal_test`)."""
        if not self.is_run():
            return None
        with open(self.file(CONFIG_FILE), encoding="utf-8") as f:
            same = config.matches_saved(f.read())
        results = self.read_json(RESULTS_FILE) if same else None
        if results is None or config.final_test:
            return results
        return {**results, **fields_of_test_check(None)}

    def add_final_test(self, results, test):
        """Records the test check of a run trained with `--nofinal_test` (`test`: the
        examples, clean and robust accuracy measured on its model) in results.json, and that
        it was read in config.json; returns the completed results."""
        completed = {**results, **fields_of_test_check(test)}
        self.write_results(completed)
        saved = self.read_json(CONFIG_FILE)
        write_text(
            self.file(CONFIG_FILE),
            json.dumps({**saved, "final_test": True}, indent=2, sort_keys=True) + "\n",
        )
        return completed

    def prepare(self, config, overwrite=False):
        """Creates the folder and writes `config`, or accepts a folder holding the same config
        (training then resumes from its backup). A different config is refused unless
        `overwrite`, which deletes the old run (all but the lock)."""
        saved = self.file(CONFIG_FILE)
        if os.path.exists(saved):
            with open(saved, encoding="utf-8") as f:
                previous = f.read()
            if not config.matches_saved(previous):
                if not overwrite:
                    raise RunDirectoryError(
                        f"{self.path} already holds a run with a different config "
                        f"({_config_differences(config, previous)}); pass --overwrite to "
                        f"replace it, or choose another --model_dir"
                    )
                self._clear()
        self._make_folder()
        try:
            write_text(saved, config.to_json() + "\n")
        except OSError as error:
            raise self._unwritable(error) from error

    def _make_folder(self):
        try:
            os.makedirs(self.path, exist_ok=True)
        except OSError as error:
            raise self._unwritable(error) from error

    def _unwritable(self, error):
        return RunDirectoryError(
            f"cannot write the run directory {self.path}: {error.strerror or error}; pass "
            f"a writable --model_dir"
        )

    def _clear(self):
        for name in os.listdir(self.path):
            target = self.file(name)
            if name == LOCK_FILE:
                continue
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target)
            else:
                os.remove(target)

    @contextlib.contextmanager
    def _writing(self, what, needed, resumes_after):
        """Turns a failed write (disk full, or any OSError) of `what` into one
        `RunDirectoryError` naming the folder, the `needed` bytes and where a rerun resumes.
        A write that cannot fit in the free space is refused before it starts."""
        try:
            free = shutil.disk_usage(self.path).free
            if free < needed:
                raise OSError(errno.ENOSPC, f"No space left on device ({_size_text(free)} free)")
            yield
        except OSError as error:
            resume = (
                f"resumes after epoch {resumes_after}" if resumes_after else "starts at epoch 1"
            )
            raise RunDirectoryError(
                f"cannot write {what} in {self.path}: {error.strerror or error}; it needs "
                f"{_size_text(needed)} free there; free space and rerun the same command (it "
                f"{resume})"
            ) from error

    def commit_epoch(self, state):
        """Writes `state` as the backup unit of its epoch, then removes the units no longer
        needed: all but this one, the one before it and the best epoch's. Returns its size."""
        payloads = epoch_state.encode(state)
        size = sum(len(data) for data in payloads.values())
        with self._writing(f"the epoch-{state.epoch} backup", size, state.epoch - 1):
            self.backup.commit(state.epoch, payloads)
        self.backup.prune({state.epoch, state.epoch - 1, state.best_epoch})
        return size

    def write_history(self, rows, epoch):
        """Rewrites history.csv from `rows` (one per epoch, as the backup unit of `epoch`
        holds them)."""
        buffer = io.StringIO()
        columns = ["epoch"] + sorted({key for row in rows for key in row} - {"epoch"})
        writer = csv.DictWriter(buffer, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        with self._writing(HISTORY_FILE, len(buffer.getvalue()), epoch):
            write_text(self.history_path, buffer.getvalue())

    def save_checkpoint(self, model, name, needed, epoch):
        """Saves `model` to the checkpoint `name` atomically; `needed` is its expected size,
        `epoch` the finished epochs it holds."""
        with self._writing(name, needed, epoch), atomic_path(self.file(name)) as temporary:
            model.save(temporary)

    def write_results(self, results):
        write_text(self.file(RESULTS_FILE), json.dumps(results, indent=2) + "\n")

    def write_validation_robustness(self, measured):
        """Writes the validation AutoAttack of the run's model (`VALIDATION_ROBUSTNESS_FILE`)."""
        write_text(self.file(VALIDATION_ROBUSTNESS_FILE), json.dumps(measured, indent=2) + "\n")

    def remove_backup(self):
        """Deletes the backup of a run that finished (results.json written)."""
        shutil.rmtree(self.backup_dir, ignore_errors=True)


def _is_open_file(handle, path):
    """Whether `path` still names the file `handle` has open."""
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(handle.fileno())
    return (on_disk.st_dev, on_disk.st_ino) == (opened.st_dev, opened.st_ino)


def _read_holder(handle):
    handle.seek(0)
    try:
        holder = json.loads(handle.read() or "{}")
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) and isinstance(holder.get("pid"), int) else {}


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """A model file and the run it belongs to.

    `given` is the path the caller gave, `model_path` the `.keras` file it resolves to, `run`
    the run directory holding that file (None for a file outside any run) and `config` its
    `TrainConfig`.
    """

    given: str
    model_path: str
    run: RunDir | None
    config: TrainConfig | None

    @property
    def recorded_path(self):
        """How reports name the model file: its path inside the run (`best.keras`), so a run
        directory moved or cloned elsewhere still holds reports of its own model; a file
        outside any run keeps the path it was given."""
        return os.path.relpath(self.model_path, self.run.path) if self.run else self.model_path

    @property
    def shown_path(self):
        """The model file as the caller named it, for printed and exported records: the given
        `.keras` path, or the given run directory joined with the file's name inside it (never
        the resolved absolute path, which names one machine's folders)."""
        if os.path.isdir(self.given):
            return os.path.join(self.given, os.path.basename(self.model_path))
        return self.given

    def epoch(self):
        """The epoch of the model file as its run's results.json records it, else None."""
        return self.run.recorded_epoch(self.model_path) if self.run else None

    @property
    def folder(self):
        """Where reports about this model go by default: the run, else the file's folder."""
        return self.run.path if self.run else os.path.dirname(os.path.abspath(self.model_path))


def find_model(path, checkpoint="best"):
    """Resolves `path`, a run directory or a `.keras` file, to a `ModelSource`.

    From a run directory `checkpoint='best'` takes best.keras (the epoch of best validation
    accuracy) when it exists, else last.keras. A `.keras` file whose folder holds a
    config.json belongs to that run.
    """
    if checkpoint not in CHECKPOINTS:
        raise ModelLoadError(f"checkpoint must be one of {list(CHECKPOINTS)}, got {checkpoint!r}")
    if not os.path.exists(path):
        raise ModelLoadError(
            f"model not found: {path}; give a run directory (holding "
            f"best.keras or last.keras) or a .keras file"
        )
    if os.path.isdir(path):
        run = RunDir(path)
        model_path = run.checkpoint(checkpoint)
    elif path.endswith(".keras"):
        run, model_path = RunDir(os.path.dirname(os.path.abspath(path))), path
    else:
        raise ModelLoadError(f"{path} is not a .keras file; give a run directory or a .keras file")
    if not run.is_run():
        return ModelSource(path, model_path, None, None)
    return ModelSource(path, model_path, run, run.read_config())


def load_model(path, *, compile=False):
    """Loads a `.keras` file with Keras's safe mode (keras_dpnp's layers are registered on
    import), or raises a one-line `ModelLoadError`. `compile` also restores the optimizer."""
    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=True)
    except Exception as error:  # noqa: BLE001  (any reader failure means "not a usable model")
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ModelLoadError(
            f"could not load {path} as a Keras model "
            f"({type(error).__name__}: {reason[:200]}); is the file "
            f"complete and written by keras_dpnp?"
        ) from error


def check_fits_data(model, info):
    """Raises `ModelLoadError` unless the model takes `info.image_shape` images and returns
    `info.num_classes` logits."""
    probe = np.zeros((1,) + tuple(info.image_shape), np.float32)
    try:
        logits = model(probe, training=False)
    except Exception as error:  # noqa: BLE001  (a shape mismatch surfaces as several types)
        raise ModelLoadError(
            f"the model does not accept {info.name} images of shape "
            f"{tuple(info.image_shape)}: {type(error).__name__}"
        ) from error
    classes = int(logits.shape[-1])
    if classes != info.num_classes:
        raise ModelLoadError(
            f"the model predicts {classes} classes but {info.name} has "
            f"{info.num_classes}: pass the --dataset it was trained on"
        )
