"""The typed, frozen training configuration and its command-line flags.

Every field of `TrainConfig` is a flag of the same name (`--epsilon`, `--backbone`, ...). Float
flags also take fractions, so `--epsilon=8/255` works. `TrainConfig` validates itself, so a bad
value fails the same way from the command line and from Python.
"""

import dataclasses
import fractions
import json
import math
import os
import re
import sys

from absl import flags

from keras_dpnp import cli, losses
from keras_dpnp.attacks.pgd import NORMS, STARTS, PGDConfig
from keras_dpnp.backbones import BACKBONES
from keras_dpnp.data import DATASET_FORMS, check_dataset_name, parse_image_size
from keras_dpnp.heads import HEADS, LOGIT_FORMS, PROTOTYPE_INITS
from keras_dpnp.methods import ALIGN_TARGETS, METHODS, LossForm, LossWeights, get_method
from keras_dpnp.training.distribute import PRECISION_CHOICES, STRATEGIES, resolve_precision

OPTIMIZERS = ("sgd", "adam")
# The data options that only some kinds of --dataset read, with the prefixes of those kinds.
_SOURCE_OPTIONS = {
    "tfds_split_train": ("tfds:",),
    "tfds_split_test": ("tfds:",),
    "image_size": ("tfds:", "folder:"),
    "folder_test_fraction": ("folder:",),
    "max_in_memory_mb": ("folder:",),
}
LR_SCHEDULES = ("cosine", "piecewise", "constant")
# Weights whose default is K / r² (r: --radius), so they stay consistent when r changes:
# {field: K}. Their flags take a number or a multiple of 1/r² such as `10/r2`.
PER_RADIUS_SQUARED = {"align_weight": 10.0}
# Fields that name a run without changing what it computes; `matches_saved` ignores them.
RUN_LABEL_FIELDS = ("name", "model_dir")
# Fields that change only what is measured after training: the same run either way, and a
# config asking for more than a run measured completes it (`training/loop.py`).
AFTER_TRAINING_FIELDS = ("final_test",)
_PER_RADIUS_SQUARED_TEXT = re.compile(r"^\s*([0-9.eE+-]+)\s*/\s*r(?:2|²|\^2|\*\*2)\s*$")


# The --help topics of the `TrainConfig` flags, in order; every field is in one.
FLAG_TOPICS = (
    (
        "data",
        (
            "dataset",
            "data_dir",
            "manual_dir",
            "validation_fraction",
            "tfds_split_train",
            "tfds_split_test",
            "image_size",
            "folder_test_fraction",
            "max_in_memory_mb",
        ),
    ),
    (
        "model",
        (
            "backbone",
            "width",
            "feature_dim",
            "feature_activation",
            "head",
            "radius",
            "logits",
            "logit_scale",
            "prototype_init",
            "class_means_epochs",
        ),
    ),
    (
        "method and loss",
        (
            "method",
            "ce_weight",
            "align_weight",
            "repel_weight",
            "margin",
            "separation_weight",
            "separation",
            "beta",
            "adv_ce_weight",
            "align_target",
            "dual_branch",
            "align_warmup_epochs",
        ),
    ),
    (
        "attack",
        (
            "epsilon",
            "attack_step_size",
            "attack_steps",
            "attack_norm",
            "attack_objective",
            "attack_start",
            "epsilon_warmup_epochs",
            "val_attack_steps",
            "eval_attack_steps",
        ),
    ),
    (
        "optimisation",
        ("epochs", "batch_size", "learning_rate", "optimizer", "weight_decay", "lr_schedule"),
    ),
    ("run", ("name", "model_dir", "seed", "deterministic", "final_test")),
    ("hardware", ("strategy", "precision", "sync_batchnorm")),
)


