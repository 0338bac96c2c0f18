"""The callbacks of a training run: schedules, prototype set-up, data order, the epoch's
backup and checkpoints, and the divergence guard."""

import math
import sys
import time

import keras
import numpy as np

from keras_dpnp.training import epoch_state
from keras_dpnp.training.run_dir import (
    BEST_CHECKPOINT,
    EPOCH_SECONDS,
    LAST_CHECKPOINT,
    RunDirectoryError,
)


class EpochSchedules(keras.callbacks.Callback):
    """Tells the model which epoch begins, so it sets its warm-ups (`AdvDPNP.start_epoch`)."""

    def on_epoch_begin(self, epoch, logs=None):
        self.model.start_epoch(epoch)


class ClassMeanPrototypes(keras.callbacks.Callback):
    """After `epochs` epochs, points every prototype at its class's mean clean feature.

    It acts when the next epoch begins, so a run resumed from the backup taken at the end of
    epoch `epochs` still does it, on the same weights.
    """

    def __init__(self, dataset, epochs):
        super().__init__()
        self.dataset = dataset
        self.epochs = epochs

    def on_epoch_begin(self, epoch, logs=None):
        if epoch != self.epochs:
            return
        features, labels = [], []
        for images, batch_labels in self.dataset:
            features.append(keras.ops.convert_to_numpy(self.model.backbone(images, training=False)))
            labels.append(keras.ops.convert_to_numpy(batch_labels))
        self.model.head.set_to_class_means(np.concatenate(features), np.concatenate(labels))


class EpochKeyedData(keras.callbacks.Callback):
    """Points the training pipeline's epoch counter at the epoch about to run, so a resumed
    run replays the same batches as one that never stopped."""

    def __init__(self, epoch_counter):
        super().__init__()
        self.epoch_counter = epoch_counter

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_counter.assign(epoch - 1)


class TrainingDivergedError(RuntimeError):
    """A loss term became NaN or infinite."""


class EpochRecorder(keras.callbacks.Callback):
    """Writes what each finished epoch leaves, in an order a crash cannot break.

    At an epoch's end the backup unit goes first (`RunDir.commit_epoch`), then history.csv,
    last.keras and, when `monitor` improved, best.keras, each from the unit's state. A rerun
    resumes from the newest intact unit and, when training begins, restores it and rewrites
    those files from it (best.keras from the best epoch's unit), so after a crash at any point
    neither the history nor the choice of best.keras misses an epoch.

    Each history row also holds `epoch_seconds`, the epoch's wall time (training and
    validation), so a run resumed over several processes still knows the cost of every epoch.

    Args:
        run: the `RunDir` written.
        monitor: the log whose highest value picks best.keras; None: no best.keras.
        resumed: the `EpochState` the run resumes from; None for a fresh run.
    """

    def __init__(self, run, monitor, resumed=None):
        super().__init__()
        self.run = run
        self.monitor = monitor
        self.resumed = resumed
        self.state = resumed or epoch_state.EpochState()
        self.unit_size = 0
        self.epoch_started = None

    def on_train_begin(self, logs=None):
        if self.resumed is None:
            return
        try:
            epoch_state.restore(self.model, self.resumed)
        except epoch_state.IncompatibleUnitError as error:
            raise RunDirectoryError(
                f"{error}; remove {self.run.backup_dir} to start the run again at epoch 1"
            ) from error
        self.unit_size = sum(value.nbytes for value in self.resumed.values)
        self.run.write_history(self.resumed.history, self.resumed.epoch)
        self._save(LAST_CHECKPOINT, self.resumed.epoch)
        if self.resumed.best_epoch:
            self._rebuild_best(self.resumed)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch, **{name: float(value) for name, value in (logs or {}).items()}}
        if self.epoch_started is not None:
            row[EPOCH_SECONDS] = round(time.perf_counter() - self.epoch_started, 1)
        value = row.get(self.monitor) if self.monitor else None
        improved = value is not None and value > self.state.best
        best, best_epoch = (
            (value, epoch + 1) if improved else (self.state.best, self.state.best_epoch)
        )
        history = self.state.history + (row,)
        self.state = epoch_state.capture(self.model, epoch + 1, best, best_epoch, history)
        self.unit_size = self.run.commit_epoch(self.state)
        self.run.write_history(self.state.history, self.state.epoch)
        self._save(LAST_CHECKPOINT, self.state.epoch)
        if improved:
            self._save(BEST_CHECKPOINT, self.state.epoch)

    def _save(self, name, epoch):
        self.run.save_checkpoint(self.model, name, self.unit_size, epoch)

    def _rebuild_best(self, state):
        """Saves best.keras from the unit of `state.best_epoch`, then puts `state` back."""
        if state.best_epoch == state.epoch:
            self._save(BEST_CHECKPOINT, state.epoch)
            return
        try:
            epoch_state.restore(self.model, self.run.backup.load(state.best_epoch))
        except epoch_state.DamagedUnitError as error:
            print(
                f"warning: best.keras kept as it is: the backup of its epoch "
                f"{state.best_epoch} is damaged ({error})",
                file=sys.stderr,
                flush=True,
            )
            return
        self._save(BEST_CHECKPOINT, state.epoch)
        epoch_state.restore(self.model, state)


class NonFiniteGuard(keras.callbacks.Callback):
    """Stops training at the first step whose logged loss terms are not finite."""

    def __init__(self, run_dir):
        super().__init__()
        self.run_dir = run_dir
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        bad = sorted(
            name for name, value in (logs or {}).items() if not math.isfinite(float(value))
        )
        if bad:
            raise TrainingDivergedError(
                f"non-finite {', '.join(bad)} at epoch {self.epoch + 1}, step {batch + 1}; "
                f"the last good checkpoint is kept in {self.run_dir} (lower --learning_rate "
                f"or the loss weights, then rerun)"
            )
