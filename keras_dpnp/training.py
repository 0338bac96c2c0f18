"""One training run from a `TrainConfig`: data, model, `fit`, final test accuracy, run directory."""

import csv
import dataclasses
import json
import math
import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

from keras_dpnp import data as datasets
from keras_dpnp import distribute, hardware
from keras_dpnp.backbones import build_backbone
from keras_dpnp.config import TrainConfig
from keras_dpnp.evaluation.accuracy import accuracy_under_pgd
from keras_dpnp.files import atomic_path, write_text
from keras_dpnp.methods import METHODS
from keras_dpnp.model import AdvDPNP


class RunDirectoryError(RuntimeError):
    """The run directory cannot be used for this configuration."""


def build_model(config: TrainConfig, info) -> AdvDPNP:
    """The model a config describes, for a data set with `info` (`DatasetInfo`)."""
    backbone_options = {"width": config.width} if config.width != 1.0 else {}
    backbone = build_backbone(
        config.backbone, info.image_shape, mean=info.mean, std=info.std,
        feature_dim=config.feature_dim or None,
        feature_activation=None if config.feature_activation == "none" else "relu",
        sync_batchnorm=config.sync_batchnorm, **backbone_options)
    return AdvDPNP(
        backbone, info.num_classes, head=config.head, radius=config.radius,
        logits=config.logits, logit_scale=config.logit_scale,
        prototype_init=config.prototype_init, method=config.method,
        loss_weights=config.loss_weights(), attack=config.train_attack(),
        eval_attack=config.eval_attack(config.val_attack_steps) if config.epsilon > 0 else None,
        seed=config.seed)


