"""One training run from a `TrainConfig`: data, model, `fit`, final test accuracy, run directory.

`train` runs the stages in order: set up the hardware, load the data, build and compile the
model, then (everything that can fail on the flags or the data having passed) lock and prepare
the run directory, fit from its backup with the run's callbacks, measure the test set, write
results.json and remove the backup.
"""

import dataclasses
import statistics
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
from keras_dpnp.training import callbacks, console, curves, distribute
from keras_dpnp.training.run_dir import (
    EPOCH_SECONDS,
    RunDir,
    fields_of_test_check,
    load_model,
    recorded_checkpoint,
)


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


def _seconds_per_epoch(epochs, train_seconds, epochs_trained):
    """The median of the epochs' wall times in the history (robust to an epoch slowed by
    whatever else shared the machine), else this process's time over the epochs it trained."""
    timed = [row[EPOCH_SECONDS] for row in epochs.values() if EPOCH_SECONDS in row]
    if timed:
        return round(statistics.median(timed), 1)
    return round(train_seconds / max(epochs_trained, 1), 1)


def _final_test(config: TrainConfig, run: RunDir, splits):
    """Test accuracy of the run's model (`RunDir.checkpoint()`), not of the weights in memory;
    None with `--nofinal_test`."""
    if not config.final_test:
        return None
    model = load_model(run.checkpoint())
    test_ds = datasets.make_dataset(*splits.test, batch_size=config.batch_size, training=False)
    attack = config.eval_attack(config.eval_attack_steps) if config.epsilon > 0 else None
    return accuracy_under_pgd(model, test_ds, attack)


def _read_test_of_finished_run(config, run, results, verbose):
    """The test check of a run trained with `--nofinal_test`, now asked for: reads the test
    split once for the run's model; nothing is trained."""
    splits = _load_data(config)
    with run.lock():
        completed = run.add_final_test(results, _final_test(config, run, splits))
    if verbose:
        print(
            f"[train] {run.path} holds this run, finished with the test set unread: "
            "read now, nothing trained",
            flush=True,
        )
    return completed


def devices_text(strategy):
    """The devices and the strategy, in words."""
    gpus = tf.config.list_logical_devices("GPU")
    device = f"{len(gpus)} × GPU" if gpus else f"CPU ({hardware.cpu_model()})"
    replicas = strategy.num_replicas_in_sync
    return (
        f"{device}, {type(strategy).__name__.lstrip('_')} "
        f"({replicas} replica{'s' if replicas > 1 else ''})"
    )


def _run_facts(config, splits, model, strategy, precision_reason, resumed):
    sizes = {"train": len(splits.train[1])}
    if splits.validation is not None:
        sizes["validation"] = len(splits.validation[1])
    sizes["test"] = len(splits.test[1])
    return console.RunFacts(
        parameters=int(model.count_params()),
        split_sizes=sizes,
        data_source=splits.info.source,
        devices=devices_text(strategy),
        precision_reason=precision_reason,
        onednn=distribute.onednn_status(),
        done_epochs=resumed.epoch if resumed else 0,
    )


def _results(config: TrainConfig, info, run: RunDir, checkpoint, test, timing):
    """results.json: the test numbers of the run's model, and its epoch's validation numbers.

    Args:
        checkpoint: `RunDir.checkpoint_entry`, the model the numbers are of.
        timing: (train seconds, epochs trained by this process, precision reason).
    """
    train_seconds, epochs_trained, precision_reason = timing
    epochs = run.logged_epochs()
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
        "checkpoint": checkpoint,
        **fields_of_test_check(test),
        "validation": {
            key[len("val_") :]: value
            for key, value in epochs[checkpoint["epoch"]].items()
            if key.startswith("val_")
        },
        "final_train_logs": {
            key: value
            for key, value in epochs[max(epochs)].items()
            if not key.startswith("val_") and key != "epoch"
        },
        "epochs": config.epochs,
        "train_seconds": round(train_seconds, 1),
        "seconds_per_epoch": _seconds_per_epoch(epochs, train_seconds, epochs_trained),
        "seed": config.seed,
        "precision": config.precision,
        "precision_reason": precision_reason,
        "onednn": distribute.onednn_status(),
    }


