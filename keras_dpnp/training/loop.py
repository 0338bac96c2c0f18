"""One training run from a `TrainConfig`: data, model, `fit`, final test accuracy, run directory.

`train` runs the stages in order: set up the hardware, load the data, build and compile the
model, then (everything that can fail on the flags or the data having passed) lock and prepare
the run directory, fit from its backup with the run's callbacks, measure the test set, write
results.json and remove the backup.
"""

import dataclasses
import time

import keras
import tensorflow as tf

from keras_dpnp import data as datasets
from keras_dpnp import hardware
from keras_dpnp.backbones import build_backbone
from keras_dpnp.config import TrainConfig
from keras_dpnp.evaluation.accuracy import accuracy_under_pgd
from keras_dpnp.methods import METHODS
from keras_dpnp.model import AdvDPNP
from keras_dpnp.training import callbacks, distribute
from keras_dpnp.training.run_dir import RunDir


def build_model(config: TrainConfig, info) -> AdvDPNP:
    """The model a config describes, for a data set with `info` (`DatasetInfo`)."""
    backbone_options = {"width": config.width} if config.width != 1.0 else {}
    backbone = build_backbone(
        config.backbone,
        info.image_shape,
        mean=info.mean,
        std=info.std,
        feature_dim=config.feature_dim or None,
        feature_activation=None if config.feature_activation == "none" else "relu",
        sync_batchnorm=config.sync_batchnorm,
        **backbone_options,
    )
    return AdvDPNP(
        backbone,
        info.num_classes,
        head=config.head,
        radius=config.radius,
        logits=config.logits,
        logit_scale=config.logit_scale,
        prototype_init=config.prototype_init,
        method=config.method,
        loss_weights=config.loss_weights(),
        loss_form=config.loss_form(),
        attack=config.train_attack(),
        eval_attack=config.eval_attack(config.val_attack_steps) if config.epsilon > 0 else None,
        align_warmup_epochs=config.align_warmup_epochs,
        epsilon_warmup_epochs=config.epsilon_warmup_epochs,
        seed=config.seed,
    )