def _field(default, help, choices=None, minimum=None, above=None):
    return dataclasses.field(
        default=default,
        metadata={"help": help, "choices": choices, "minimum": minimum, "above": above},
    )


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; saved as `config.json` in the run directory."""

    name: str = _field(
        "",
        "Run name; default: the flagfile's name with +flag=value for each flag given on top "
        "of it, else the method.",
    )
    # Data.
    dataset: str = _field(
        "digits",
        f"Data set: {', '.join(DATASET_FORMS)} (any TFDS "
        "image-classification set, or a folder with one subfolder of images "
        "per class, optionally inside train/ and test/).",
    )
    data_dir: str = _field("", "Folder of prepared TFDS data (offline use); empty: TFDS default.")
    manual_dir: str = _field("", "Folder holding the original data set archives (offline use).")
    validation_fraction: float = _field(
        0.1,
        "Fraction of the training set held out (stratified, seeded) for validation.",
        minimum=0.0,
    )
    tfds_split_train: str = _field(
        "train",
        "With --dataset=tfds:<name>: the TFDS split trained on; slices work, e.g. train[:90%].",
    )
    tfds_split_test: str = _field(
        "test",
        "With --dataset=tfds:<name>: the TFDS split tested on, e.g. validation or train[90%:].",
    )
    image_size: str = _field(
        "",
        "With tfds: or folder: data: resize every image to SIDE or "
        "HEIGHT,WIDTH pixels; empty: the images' own (common) size.",
    )
    folder_test_fraction: float = _field(
        0.2,
        "With --dataset=folder:<path> that has no test/ folder: the share held out "
        "(stratified, fixed seed 0) as the test set.",
        above=0.0,
    )
    max_in_memory_mb: float = _field(
        4096.0,
        "With --dataset=folder:<path>: a split whose decoded images take more MB is "
        "streamed from disk instead of held in memory.",
        minimum=0.0,
    )
    # Model.
    backbone: str = _field("small_cnn", "Feature extractor.", choices=BACKBONES)
    width: float = _field(
        1.0, "Channel multiplier of small_cnn / resnet18 / preact_resnet18.", above=0.0
    )
    feature_dim: int = _field(
        128, "Feature dimension d of the final projection; 0: none.", minimum=0
    )
    feature_activation: str = _field(
        "none", "Activation after the projection.", choices=("none", "relu")
    )
    head: str = _field("auto", "Classifier head; auto: the method's default.", choices=HEADS)
    radius: float = _field(4.0, "Prototype norm r.", above=0.0)
    logits: str = _field("dot", "Prototype logits.", choices=LOGIT_FORMS)
    logit_scale: float = _field(10.0, "Scale s of cosine logits.", above=0.0)
    prototype_init: str = _field(
        "class_means", "Prototype initialisation.", choices=PROTOTYPE_INITS
    )
    class_means_epochs: int = _field(
        2,
        "With --prototype_init=class_means: epochs after which the prototypes are set to "
        "the directions of the class means of the clean training features.",
        minimum=1,
    )
    # Method and loss.
    method: str = _field("adv_dpnp", "Training method.", choices=tuple(sorted(METHODS)))
    ce_weight: float = _field(LossWeights.ce, "λ_ce: clean cross-entropy.", minimum=0.0)
    align_weight: float = _field(
        None,
        "λ_pa: positive alignment (clean and adv); a number, or a multiple of 1/r² such as "
        "10/r2, which follows --radius (in Python, None means 10/r²).",
        minimum=0.0,
    )
    repel_weight: float = _field(LossWeights.repel, "λ_nr: negative repulsion.", minimum=0.0)
    margin: float = _field(LossWeights.margin, "m: repulsion margin.", minimum=0.0)
    separation_weight: float = _field(
        LossWeights.separation, "λ_sep: prototype separation.", minimum=0.0
    )
    separation: str = _field(
        LossForm.separation, "Separation term form.", choices=losses.SEPARATION_FORMS
    )
    beta: float = _field(LossWeights.beta, "β: clean/adversarial consistency KL.", minimum=0.0)
    adv_ce_weight: float = _field(
        LossWeights.adv_ce, "λ_adv: adversarial cross-entropy.", minimum=0.0
    )
    align_target: str = _field(
        LossForm.align_target,
        "What alignment moves: both features and prototypes, or features.",
        choices=ALIGN_TARGETS,
    )
    dual_branch: bool = _field(True, "Keep adversarial terms away from the prototypes.")
    align_warmup_epochs: int = _field(
        0, "Epochs over which λ_pa ramps up linearly from 0.", minimum=0
    )
    # Training attack.
    epsilon: float = _field(8 / 255, "Attack radius ε (pixel scale [0, 1]).", minimum=0.0)
    attack_step_size: float = _field(2 / 255, "Attack step size (pixel scale).", above=0.0)
    attack_steps: int = _field(10, "Attack steps.", minimum=1)
    attack_norm: str = _field("linf", "Attack norm.", choices=NORMS)
    attack_objective: str = _field(
        "auto", "Training attack objective; auto: the method's.", choices=("auto", "kl", "ce")
    )
    attack_start: str = _field(
        "uniform",
        "Training attack's random start: uniform in the ε-ball, or small_normal, 0.001·N(0, 1) "
        "around the image (Zhang et al.'s TRADES code).",
        choices=STARTS,
    )
    epsilon_warmup_epochs: int = _field(0, "Epochs over which ε ramps up linearly.", minimum=0)
    # Evaluation.
    val_attack_steps: int = _field(
        10, "PGD steps for the per-epoch validation accuracy.", minimum=1
    )
    eval_attack_steps: int = _field(20, "PGD steps for the final test accuracy.", minimum=1)
    final_test: bool = _field(
        True,
        "Measure the test set after training; false keeps it "
        "unread (choosing a configuration on validation only; a later run of the same "
        "config without this flag reads it then, nothing retrained).",
    )
    # Optimisation.
    epochs: int = _field(60, "Training epochs.", minimum=1)
    batch_size: int = _field(128, "Global batch size.", minimum=1)
    learning_rate: float = _field(0.1, "Peak learning rate.", above=0.0)
    optimizer: str = _field("sgd", "Optimizer (sgd: momentum 0.9, Nesterov).", choices=OPTIMIZERS)
    weight_decay: float = _field(5e-4, "Decoupled weight decay (never on prototypes).", minimum=0.0)
    lr_schedule: str = _field(
        "cosine", "Learning-rate schedule (piecewise: ÷10 at 50%, 75%).", choices=LR_SCHEDULES
    )
    seed: int = _field(0, "Seed of weights, data order, augmentation and attacks.", minimum=0)
    deterministic: bool = _field(
        False,
        "Deterministic TensorFlow ops: a rerun, or a run resumed after a crash, ends "
        "with bit-identical weights (slower).",
    )
    model_dir: str = _field("", "Run directory; default: runs/<name> under the current folder.")
    # Hardware.
    strategy: str = _field(
        "auto",
        "tf.distribute strategy; auto: mirrored on several GPUs, else "
        "one device; multi_worker reads TF_CONFIG.",
        choices=STRATEGIES,
    )
    precision: str = _field(
        "auto",
        "Keras dtype policy; auto: mixed_bfloat16 where the hardware computes bfloat16 "
        "natively (AMX or AVX-512-BF16 CPUs, GPUs of compute capability >= 8.0), else float32. "
        "Mixed policies keep the attack's perturbation, the head, logits and losses in float32.",
        choices=PRECISION_CHOICES,
    )
    sync_batchnorm: bool = _field(False, "BatchNorm statistics over all replicas' batches.")

    def __post_init__(self):
        for name, factor in PER_RADIUS_SQUARED.items():
            # A radius <= 0 is refused below, before the loop reaches these fields.
            if getattr(self, name) is None and self.radius > 0:
                object.__setattr__(self, name, factor / self.radius**2)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            meta = f.metadata
            if meta["choices"] and value not in meta["choices"]:
                raise ValueError(f"--{f.name}={value!r} is not one of {list(meta['choices'])}")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"--{f.name} must be a finite number, got {value}")
            if meta["minimum"] is not None and value < meta["minimum"]:
                raise ValueError(f"--{f.name} must be >= {meta['minimum']}, got {value}")
            if meta["above"] is not None and value <= meta["above"]:
                raise ValueError(f"--{f.name} must be > {meta['above']}, got {value}")
        if self.validation_fraction >= 1:
            raise ValueError(f"--validation_fraction must be < 1, got {self.validation_fraction}")
        self._check_data_source()
        get_method(self.method).head_for(self.head)

    def _check_data_source(self):
        """Raises ValueError for a bad --dataset, --image_size or test fraction, or for a data
        option that the chosen kind of data set does not read."""
        check_dataset_name(self.dataset)
        parse_image_size(self.image_size)
        if self.folder_test_fraction >= 1:
            raise ValueError(f"--folder_test_fraction must be < 1, got {self.folder_test_fraction}")
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for name, prefixes in _SOURCE_OPTIONS.items():
            if getattr(self, name) != defaults[name] and not self.dataset.startswith(prefixes):
                kinds = " or ".join(f"--dataset={prefix}..." for prefix in prefixes)
                raise ValueError(
                    f"--{name} applies only to {kinds}; drop it for --dataset={self.dataset}"
                )

    def data_options(self):
        """The keyword arguments of `keras_dpnp.data.load_dataset` this config sets (all but
        the validation split)."""
        return {
            "data_dir": self.data_dir or None,
            "manual_dir": self.manual_dir or None,
            "tfds_split_train": self.tfds_split_train,
            "tfds_split_test": self.tfds_split_test,
            "image_size": parse_image_size(self.image_size),
            "folder_test_fraction": self.folder_test_fraction,
            "max_in_memory_mb": self.max_in_memory_mb,
        }

    @property
    def run_name(self):
        return self.name or self.method

    @property
    def run_dir(self):
        return self.model_dir or os.path.join("runs", self.run_name)

    def loss_weights(self):
        return LossWeights(
            ce=self.ce_weight,
            align=self.align_weight,
            repel=self.repel_weight,
            margin=self.margin,
            separation=self.separation_weight,
            beta=self.beta,
            adv_ce=self.adv_ce_weight,
        )

    def loss_form(self):
        return LossForm(
            separation=self.separation, align_target=self.align_target, dual_branch=self.dual_branch
        )

    def train_attack(self):
        """The training attack; `--attack_objective=auto` takes the method's own objective."""
        return get_method(self.method).training_attack(
            self.attack_objective,
            epsilon=self.epsilon,
            step_size=self.attack_step_size,
            steps=self.attack_steps,
            norm=self.attack_norm,
            start=self.attack_start,
        )

    def eval_attack(self, steps):
        """PGD with the CE objective at the training ε and step, for reported accuracy."""
        return PGDConfig(
            epsilon=self.epsilon,
            step_size=self.attack_step_size,
            steps=steps,
            norm=self.attack_norm,
            objective="ce",
        )

    def with_overrides(self, overrides):
        """A copy with fields replaced from strings, as on the command line: {'beta': '3'}."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        unknown = [key for key in overrides if key not in fields]
        if unknown:
            raise ValueError(
                f"unknown flag --{unknown[0]} in override {unknown[0]}={overrides[unknown[0]]}"
            )
        values = {
            key: parse_value(fields[key].type, key, text)
            for key, text in overrides.items()
            if key not in PER_RADIUS_SQUARED
        }
        radius = values.get("radius", self.radius)
        for key, factor in PER_RADIUS_SQUARED.items():
            if key in overrides:
                values[key] = parse_per_radius_squared(key, overrides[key], radius)
            elif radius > 0 and getattr(self, key) == factor / self.radius**2:
                values[key] = factor / radius**2  # a weight at its default follows r
        return dataclasses.replace(self, **values)

    def to_dict(self):
        """The flat {flag name: value} dict that config.json holds."""
        return dataclasses.asdict(self)

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def with_resolved_precision(self):
        """A copy whose `precision` is what `auto` resolves to on this machine."""
        return dataclasses.replace(self, precision=resolve_precision(self.precision)[0])

    def matches_saved(self, text):
        """Whether a saved `config.json` describes this same run.

        Fields added to `TrainConfig` after that file was written take their defaults, which
        keep the earlier behaviour, so an older run still counts as the same run. Precisions are
        compared as resolved here: a run saved as float32 matches `auto` where auto picks float32.
        The folder is the run, so the fields that only name it (`RUN_LABEL_FIELDS`: how its
        path was spelt, the name a flagfile or a comparison gave it) are not compared: two study
        configs that share a run reuse it. Nor is what is measured after training
        (`AFTER_TRAINING_FIELDS`): a run trained with `--nofinal_test` is the same run.
        """
        try:
            saved = TrainConfig.from_json(text)
        except (ValueError, TypeError):
            return False
        ignored = RUN_LABEL_FIELDS + AFTER_TRAINING_FIELDS
        saved = dataclasses.replace(saved, **{field: getattr(self, field) for field in ignored})
        return saved.with_resolved_precision() == self.with_resolved_precision()

    @classmethod
    def from_json(cls, text):
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, values):
        """The config of a flat dict such as `to_dict` gives; absent keys take defaults."""
        if not isinstance(values, dict):
            raise ValueError(f"a config must be a JSON object, got {type(values).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; known: {sorted(known)}")
        _check_value_types(cls, values)
        return cls(**values)


def _check_value_types(cls, values):
    """Raises ValueError naming the first value whose JSON type is not its field's."""
    for f in dataclasses.fields(cls):
        if f.name not in values:
            continue
        value = values[f.name]
        allowed = (int, float) if f.type is float else (f.type,)
        # JSON's true/false are Python bools, which are also ints.
        if not isinstance(value, allowed) or (isinstance(value, bool) and f.type is not bool):
            raise ValueError(f"{f.name} must be of type {f.type.__name__}, got {value!r}")