def _fit(config: TrainConfig, run: RunDir, model, data: _Data, verbose, resumed):
    """Fits from where the run's backup unit `resumed` left off (None: from epoch 1).

    Returns:
        (seconds, epochs trained): a resumed run trains only the epochs left.
    """
    recorder = callbacks.EpochRecorder(run, _monitor(config, data), resumed)
    initial_epoch = resumed.epoch if resumed else 0
    started = time.time()
    model.fit(
        data.train,
        validation_data=data.validation,
        epochs=config.epochs,
        initial_epoch=initial_epoch,
        callbacks=_callbacks(config, run, model, data, recorder) + [console.ConsoleLog(verbose)],
        shuffle=False,
        verbose=0,
    )
    return time.time() - started, config.epochs - initial_epoch


def train(config: TrainConfig, *, verbose="auto", overwrite=False):
    """Trains as `config` says and returns the results dict also written to `results.json`.

    Rerunning a config whose run directory holds it finished returns its results without
    training; an interrupted one resumes from its last intact backup unit; a run directory
    holding a different config is refused unless `overwrite`, which deletes it only once the
    data have loaded and the model is built. `verbose`: see `console.resolve_verbose`.
    """
    verbose = console.resolve_verbose(verbose)
    # A multi-worker strategy must exist before any other TensorFlow work.
    strategy = distribute.make_strategy(config.strategy)
    distribute.check_global_batch(config.batch_size, strategy)
    precision, precision_reason = distribute.resolve_precision(config.precision)
    # config.json records the precision the run computes in, so `auto` runs stay comparable.
    config = dataclasses.replace(config, precision=precision)
    run = RunDir(config.run_dir)
    finished = run.finished_results(config)
    if finished is not None and config.final_test and finished["clean_accuracy"] is None:
        return _read_test_of_finished_run(config, run, finished, verbose)
    if finished is not None:
        if verbose:
            print(f"[train] {run.path} holds this run, finished: nothing trained", flush=True)
        return finished
    splits = _load_data(config)
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    data = _pipelines(config, splits)
    model = _compiled_model(config, strategy, data)
    with run.lock():
        run.prepare(config, overwrite)
        resumed = run.backup.latest()
        if verbose:
            facts = _run_facts(config, splits, model, strategy, precision_reason, resumed)
            print(console.start_banner(config, facts), flush=True)
        train_seconds, epochs_trained = _fit(config, run, model, data, verbose, resumed)
        checkpoint = run.checkpoint_entry(_monitor(config, data))
        test = _final_test(config, run, splits)
        timing = (train_seconds, epochs_trained, precision_reason)
        results = _results(config, splits.info, run, checkpoint, test, timing)
        run.write_results(results)
        run.remove_backup()
    curves.write_training_curves(run)
    return results


def format_results(results):
    """A small Markdown table of the final test accuracy of the run's model."""
    if results["clean_accuracy"] is None:
        validation = results["validation"]
        return (
            f"{results['name']}: test set not read (--nofinal_test); validation clean "
            f"{100 * validation.get('clean_accuracy', float('nan')):.2f} %, PGD "
            f"{100 * validation.get('pgd_accuracy', float('nan')):.2f} %"
        )
    pgd = results["pgd_accuracy"]
    pgd_text = "n/a (ε = 0)" if pgd is None else f"{100 * pgd:.2f}"
    model = console.checkpoint_text(recorded_checkpoint(results))
    return "\n".join(
        [
            f"| run | model | method | data | ε | clean % | {results['attack'].split(' ')[0]} % |",
            "|---|---|---|---|---|---|---|",
            f"| {results['name']} | {model} | {results['method']} | {results['dataset']} "
            f"({results['test_examples']} test) | {results['epsilon']:.4g} | "
            f"{100 * results['clean_accuracy']:.2f} | {pgd_text} |",
        ]
    )