def build_optimizer(config: TrainConfig, steps_per_epoch: int):
    total = config.epochs * steps_per_epoch
    if config.lr_schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(config.learning_rate, total)
    elif config.lr_schedule == "piecewise":
        rate = keras.optimizers.schedules.PiecewiseConstantDecay(
            [total // 2, (3 * total) // 4],
            [config.learning_rate, config.learning_rate / 10, config.learning_rate / 100],
        )
    else:
        rate = config.learning_rate
    if config.optimizer == "adam":
        return keras.optimizers.AdamW(rate, weight_decay=config.weight_decay or None)
    return keras.optimizers.SGD(
        rate, momentum=0.9, nesterov=True, weight_decay=config.weight_decay or None
    )


@dataclasses.dataclass(frozen=True)
class _Data:
    """The run's splits and its training and validation pipelines."""

    splits: object
    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    epoch_counter: tf.Variable


def _load_data(config: TrainConfig):
    splits = datasets.load_dataset(
        config.dataset,
        **config.data_options(),
        validation_fraction=config.validation_fraction,
        seed=config.seed,
    )
    if len(splits.train[1]) < config.batch_size:
        raise ValueError(
            f"--batch_size={config.batch_size} is larger than the "
            f"{len(splits.train[1])} training examples; lower it"
        )
    return splits


def _pipelines(config: TrainConfig, splits):
    epoch_counter = tf.Variable(-1, dtype=tf.int64, trainable=False)
    train_ds = distribute.shard_by_example(
        datasets.make_dataset(
            *splits.train,
            batch_size=config.batch_size,
            training=True,
            augment=splits.info.augment,
            seed=config.seed,
            epoch_counter=epoch_counter,
        )
    )
    val_ds = None
    if splits.validation is not None:
        val_ds = distribute.shard_by_example(
            datasets.make_dataset(*splits.validation, batch_size=config.batch_size, training=False)
        )
    return _Data(splits, train_ds, val_ds, epoch_counter)


def _compiled_model(config: TrainConfig, strategy, data: _Data):
    with strategy.scope(), distribute.precision_policy(config.precision):
        model = build_model(config, data.splits.info)
    with strategy.scope():
        model.compile(optimizer=build_optimizer(config, int(data.train.cardinality())))
    return model


def _monitor(config: TrainConfig, data: _Data):
    """The validation accuracy that picks best.keras (None without validation)."""
    if data.validation is None:
        return None
    robust = config.epsilon > 0 and METHODS[config.method].attack_objective is not None
    return "val_pgd_accuracy" if robust else "val_clean_accuracy"


def _callbacks(config: TrainConfig, run: RunDir, model, data: _Data, recorder):
    found = [
        callbacks.EpochKeyedData(data.epoch_counter),
        callbacks.NonFiniteGuard(run.path),
        callbacks.EpochSchedules(),
    ]
    if config.prototype_init == "class_means" and model.head_kind == "prototype":
        clean_train = datasets.make_dataset(
            *data.splits.train, batch_size=config.batch_size, training=False
        )
        found.append(callbacks.ClassMeanPrototypes(clean_train, config.class_means_epochs))
    return found + [recorder, keras.callbacks.TensorBoard(run.logs_dir, write_graph=False)]


def _final_test(config: TrainConfig, model, splits):
    if not config.final_test:
        return {"examples": 0, "clean_accuracy": None, "robust_accuracy": None}
    test_ds = datasets.make_dataset(*splits.test, batch_size=config.batch_size, training=False)
    attack = config.eval_attack(config.eval_attack_steps) if config.epsilon > 0 else None
    return accuracy_under_pgd(model, test_ds, attack)


def run_banner(config: TrainConfig, precision_reason):
    """One line: the run, where it computes, its precision and why, and oneDNN's state."""
    return (
        f"[train] {config.run_name}: {config.method} on {config.dataset}, precision "
        f"{config.precision} ({precision_reason}), oneDNN {distribute.onednn_status()}, "
        f"{hardware.cpu_model()}"
    )


def _results(config: TrainConfig, info, history, test, train_seconds, precision_reason):
    return {
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
        "validation": {
            key[len("val_") :]: values[-1]
            for key, values in history.items()
            if key.startswith("val_")
        },
        "final_train_logs": {
            key: values[-1] for key, values in history.items() if not key.startswith("val_")
        },
        "epochs": config.epochs,
        "train_seconds": round(train_seconds, 1),
        "seed": config.seed,
        "precision": config.precision,
        "precision_reason": precision_reason,
        "onednn": distribute.onednn_status(),
    }


def _fit(config: TrainConfig, run: RunDir, model, data: _Data, verbose):
    """Fits from where the run's backup left off; returns the rows of every epoch's logs."""
    resumed = run.backup.latest()
    recorder = callbacks.EpochRecorder(run, _monitor(config, data), resumed)
    model.fit(
        data.train,
        validation_data=data.validation,
        epochs=config.epochs,
        initial_epoch=resumed.epoch if resumed else 0,
        callbacks=_callbacks(config, run, model, data, recorder),
        shuffle=False,
        verbose=verbose,
    )
    return recorder.state.history


def _columns(rows):
    """{log name: [value per epoch]} of history rows."""
    return {name: [row[name] for row in rows] for name in rows[-1] if name != "epoch"}


def train(config: TrainConfig, *, verbose="auto", overwrite=False):
    """Trains as `config` says and returns the results dict also written to `results.json`.

    Rerunning a config whose run directory exists resumes from its last intact backup unit; a
    run directory holding a different config is refused unless `overwrite`, which deletes it
    only once the data have loaded and the model is built.
    """
    # A multi-worker strategy must exist before any other TensorFlow work.
    strategy = distribute.make_strategy(config.strategy)
    distribute.check_global_batch(config.batch_size, strategy)
    precision, precision_reason = distribute.resolve_precision(config.precision)
    # config.json records the precision the run computes in, so `auto` runs stay comparable.
    config = dataclasses.replace(config, precision=precision)
    if verbose:
        print(run_banner(config, precision_reason), flush=True)
    splits = _load_data(config)
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    data = _pipelines(config, splits)
    model = _compiled_model(config, strategy, data)
    run = RunDir(config.run_dir)
    with run.lock():
        run.prepare(config, overwrite)
        started = time.time()
        history = _columns(_fit(config, run, model, data, verbose))
        train_seconds = time.time() - started
        test = _final_test(config, model, splits)
        results = _results(config, splits.info, history, test, train_seconds, precision_reason)
        run.write_results(results)
        run.remove_backup()
    return results


def format_results(results):
    """A small Markdown table of the final test accuracy."""
    if results["clean_accuracy"] is None:
        validation = results["validation"]
        return (
            f"{results['name']}: test set not read (--nofinal_test); validation clean "
            f"{100 * validation.get('clean_accuracy', float('nan')):.2f} %, PGD "
            f"{100 * validation.get('pgd_accuracy', float('nan')):.2f} %"
        )
    pgd = results["pgd_accuracy"]
    pgd_text = "n/a (ε = 0)" if pgd is None else f"{100 * pgd:.2f}"
    return "\n".join(
        [
            f"| run | method | data | ε | clean % | {results['attack'].split(' ')[0]} % |",
            "|---|---|---|---|---|---|",
            f"| {results['name']} | {results['method']} | {results['dataset']} "
            f"({results['test_examples']} test) | {results['epsilon']:.4g} | "
            f"{100 * results['clean_accuracy']:.2f} | {pgd_text} |",
        ]
    )