def readable_number(value):
    """`value` as a person writes it: 0.1, 0.0005, or 8/255 rather than 0.03137254901960784."""
    text = f"{value:g}"
    if float(text) == value:
        return text
    fraction = fractions.Fraction(value).limit_denominator(1000)
    if float(fraction) == value:
        return f"{fraction.numerator}/{fraction.denominator}"
    return f"{value:.4g}"


def parse_per_radius_squared(name, text, radius):
    """The value of a `PER_RADIUS_SQUARED` flag: a number, or `K/r2` (also K/r², K/r^2) at
    prototype norm `radius`."""
    match = _PER_RADIUS_SQUARED_TEXT.match(str(text))
    if match is None:
        return parse_value(float, name, str(text))
    if not radius > 0:
        raise ValueError(f"--radius must be > 0 (--{name}={text} divides by r²), got {radius}")
    return parse_value(float, name, match.group(1)) / radius**2


def parse_value(kind, name, text):
    """Converts a flag's text to its field type (floats take fractions such as 8/255)."""
    try:
        if kind is bool:
            lowered = text.strip().lower()
            if lowered not in ("true", "false", "1", "0"):
                raise ValueError(f"expected true or false, got {text!r}")
            return lowered in ("true", "1")
        if kind is float:
            return cli.parse_number(text)
        return kind(text)
    except ValueError as error:
        raise ValueError(f"--{name}={text}: {error}") from error


