"""The epoch state a rerun resumes from: `<run>/backup/epoch-NNNN/`, one unit per epoch.

A unit holds everything the epochs after it depend on: the model's variables (the attack's
seed state among them), the optimizer's, the number of finished epochs, the best monitored
value and the epoch that reached it, and every history row. Its three files:

    variables.npz   the values, in `model.variables + model.optimizer.variables` order
    state.json      epoch, best, best_epoch, history rows, the variables' paths and shapes
    manifest.json   the size and sha256 of the two files above, written last

A unit is written in `.epoch-NNNN.partial/`, every file fsynced, then renamed into place and
the backup folder fsynced, so under its final name a unit is complete or absent. One whose
files do not match its manifest is damaged: `EpochStateStore.latest` skips it with a one-line
warning and takes the one before.
"""

import dataclasses
import hashlib
import io
import json
import math
import os
import shutil
import sys

import keras
import numpy as np

from keras_dpnp import files

UNIT_PREFIX = "epoch-"
PARTIAL_SUFFIX = ".partial"
VARIABLES_FILE = "variables.npz"
STATE_FILE = "state.json"
MANIFEST_FILE = "manifest.json"


class DamagedUnitError(ValueError):
    """A unit's files are missing, truncated or do not match its manifest."""


class IncompatibleUnitError(RuntimeError):
    """A unit was written by a model with other variables than the one being trained."""


@dataclasses.dataclass(frozen=True)
class EpochState:
    """The state after `epoch` finished epochs; `best_epoch` is 0 until `best` is set."""

    epoch: int = 0
    best: float = -math.inf
    best_epoch: int = 0
    history: tuple = ()
    paths: tuple = ()
    values: tuple = ()


def _tracked_variables(model):
    return list(model.variables) + list(model.optimizer.variables)


def capture(model, epoch, best, best_epoch, history):
    """The `EpochState` of `model` (weights, seed states, optimizer) after `epoch` epochs."""
    variables = _tracked_variables(model)
    return EpochState(
        epoch=epoch,
        best=best,
        best_epoch=best_epoch,
        history=tuple(history),
        paths=tuple(variable.path for variable in variables),
        values=tuple(keras.ops.convert_to_numpy(variable) for variable in variables),
    )


def restore(model, state):
    """Assigns the unit's values to `model`'s variables; `IncompatibleUnitError` if they
    differ in number or shape (a backup of another model).

    Variables are matched by position, not by path: a path starts with the model's name, which
    Keras numbers (`adv_dpnp_1`) when a process builds more than one model.
    """
    variables = _tracked_variables(model)
    found = [tuple(variable.shape) for variable in variables]
    saved = [value.shape for value in state.values]
    if found != saved:
        raise IncompatibleUnitError(
            f"the epoch-{state.epoch} backup holds {len(saved)} variables whose shapes do not "
            f"match the model's {len(found)}"
        )
    for variable, value in zip(variables, state.values, strict=True):
        variable.assign(value)


def encode(state):
    """The unit's files as {name: bytes}, the manifest last."""
    buffer = io.BytesIO()
    np.savez(buffer, *state.values)
    description = {
        "epoch": state.epoch,
        "best": state.best if math.isfinite(state.best) else None,
        "best_epoch": state.best_epoch,
        "history": list(state.history),
        "paths": list(state.paths),
        "shapes": [list(value.shape) for value in state.values],
    }
    payloads = {
        VARIABLES_FILE: buffer.getvalue(),
        STATE_FILE: json.dumps(description).encode(),
    }
    manifest = {
        name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for name, data in payloads.items()
    }
    return {**payloads, MANIFEST_FILE: json.dumps(manifest).encode()}


def _read_verified(folder):
    """The unit's payloads, each checked against the manifest; `DamagedUnitError` if not."""
    try:
        with open(os.path.join(folder, MANIFEST_FILE), "rb") as f:
            manifest = json.loads(f.read())
        payloads = {}
        for name, expected in manifest.items():
            with open(os.path.join(folder, name), "rb") as f:
                payloads[name] = f.read()
            if hashlib.sha256(payloads[name]).hexdigest() != expected["sha256"]:
                raise DamagedUnitError(f"{name} does not match the manifest")
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise DamagedUnitError(str(error) or type(error).__name__) from error
    if set(payloads) != {VARIABLES_FILE, STATE_FILE}:
        raise DamagedUnitError("the manifest does not list the unit's files")
    return payloads


def decode(folder):
    """The `EpochState` of the unit in `folder`; `DamagedUnitError` if it is not intact."""
    payloads = _read_verified(folder)
    try:
        description = json.loads(payloads[STATE_FILE])
        with np.load(io.BytesIO(payloads[VARIABLES_FILE]), allow_pickle=False) as arrays:
            values = tuple(arrays[f"arr_{index}"] for index in range(len(arrays.files)))
    except (ValueError, KeyError, OSError) as error:
        raise DamagedUnitError(str(error)) from error
    best = description["best"]
    return EpochState(
        epoch=description["epoch"],
        best=-math.inf if best is None else best,
        best_epoch=description["best_epoch"],
        history=tuple(description["history"]),
        paths=tuple(description["paths"]),
        values=values,
    )


class EpochStateStore:
    """The units of one run's backup folder.

    Args:
        folder: the backup folder, `<run>/backup`.
    """

    def __init__(self, folder):
        self.folder = folder

    def unit_path(self, epoch):
        return os.path.join(self.folder, f"{UNIT_PREFIX}{epoch:04d}")

    def epochs(self):
        """The epochs of the units under their final names, newest first."""
        if not os.path.isdir(self.folder):
            return []
        found = [
            int(name[len(UNIT_PREFIX) :])
            for name in os.listdir(self.folder)
            if name.startswith(UNIT_PREFIX) and name[len(UNIT_PREFIX) :].isdigit()
        ]
        return sorted(found, reverse=True)

    def commit(self, epoch, payloads):
        """Writes the unit of `epoch` from `encode`'s payloads: whole under its final name, or
        not at all (an OSError leaves the units before it as they were)."""
        os.makedirs(self.folder, exist_ok=True)
        final = self.unit_path(epoch)
        partial = os.path.join(self.folder, f".{os.path.basename(final)}{PARTIAL_SUFFIX}")
        shutil.rmtree(partial, ignore_errors=True)
        try:
            os.makedirs(partial)
            for name, data in payloads.items():
                files.write_durably(os.path.join(partial, name), data)
            files.fsync_folder(partial)
            # A damaged unit of this epoch (skipped on resume) makes way for the new one.
            shutil.rmtree(final, ignore_errors=True)
            os.replace(partial, final)
            files.fsync_folder(self.folder)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise

    def load(self, epoch):
        """The state of the unit of `epoch`; `DamagedUnitError` if it is not intact."""
        return decode(self.unit_path(epoch))

    def latest(self):
        """The newest intact unit's state, or None; each damaged one skipped with a warning."""
        for epoch in self.epochs():
            try:
                return self.load(epoch)
            except DamagedUnitError as error:
                print(
                    f"warning: skipping the damaged backup {self.unit_path(epoch)} ({error}); "
                    f"resuming from the unit before it",
                    file=sys.stderr,
                    flush=True,
                )
        return None

    def prune(self, keep):
        """Removes every unit whose epoch is not in `keep`."""
        for epoch in self.epochs():
            if epoch not in keep:
                shutil.rmtree(self.unit_path(epoch), ignore_errors=True)
