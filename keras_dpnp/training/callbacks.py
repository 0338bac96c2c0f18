"""The callbacks of a training run: schedules, prototype set-up, data order, checkpoints and
the divergence guard."""

import math

import keras
import numpy as np

from keras_dpnp.files import atomic_path


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


class AtomicCheckpoint(keras.callbacks.Callback):
    """Saves the model to `path` after every epoch (or when `monitor` improves), atomically."""

    def __init__(self, path, monitor=None, best=-math.inf):
        super().__init__()
        self.path = path
        self.monitor = monitor
        self.best = best

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor is not None:
            value = (logs or {}).get(self.monitor)
            if value is None or value <= self.best:
                return
            self.best = value
        with atomic_path(self.path) as temporary:
            self.model.save(temporary)


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