def define_flags(flag_values=flags.FLAGS):
    """Defines one flag per `TrainConfig` field (idempotent)."""
    for f in dataclasses.fields(TrainConfig):
        if f.name in flag_values:
            continue
        meta = f.metadata
        help_text = meta["help"]
        if f.name in PER_RADIUS_SQUARED:
            default = f"{PER_RADIUS_SQUARED[f.name]:g}/r2"
            flags.DEFINE_string(f.name, default, help_text, flag_values=flag_values)
        elif f.type in (float, "float"):
            cli.define_number(
                f.name, f.default, help_text, lower_bound=meta["minimum"], flag_values=flag_values
            )
        elif meta["choices"]:
            flags.DEFINE_enum(
                f.name, f.default, list(meta["choices"]), help_text, flag_values=flag_values
            )
        elif f.type in (bool, "bool"):
            flags.DEFINE_bool(f.name, f.default, help_text, flag_values=flag_values)
        elif f.type in (int, "int"):
            flags.DEFINE_integer(
                f.name, f.default, help_text, lower_bound=meta["minimum"], flag_values=flag_values
            )
        else:
            flags.DEFINE_string(f.name, f.default, help_text, flag_values=flag_values)


def flagfile_name(argv):
    """The base name of the last `--flagfile` in `argv`, or ''."""
    files = [arg.split("=", 1)[1] for arg in argv if arg.startswith("--flagfile=")]
    return os.path.splitext(os.path.basename(files[-1]))[0] if files else ""


