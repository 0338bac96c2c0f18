"""One training run from a `TrainConfig`: data, model, `fit`, final test accuracy, run directory."""

import json
import math
import os
import time

import keras

from keras_dpnp import data as datasets
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
        **backbone_options)
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


class TrainingDivergedError(RuntimeError):
    """A loss term became NaN or infinite."""


class AtomicCheckpoint(keras.callbacks.Callback):
    """Saves the model to `path` after every epoch (or when `monitor` improves), atomically."""

    def __init__(self, path, monitor=None):
        super().__init__()
        self.path = path
        self.monitor = monitor
        self.best = -math.inf

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


def prepare_run_directory(config: TrainConfig):
    """Creates the run directory, or accepts an existing one holding the same config."""
    run_dir = config.run_dir
    saved = os.path.join(run_dir, "config.json")
    if os.path.exists(saved):
        with open(saved, encoding="utf-8") as f:
            previous = f.read()
        if previous.strip() != config.to_json().strip():
            raise RunDirectoryError(
                f"{run_dir} already holds a run with a different config; choose another "
                f"--model_dir or remove that folder")
    os.makedirs(run_dir, exist_ok=True)
    write_text(saved, config.to_json() + "\n")
    return run_dir


def train(config: TrainConfig, *, verbose="auto"):
    """Trains as `config` says and returns the results dict also written to `results.json`."""
    splits = datasets.load_dataset(
        config.dataset, data_dir=config.data_dir or None, manual_dir=config.manual_dir or None,
        validation_fraction=config.validation_fraction, seed=config.seed)
    info = splits.info
    run_dir = prepare_run_directory(config)
    keras.utils.set_random_seed(config.seed)
    train_ds = datasets.make_dataset(*splits.train, batch_size=config.batch_size, training=True,
                                     augment=info.augment, seed=config.seed)
    val_ds = None
    if splits.validation is not None:
        val_ds = datasets.make_dataset(*splits.validation, batch_size=config.batch_size,
                                       training=False)
    model = build_model(config, info)
    steps_per_epoch = int(train_ds.cardinality())
    model.compile(optimizer=build_optimizer(config, steps_per_epoch))
    resuming = os.path.isdir(os.path.join(run_dir, "backup"))
    monitor = None
    if val_ds is not None:
        robust = config.epsilon > 0 and METHODS[config.method].attack_objective is not None
        monitor = "val_pgd_accuracy" if robust else "val_clean_accuracy"
    callbacks = [
        keras.callbacks.BackupAndRestore(os.path.join(run_dir, "backup")),
        NonFiniteGuard(run_dir),
        WarmupSchedule(config.align_warmup_epochs, config.epsilon_warmup_epochs),
        AtomicCheckpoint(os.path.join(run_dir, "last.keras")),
        *([AtomicCheckpoint(os.path.join(run_dir, "best.keras"), monitor)] if monitor else []),
        keras.callbacks.CSVLogger(os.path.join(run_dir, "history.csv"), append=resuming),
        keras.callbacks.TensorBoard(os.path.join(run_dir, "logs"), write_graph=False),
    ]
    started = time.time()
    history = model.fit(train_ds, validation_data=val_ds, epochs=config.epochs,
                        callbacks=callbacks, shuffle=False, verbose=verbose).history
    train_seconds = time.time() - started
    test_ds = datasets.make_dataset(*splits.test, batch_size=config.batch_size, training=False)
    attack = config.eval_attack(config.eval_attack_steps) if config.epsilon > 0 else None
    test = accuracy_under_pgd(model, test_ds, attack)
    results = {
        "name": config.run_name,
        "dataset": config.dataset,
        "data_source": info.source,
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
    }
    write_text(os.path.join(run_dir, "results.json"), json.dumps(results, indent=2) + "\n")
    return results


def format_results(results):
    """A small Markdown table of the final test accuracy."""
    pgd = results["pgd_accuracy"]
    pgd_text = "n/a (ε = 0)" if pgd is None else f"{100 * pgd:.2f}"
    return "\n".join([
        f"| run | method | data | ε | clean % | {results['attack'].split(' ')[0]} % |",
        "|---|---|---|---|---|---|",
        f"| {results['name']} | {results['method']} | {results['dataset']} "
        f"({results['test_examples']} test) | {results['epsilon']:.4g} | "
        f"{100 * results['clean_accuracy']:.2f} | {pgd_text} |",
    ])
