"""What a training run prints: the start banner, one progress line or bar per epoch, the end
summary with the commands to run next.

The console shows a short fixed set of numbers (`SHORT_LOGS` and the epoch's seconds); every
logged term still goes to history.csv and TensorBoard.
"""

import dataclasses
import sys
import time

import keras

from keras_dpnp.config import readable_number
from keras_dpnp.training.run_dir import recorded_checkpoint

# (log key, label) of the numbers an epoch line shows, in order.
SHORT_LOGS = (
    ("loss", "loss"),
    ("accuracy", "acc"),
    ("adv_accuracy", "adv acc"),
    ("val_clean_accuracy", "val clean"),
    ("val_pgd_accuracy", "val PGD"),
)
VERBOSE_CHOICES = (0, 1, 2)
NORM_NAMES = {"linf": "L∞", "l2": "L2"}


def resolve_verbose(verbose, stream=None):
    """Keras's `verbose` (0 silent, 1 progress bar, 2 one line per epoch); None or 'auto': a bar
    on a terminal, else one line per epoch."""
    if verbose in (None, "auto"):
        stream = sys.stdout if stream is None else stream
        return 1 if stream.isatty() else 2
    if verbose not in VERBOSE_CHOICES:
        raise ValueError(f"--verbose must be one of {list(VERBOSE_CHOICES)}, got {verbose!r}")
    return verbose


def _number(key, value):
    return f"{100 * value:.1f} %" if key.endswith("accuracy") else f"{value:.3f}"


def epoch_line(epoch, epochs, logs, seconds):
    """One line: the epoch, `SHORT_LOGS` that `logs` holds, the epoch's seconds."""
    shown = [f"{label} {_number(key, logs[key])}" for key, label in SHORT_LOGS if key in logs]
    return f"epoch {epoch + 1:>{len(str(epochs))}}/{epochs}: " + ", ".join(
        shown + [f"{seconds:.1f} s"]
    )


class ConsoleLog(keras.callbacks.Callback):
    """Prints each epoch as `epoch_line` (verbose 2) or as a progress bar of `SHORT_LOGS`
    (verbose 1); `fit` itself runs with verbose=0."""

    def __init__(self, verbose, print_fn=print):
        super().__init__()
        self.verbose = verbose
        self.print_fn = print_fn
        self.started = 0.0
        self.bar = None

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.time()
        if self.verbose == 1:
            self.print_fn(f"epoch {epoch + 1}/{self.params['epochs']}")
            self.bar = keras.utils.Progbar(self.params["steps"], stateful_metrics=dict(SHORT_LOGS))

    def on_train_batch_end(self, batch, logs=None):
        if self.bar is not None:
            self.bar.update(batch + 1, _short(logs))

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.time() - self.started
        if self.verbose == 2:
            self.print_fn(epoch_line(epoch, self.params["epochs"], logs or {}, seconds), flush=True)
        elif self.bar is not None:
            self.bar.update(self.params["steps"], _short(logs), finalize=True)


def _short(logs):
    return [(key, float(logs[key])) for key, _ in SHORT_LOGS if key in (logs or {})]


@dataclasses.dataclass(frozen=True)
class RunFacts:
    """What the start banner reports beyond the config.

    Args:
        parameters: the model's parameter count.
        split_sizes: {split name: examples}, validation absent without it.
        data_source: where the data came from (`DatasetInfo.source`).
        devices: the devices and the strategy, in words.
        precision_reason: why the run computes in its precision.
        onednn: oneDNN's state (`distribute.onednn_status`).
        done_epochs: epochs an interrupted run already trained (0: a new run).
    """

    parameters: int
    split_sizes: dict
    data_source: str
    devices: str
    precision_reason: str
    onednn: str
    done_epochs: int


def _attack_text(config):
    if config.epsilon == 0:
        return "ε = 0 (no attack)"
    attack = config.train_attack()
    start = "" if attack.start == "uniform" else f", {attack.start.replace('_', '-')} start"
    return (
        f"{NORM_NAMES[config.attack_norm]} ε = {readable_number(config.epsilon)}, training "
        f"PGD-{attack.steps} ({attack.objective}, step {readable_number(attack.step_size)}"
        f"{start}); validation PGD-{config.val_attack_steps}, "
        + (f"test PGD-{config.eval_attack_steps}" if config.final_test else "test set unread")
    )


def start_banner(config, facts: RunFacts):
    """The lines printed before training: what is trained, on what, where, and into which run
    directory (and from which epoch a resumed run continues)."""
    sizes = " / ".join(f"{count:,} {name}" for name, count in facts.split_sizes.items())
    state = (
        f"resumed after epoch {facts.done_epochs} of {config.epochs}"
        if facts.done_epochs
        else "new run"
    )
    return "\n".join(
        [
            f"[train] {config.run_name}: {config.method}, {config.backbone} "
            f"({facts.parameters:,} parameters), {config.epochs} epochs",
            f"  data       {config.dataset}: {sizes} ({facts.data_source})",
            f"  attack     {_attack_text(config)}",
            f"  devices    {facts.devices}; oneDNN {facts.onednn}",
            f"  precision  {config.precision} ({facts.precision_reason})",
            f"  run dir    {config.run_dir} ({state})",
        ]
    )


def _duration(seconds):
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def _percent(value):
    return "n/a" if value is None else f"{100 * value:.2f} %"


def checkpoint_text(checkpoint):
    """'best.keras (epoch 37)' from results.json's `checkpoint` entry."""
    return f"{checkpoint['file']} (epoch {checkpoint['epoch']})"


def next_commands(run_dir, run_name):
    """The evaluation and export commands of a finished run, as a user types them."""
    export_dir = "exports/" + run_name.replace("/", "_")
    return [
        f"python -m keras_dpnp.evaluate --model={run_dir}",
        f"python -m keras_dpnp.export --model={run_dir} --out={export_dir}",
    ]


def end_summary(results, run_dir):
    """The lines after the results table: which checkpoint the numbers are of, validation and
    test numbers, the wall time, and what to run next."""
    checkpoint = recorded_checkpoint(results)
    chosen = f", best {checkpoint['chosen_by']}" if checkpoint.get("chosen_by") else ""
    validation = results["validation"]
    test = (
        f"test clean {_percent(results['clean_accuracy'])}, "
        f"{results['attack'].split(' ')[0]} {_percent(results['pgd_accuracy'])}"
        if results["test_examples"]
        else "test set not read (--nofinal_test)"
    )
    return "\n".join(
        [
            f"[train] model of the run: {checkpoint_text(checkpoint)} of {results['epochs']}"
            f"{chosen}; training took {_duration(results['train_seconds'])}",
            f"  validation clean {_percent(validation.get('clean_accuracy'))}, PGD "
            f"{_percent(validation.get('pgd_accuracy'))}; {test}",
            "  next:",
            *(f"    {command}" for command in next_commands(run_dir, results["name"])),
        ]
    )