def command_line_overrides(argv, flag_values=flags.FLAGS):
    """{field: parsed value} of the `TrainConfig` flags given in `argv` itself, in order (a
    flagfile's lines are not in `argv` before absl expands it)."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    given = []
    for arg in argv[1:]:
        name = arg[2:].split("=", 1)[0] if arg.startswith("--") else ""
        if name not in fields and name.startswith("no") and name[2:] in fields:
            name = name[2:]
        if name in fields and name not in given:
            given.append(name)
    return {name: flag_values[name].value for name in given}


def _name_part(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).lower() if isinstance(value, bool) else str(value).replace("/", "_")


def default_run_name(argv, flag_values=flags.FLAGS):
    """The run name when --name is not given: the flagfile's name, followed by `+flag=value` for
    each flag the command line sets on top of it, so such a run gets its own run directory
    (none is added when --model_dir names the folder); '' without a flagfile."""
    name = flagfile_name(argv)
    overrides = command_line_overrides(argv, flag_values)
    if not name or "model_dir" in overrides:
        return name
    return name + "".join(f"+{key}={_name_part(value)}" for key, value in overrides.items())


def config_from_flags(flag_values=flags.FLAGS, argv=None):
    """The `TrainConfig` the parsed flags describe; the run name defaults to
    `default_run_name`."""
    argv = sys.argv if argv is None else argv
    values = {f.name: flag_values[f.name].value for f in dataclasses.fields(TrainConfig)}
    values["name"] = values["name"] or default_run_name(argv, flag_values)
    for name in PER_RADIUS_SQUARED:
        values[name] = parse_per_radius_squared(name, values[name], values["radius"])
    return TrainConfig(**values)