def build_optimizer(config: TrainConfig, steps_per_epoch: int):
    total = config.epochs * steps_per_epoch
    if config.lr_schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(config.learning_rate, total)
    elif config.lr_schedule == "piecewise":
        rate = keras.optimizers.schedules.PiecewiseConstantDecay(
            [total // 2, (3 * total) // 4],
            [config.learning_rate, config.learning_rate / 10, config.learning_rate / 100])
    else:
        rate = config.learning_rate
    if config.optimizer == "adam":
        return keras.optimizers.AdamW(rate, weight_decay=config.weight_decay or None)
    return keras.optimizers.SGD(rate, momentum=0.9, nesterov=True,
                                weight_decay=config.weight_decay or None)


class WarmupSchedule(keras.callbacks.Callback):
    """Ramps the alignment weight (from 0) and the training ε (from ε/N) linearly over epochs."""

    def __init__(self, align_epochs, epsilon_epochs):
        super().__init__()
        self.align_epochs = align_epochs
        self.epsilon_epochs = epsilon_epochs

    def on_epoch_begin(self, epoch, logs=None):
        if self.align_epochs:
            self.model.align_warmup.assign(min(1.0, epoch / self.align_epochs))
        if self.epsilon_epochs:
            self.model.epsilon_warmup.assign(min(1.0, (epoch + 1) / self.epsilon_epochs))


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
            features.append(keras.ops.convert_to_numpy(self.model.backbone(images,
                                                                           training=False)))
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
        bad = sorted(name for name, value in (logs or {}).items()
                     if not math.isfinite(float(value)))
        if bad:
            raise TrainingDivergedError(
                f"non-finite {', '.join(bad)} at epoch {self.epoch + 1}, step {batch + 1}; "
                f"the last good checkpoint is kept in {self.run_dir} (lower --learning_rate "
                f"or the loss weights, then rerun)")


def _best_logged(history_path, monitor):
    """The best value of `monitor` in an earlier (interrupted) run's history.csv."""
    try:
        with open(history_path, newline="", encoding="utf-8") as f:
            values = [float(row[monitor]) for row in csv.DictReader(f) if row.get(monitor)]
    except FileNotFoundError:
        return -math.inf
    return max(values, default=-math.inf)


def _differences(config: TrainConfig, saved_text):
    try:
        saved = json.loads(saved_text)
    except ValueError:
        return "its config.json is unreadable"
    current = dataclasses.asdict(config)
    changed = [f"--{key}={saved.get(key)!r} there, {value!r} now"
               for key, value in current.items() if key in saved and saved[key] != value]
    unknown = sorted(set(saved) - set(current))
    return "; ".join(changed + [f"unknown setting {key!r}" for key in unknown]) or "?"


def prepare_run_directory(config: TrainConfig, overwrite=False):
    """Creates the run directory, or accepts an existing one holding the same config (then
    training resumes from its backup). A different config is refused unless `overwrite`,
    which deletes the old run first."""
    run_dir = config.run_dir
    saved = os.path.join(run_dir, "config.json")
    if os.path.exists(saved):
        with open(saved, encoding="utf-8") as f:
            previous = f.read()
        if not config.matches_saved(previous):
            if not overwrite:
                raise RunDirectoryError(
                    f"{run_dir} already holds a run with a different config "
                    f"({_differences(config, previous)}); pass --overwrite to replace it, or "
                    f"choose another --model_dir")
            shutil.rmtree(run_dir)
    try:
        os.makedirs(run_dir, exist_ok=True)
        write_text(saved, config.to_json() + "\n")
    except OSError as error:
        raise RunDirectoryError(
            f"cannot write the run directory {run_dir}: {error.strerror or error}; pass a "
            f"writable --model_dir") from error
    return run_dir


def run_banner(config: TrainConfig, precision_reason):
    """One line: the run, where it computes, its precision and why, and oneDNN's state."""
    return (f"[train] {config.run_name}: {config.method} on {config.dataset}, precision "
            f"{config.precision} ({precision_reason}), oneDNN {distribute.onednn_status()}, "
            f"{hardware.cpu_model()}")


def train(config: TrainConfig, *, verbose="auto", overwrite=False):
    """Trains as `config` says and returns the results dict also written to `results.json`.

    Rerunning a config whose run directory exists resumes from its last backup; a run
    directory holding a different config is refused unless `overwrite`.
    """
    # A multi-worker strategy must exist before any other TensorFlow work.
    strategy = distribute.make_strategy(config.strategy)
    distribute.check_global_batch(config.batch_size, strategy)
    precision, precision_reason = distribute.resolve_precision(config.precision)
    # config.json records the precision the run computes in, so `auto` runs stay comparable.
    config = dataclasses.replace(config, precision=precision)
    if verbose:
        print(run_banner(config, precision_reason), flush=True)
    splits = datasets.load_dataset(
        config.dataset, **config.data_options(),
        validation_fraction=config.validation_fraction, seed=config.seed)
    info = splits.info
    if len(splits.train[1]) < config.batch_size:
        raise ValueError(f"--batch_size={config.batch_size} is larger than the "
                         f"{len(splits.train[1])} training examples; lower it")
    run_dir = prepare_run_directory(config, overwrite)
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    epoch_counter = tf.Variable(-1, dtype=tf.int64, trainable=False)
    train_ds = distribute.shard_by_example(datasets.make_dataset(
        *splits.train, batch_size=config.batch_size, training=True, augment=info.augment,
        seed=config.seed, epoch_counter=epoch_counter))
    val_ds = None
    if splits.validation is not None:
        val_ds = distribute.shard_by_example(datasets.make_dataset(
            *splits.validation, batch_size=config.batch_size, training=False))
    with strategy.scope(), distribute.precision_policy(config.precision):
        model = build_model(config, info)
    steps_per_epoch = int(train_ds.cardinality())
    with strategy.scope():
        model.compile(optimizer=build_optimizer(config, steps_per_epoch))
    resuming = os.path.isdir(os.path.join(run_dir, "backup"))
    history_path = os.path.join(run_dir, "history.csv")
    monitor = None
    if val_ds is not None:
        robust = config.epsilon > 0 and METHODS[config.method].attack_objective is not None
        monitor = "val_pgd_accuracy" if robust else "val_clean_accuracy"
    callbacks = [
        keras.callbacks.BackupAndRestore(os.path.join(run_dir, "backup")),
        EpochKeyedData(epoch_counter),
        NonFiniteGuard(run_dir),
        WarmupSchedule(config.align_warmup_epochs, config.epsilon_warmup_epochs),
        *([ClassMeanPrototypes(
            datasets.make_dataset(*splits.train, batch_size=config.batch_size, training=False),
            config.class_means_epochs)]
          if config.prototype_init == "class_means" and model.head_kind == "prototype" else []),
        AtomicCheckpoint(os.path.join(run_dir, "last.keras")),
        *([AtomicCheckpoint(os.path.join(run_dir, "best.keras"), monitor,
                            _best_logged(history_path, monitor) if resuming else -math.inf)]
          if monitor else []),
        keras.callbacks.CSVLogger(history_path, append=resuming),
        keras.callbacks.TensorBoard(os.path.join(run_dir, "logs"), write_graph=False),
    ]
    started = time.time()
    history = model.fit(train_ds, validation_data=val_ds, epochs=config.epochs,
                        callbacks=callbacks, shuffle=False, verbose=verbose).history
    train_seconds = time.time() - started
    test = {"examples": 0, "clean_accuracy": None, "robust_accuracy": None}
    if config.final_test:
        test_ds = datasets.make_dataset(*splits.test, batch_size=config.batch_size,
                                        training=False)
        attack = config.eval_attack(config.eval_attack_steps) if config.epsilon > 0 else None
        test = accuracy_under_pgd(model, test_ds, attack)
    results = {
        "name": config.run_name,
        "dataset": config.dataset,
        "data_source": info.source,
        "class_names": list(info.class_names),
        "method": config.method,
        "backbone": config.backbone,
        "epsilon": config.epsilon,
        "attack": f"PGD-{config.eval_attack_steps} (CE, step {config.attack_step_size:.4g}, "
                  f"random start, {config.attack_norm})",
        "test_examples": test["examples"],
        "clean_accuracy": test["clean_accuracy"],
        "pgd_accuracy": test["robust_accuracy"],
        "validation": {key[len("val_"):]: values[-1] for key, values in history.items()
                       if key.startswith("val_")},
        "final_train_logs": {key: values[-1] for key, values in history.items()
                             if not key.startswith("val_")},
        "epochs": config.epochs,
        "train_seconds": round(train_seconds, 1),
        "seed": config.seed,
        "precision": precision,
        "precision_reason": precision_reason,
        "onednn": distribute.onednn_status(),
    }
    write_text(os.path.join(run_dir, "results.json"), json.dumps(results, indent=2) + "\n")
    return results


def format_results(results):
    """A small Markdown table of the final test accuracy."""
    if results["clean_accuracy"] is None:
        validation = results["validation"]
        return (f"{results['name']}: test set not read (--nofinal_test); validation clean "
                f"{100 * validation.get('clean_accuracy', float('nan')):.2f} %, PGD "
                f"{100 * validation.get('pgd_accuracy', float('nan')):.2f} %")
    pgd = results["pgd_accuracy"]
    pgd_text = "n/a (ε = 0)" if pgd is None else f"{100 * pgd:.2f}"
    return "\n".join([
        f"| run | method | data | ε | clean % | {results['attack'].split(' ')[0]} % |",
        "|---|---|---|---|---|---|",
        f"| {results['name']} | {results['method']} | {results['dataset']} "
        f"({results['test_examples']} test) | {results['epsilon']:.4g} | "
        f"{100 * results['clean_accuracy']:.2f} | {pgd_text} |",
    ])
