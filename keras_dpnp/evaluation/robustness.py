"""The robustness suite (SPEC §5): named parts run in order over one fixed set of test points.

A suite is a `SuiteSpec` listing part names; each part is a function of the running
`Evaluation` that adds its entry to `evaluation.results`. A new part (corruptions, feature
geometry) is a function registered in `PARTS` and its name added to a suite's `parts`.
"""

import dataclasses
import functools
import math
import sys
import time
import zlib

import keras
import numpy as np
import tensorflow as tf

from keras_dpnp.attacks import cleverhans_attacks, cw
from keras_dpnp.attacks.autoattack import autoattack
from keras_dpnp.attacks.autoattack_progress import ProgressFile
from keras_dpnp.attacks.pgd import NORMS, PGDConfig, pgd
from keras_dpnp.attacks.square import square
from keras_dpnp.data.image_files import ImageFiles
from keras_dpnp.evaluation import corruptions, diagnostics, geometry
from keras_dpnp.evaluation.accuracy import predicted_classes
from keras_dpnp.model import inference_function

PGD_STEPS = 20
CW_LINF_STEPS = 30
STRONG_PGD_STEPS = 100
STRENGTH_RESTARTS = 5
SQUARE_POINTS = 100
# AutoAttack's subset is drawn with its own seed, not the attacks' `seed`, so that runs
# evaluated with different seeds are attacked on the same test points.
AUTOATTACK_SUBSET_SEED = 0


@dataclasses.dataclass(frozen=True)
class SuiteSpec:
    """The parts a suite runs, the ε multiples of its sweep, and its CW-L2 subset (None: all)."""

    parts: tuple[str, ...]
    sweep_multiples: tuple[float, ...]
    cw_l2_points: int | None = None


_QUICK_PARTS = ("clean", "fgsm", "pgd", "cw_linf", "epsilon_sweep", "pgd_strength", "gradients")
_STANDARD_PARTS = (
    "clean",
    "fgsm",
    "pgd",
    "cw_linf",
    "autoattack",
    "cw_l2",
    "square",
    "epsilon_sweep",
    "pgd_strength",
    "gradients",
)

SUITES = {
    # The columns of a method comparison: the published attacks, without the sweeps.
    "headline": SuiteSpec(
        ("clean", "fgsm", "pgd", "cw_linf", "autoattack", "gradients", "diagnostics"), ()
    ),
    "quick": SuiteSpec(_QUICK_PARTS + ("diagnostics",), (0.5, 1.0, 2.0)),
    "standard": SuiteSpec(
        _STANDARD_PARTS + ("diagnostics",), (0.25, 0.5, 1.0, 1.5, 2.0, 3.0), cw_l2_points=100
    ),
    "full": SuiteSpec(
        _STANDARD_PARTS + ("corruptions", "geometry", "diagnostics"),
        (0.125, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0),
    ),
    # The paper's claims beyond attacks, to add to a run's headline report (see run_report).
    "corruptions_geometry": SuiteSpec(("clean", "corruptions", "geometry"), ()),
}


def report_suites(report):
    """The suites a robustness report ran: one, or several joined by ` + ` (see run_report)."""
    return tuple(name for name in report.get("suite", "").split(" + ") if name)


def report_parts(report):
    """The parts a robustness report holds: its `parts`, else those of its suite (a report
    written before reports named their parts)."""
    if "parts" in report:
        return tuple(report["parts"])
    suites = [SUITES[name] for name in report_suites(report) if name in SUITES]
    return tuple(part for spec in suites for part in spec.parts)


def report_answers(report, suite):
    """Whether `report` holds what `suite` measures: it ran that suite, or it holds every part
    of a suite whose parts take no settings from it (no ε sweep, no CW-L2 subset), such as the
    headline suite inside a full report."""
    if suite in report_suites(report):
        return True
    spec = SUITES[suite]
    free_of_settings = not spec.sweep_multiples and "cw_l2" not in spec.parts
    return free_of_settings and set(spec.parts) <= set(report_parts(report))


def attack_seed(seed, attack):
    """The seed of the random starts of the attack named `attack`: drawn from the suite's seed
    and the name alone, so an attack's draws do not depend on which parts ran before it."""
    return (seed * 1_000_003 + zlib.crc32(attack.encode())) % 2**31


def large_epsilon(norm, image_shape):
    """The radius within which every image in [0, 1] reaches the uniform mid-grey image, so no
    honest classifier stays robust there: 0.5 (L∞) or 0.5·√(pixels) (L2)."""
    if norm == "linf":
        return 0.5
    return 0.5 * math.sqrt(float(np.prod(image_shape)))


def attack_logits_fn(model):
    """The function every attack of the suite calls: images -> `model`'s float32 logits in
    inference mode (BatchNorms folded for our models, see `inference_function`)."""
    forward = inference_function(model)

    def logits_fn(images):
        # The zero term keeps the input gradient connected: a model whose graph cuts it
        # (tf.round) then reads as "gradient exactly zero" instead of crashing the attacks.
        return tf.cast(forward(images), tf.float32) + 0.0 * tf.reduce_sum(images)

    return logits_fn


@dataclasses.dataclass
class Evaluation:
    """The state the parts share: the model, the points, the attack settings, the results."""

    model: keras.Model
    images: np.ndarray
    labels: np.ndarray
    epsilon: float
    norm: str
    step_size: float
    restarts: int
    seed: int
    batch_size: int
    progress: bool
    spec: SuiteSpec
    autoattack_points: int | None = None
    autoattack_workers: int = 1
    autoattack_progress: ProgressFile | None = None
    results: dict = dataclasses.field(default_factory=dict)
    correct: dict = dataclasses.field(default_factory=dict)
    subset_correct: dict = dataclasses.field(default_factory=dict)
    test_indices: np.ndarray | None = None
    corruption_settings: corruptions.CorruptionSettings = dataclasses.field(
        default_factory=corruptions.CorruptionSettings
    )

    def __post_init__(self):
        self.logits_fn = attack_logits_fn(self.model)
        self.logits = tf.function(self.logits_fn, reduce_retracing=True)
        self._crafters = {}

    def reseed(self, generator, attack):
        """Sets the keras `generator` back to the first draw of `attack`'s own seed."""
        state = [attack_seed(self.seed, attack), 0]
        generator.state.assign(tf.constant(state, generator.state.dtype))

    def log(self, message):
        if self.progress:
            print(f"[evaluate] {message}", file=sys.stderr, flush=True)

    def batches(self, count=None):
        """(images, labels) tensors of the first `count` points, `batch_size` at a time."""
        count = len(self.images) if count is None else count
        for start in range(0, count, self.batch_size):
            stop = min(start + self.batch_size, count)
            yield tf.constant(self.images[start:stop]), tf.constant(self.labels[start:stop])

    def predict(self, images):
        """The predicted classes of `images`; `NonFiniteLogitsError` for NaN or inf logits."""
        return predicted_classes(self.logits(images))

    def correct_under(self, craft, count=None):
        """Per point: does the model still classify `craft(x, y)` correctly?"""
        hits = [self.predict(craft(x, y)) == y.numpy() for x, y in self.batches(count)]
        return np.concatenate(hits)

    def our_pgd(self, attack, steps=PGD_STEPS, step_size=None):
        """PGD on cross-entropy as `craft(x, y, epsilon=None)`, traced once per setting.

        `step_size` is the step at the suite's ε (default: the suite's); at another ε it scales
        with ε. The random starts begin anew from the seed of `attack` (a row's name) at each
        call, and run on over the craft's calls (restarts, batches); crafts of one setting
        share a generator, so use each before asking for the next.
        """
        config = PGDConfig(
            epsilon=self.epsilon,
            step_size=step_size or self.step_size,
            steps=steps,
            norm=self.norm,
            objective="ce",
        )
        if config not in self._crafters:
            generator = keras.random.SeedGenerator(0)
            traced = tf.function(
                lambda x, y, epsilon: pgd(
                    self.logits_fn, x, y, config, epsilon=epsilon, seed_generator=generator
                ),
                reduce_retracing=True,
            )
            self._crafters[config] = (generator, traced)
        generator, traced = self._crafters[config]
        self.reseed(generator, attack)
        return lambda x, y, epsilon=None: traced(
            x, y, tf.constant(self.epsilon if epsilon is None else epsilon, tf.float32)
        )

    def worst_over_restarts(self, craft, restarts):
        correct = np.ones(len(self.labels), bool)
        for _ in range(restarts):
            correct &= self.correct_under(craft)
        return correct

    def pgd_row_at(self, epsilon):
        """Per point: still correct under the PGD row's attack (its steps, step scaled to ε,
        seed and restarts) at `epsilon`? At the suite's ε this is the PGD row itself."""
        if epsilon == self.epsilon and "pgd" in self.correct:
            return self.correct["pgd"]
        craft = functools.partial(self.our_pgd("pgd"), epsilon=epsilon)
        return self.worst_over_restarts(craft, self.restarts)

    def record_attack(self, name, label, correct, seconds, positions=None, **extra):
        """Adds a table row; `positions`: the evaluated points it ran on, when not all."""
        if positions is None:
            self.correct[name] = correct
        else:
            self.subset_correct[name] = (positions, correct)
        row = {
            "name": name,
            "label": label,
            "accuracy": float(correct.mean()),
            "points": int(len(correct)),
            "seconds": round(seconds, 2),
            **extra,
        }
        self.results["attacks"].append(row)
        self.log(f"{label}: {100 * row['accuracy']:.2f} % ({seconds:.1f} s)")


def _timed(function):
    started = time.perf_counter()
    value = function()
    return value, time.perf_counter() - started


def clean_part(ev):
    correct, seconds = _timed(lambda: ev.correct_under(lambda x, y: x))
    ev.record_attack("clean", "Clean", correct, seconds)


def fgsm_part(ev):
    def craft(x, y):
        return cleverhans_attacks.fgsm(ev.logits_fn, x, y, epsilon=ev.epsilon, norm=ev.norm)

    correct, seconds = _timed(lambda: ev.correct_under(craft))
    ev.record_attack("fgsm", "FGSM (cleverhans)", correct, seconds)


def pgd_part(ev):
    craft = ev.our_pgd("pgd")
    correct, seconds = _timed(lambda: ev.worst_over_restarts(craft, ev.restarts))
    restarts = f", {ev.restarts} restarts" if ev.restarts > 1 else ""
    ev.record_attack(
        "pgd",
        f"PGD-{PGD_STEPS} (CE, step {ev.step_size:.4g}{restarts})",
        correct,
        seconds,
        step_size=ev.step_size,
        restarts=ev.restarts,
    )


def cw_linf_part(ev):
    craft = tf.function(
        functools.partial(
            cw.cw_linf,
            ev.logits_fn,
            epsilon=ev.epsilon,
            steps=CW_LINF_STEPS,
            step_size=ev.step_size,
            norm=ev.norm,
            seed_generator=keras.random.SeedGenerator(attack_seed(ev.seed, "cw_linf")),
        ),
        reduce_retracing=True,
    )
    correct, seconds = _timed(lambda: ev.correct_under(craft))
    name = "CW∞" if ev.norm == "linf" else "CW (L2 ball)"
    ev.record_attack(
        "cw_linf", f"{name} (PGD-{CW_LINF_STEPS}, margin)", correct, seconds, step_size=ev.step_size
    )


def autoattack_subset(count, autoattack_points):
    """Positions (sorted) of the evaluated points AutoAttack runs on: all, or a fixed subset.

    The subsets are nested (a prefix of one seeded permutation): the 500-point subset lies
    inside the 1,000-point one, so a report on more points also answers for fewer.
    """
    if autoattack_points is None or autoattack_points >= count:
        return np.arange(count)
    order = np.random.default_rng(AUTOATTACK_SUBSET_SEED).permutation(count)
    return np.sort(order[:autoattack_points])


def autoattack_part(ev):
    subset = autoattack_subset(len(ev.labels), ev.autoattack_points)
    result = autoattack(
        ev.logits_fn,
        ev.images[subset],
        ev.labels[subset],
        epsilon=ev.epsilon,
        norm=ev.norm,
        version="standard",
        seed=ev.seed,
        batch_size=ev.batch_size,
        verbose=ev.progress,
        workers=ev.autoattack_workers,
        progress_file=ev.autoattack_progress,
    )
    ev.results["autoattack"] = {
        "version": "standard",
        "points": int(len(subset)),
        "clean_accuracy": float(result.clean_accuracy),
        "stages": [[name, float(accuracy)] for name, accuracy in result.stages],
        "robust_accuracy": float(result.robust_accuracy),
        "seconds": round(float(result.seconds), 2),
        **_subset_entry(ev, subset),
    }
    ev.record_attack(
        "autoattack",
        "AutoAttack (standard)",
        np.asarray(result.robust, bool),
        float(result.seconds),
        positions=subset if len(subset) < len(ev.labels) else None,
    )


def _subset_entry(ev, subset):
    """How a subset is named in a report: its seed, its test indices and the PGD-20 row on it."""
    if len(subset) == len(ev.labels):
        return {}
    entry = {"subset_seed": AUTOATTACK_SUBSET_SEED, "subset": ev.test_indices[subset].tolist()}
    if "pgd" in ev.correct:
        entry["pgd_accuracy_on_subset"] = float(ev.correct["pgd"][subset].mean())
    return entry


def cw_l2_part(ev):
    count = ev.spec.cw_l2_points
    count = len(ev.labels) if count is None else min(count, len(ev.labels))
    x, y = ev.images[:count], ev.labels[:count]
    result, seconds = _timed(lambda: cw.cw_l2(ev.logits_fn, x, y, batch_size=ev.batch_size))
    clean = ev.correct["clean"][:count]
    fooled = clean & result.success
    entry = {
        "points": int(count),
        "clean_correct": int(clean.sum()),
        "success_rate": float(fooled.sum() / max(clean.sum(), 1)),
        "median_l2": float(np.median(result.l2[fooled])) if fooled.any() else None,
        "mean_l2": float(np.mean(result.l2[fooled])) if fooled.any() else None,
        "accuracy": float((clean & ~result.success).mean()),
        "seconds": round(seconds, 2),
    }
    if ev.norm == "l2":
        entry["accuracy_within_epsilon"] = float(
            (clean & ~(result.success & (result.l2 <= ev.epsilon))).mean()
        )
    ev.results["cw_l2"] = entry
    median = "n/a" if entry["median_l2"] is None else f"{entry['median_l2']:.3g}"
    ev.log(
        f"CW-L2 on {count} points: success {100 * entry['success_rate']:.1f} %, "
        f"median L2 {median} ({seconds:.1f} s)"
    )


def square_part(ev):
    count = min(SQUARE_POINTS, len(ev.labels))
    x, y = ev.images[:count], ev.labels[:count]
    x_adv, seconds = _timed(
        lambda: square(
            ev.logits_fn,
            x,
            y,
            epsilon=ev.epsilon,
            norm=ev.norm,
            seed=ev.seed,
            batch_size=ev.batch_size,
        )
    )
    black_box = np.asarray(ev.predict(tf.constant(np.asarray(x_adv, np.float32)))) == y
    white_box = np.ones(count, bool)
    for name in ("pgd", "cw_linf"):
        if name in ev.correct:
            white_box &= ev.correct[name][:count]
    ev.results["square"] = {
        "points": int(count),
        "accuracy": float(black_box.mean()),
        "white_box_accuracy": float(white_box.mean()),
        "seconds": round(seconds, 2),
    }
    ev.log(
        f"Square (black-box) on {count} points: {100 * black_box.mean():.2f} %, white-box "
        f"{100 * white_box.mean():.2f} % ({seconds:.1f} s)"
    )


def epsilon_sweep_part(ev):
    large = large_epsilon(ev.norm, ev.images.shape[1:])
    epsilons = sorted(
        {ev.epsilon * m for m in ev.spec.sweep_multiples if ev.epsilon * m < large} | {large}
    )
    points = [{"epsilon": 0.0, "accuracy": float(ev.correct["clean"].mean())}]
    started = time.perf_counter()
    for epsilon in epsilons:
        points.append({"epsilon": float(epsilon), "accuracy": float(ev.pgd_row_at(epsilon).mean())})
    restarts = f", {ev.restarts} restarts" if ev.restarts > 1 else ""
    ev.results["epsilon_sweep"] = {
        "attack": f"PGD-{PGD_STEPS} (CE{restarts})",
        "points": points,
        "large_epsilon": large,
        "large_epsilon_accuracy": points[-1]["accuracy"],
    }
    ev.log(
        "ε sweep: "
        + ", ".join(f"{p['epsilon']:.3g}: {100 * p['accuracy']:.1f} %" for p in points)
        + f" ({time.perf_counter() - started:.1f} s)"
    )


def pgd_strength_part(ev):
    strong_step = 2.5 * ev.epsilon / STRONG_PGD_STEPS
    correct, seconds = _timed(
        lambda: ev.correct_under(
            ev.our_pgd("pgd100", steps=STRONG_PGD_STEPS, step_size=strong_step)
        )
    )
    ev.record_attack(
        "pgd100", f"PGD-{STRONG_PGD_STEPS} (CE, step {strong_step:.4g})", correct, seconds
    )
    restarted, seconds = _timed(
        lambda: ev.worst_over_restarts(ev.our_pgd("pgd_restarts"), STRENGTH_RESTARTS)
    )
    ev.record_attack(
        "pgd_restarts", f"PGD-{PGD_STEPS} × {STRENGTH_RESTARTS} restarts", restarted, seconds
    )
    ev.results["pgd_strength"] = {
        f"PGD-{STRONG_PGD_STEPS}": float(correct.mean()),
        f"PGD-{PGD_STEPS} × {STRENGTH_RESTARTS}": float(restarted.mean()),
    }


def gradients_part(ev):
    stats, seconds = _timed(
        lambda: diagnostics.gradient_statistics(ev.logits_fn, ev.images, ev.labels, ev.batch_size)
    )
    ev.results["gradients"] = stats
    ev.log(
        f"gradients: {100 * stats['zero_gradient_fraction']:.1f} % exactly zero, mean "
        f"top-2 logit gap {stats['mean_logit_gap']:.3g} ({seconds:.1f} s)"
    )


def corruptions_part(ev):
    """Accuracy under the CIFAR-10-C corruptions; kept out of `ev.correct`, as it is no attack."""
    entry = corruptions.corruption_accuracy(
        ev.model,
        ev.images,
        ev.labels,
        settings=ev.corruption_settings,
        seed=ev.seed,
        num_points=len(ev.labels),
        batch_size=ev.batch_size,
        log=ev.log,
    )
    ev.results["corruptions"] = entry
    ev.log(
        f"mean corruption accuracy ({entry['source']}): "
        f"{100 * entry['mean_corruption_accuracy']:.2f} % ({entry['seconds']:.1f} s)"
    )


def geometry_part(ev):
    """Feature geometry of the suite's points and their PGD-20 examples (the PGD row's attack
    and the random starts of its first restart)."""
    if getattr(ev.model, "backbone", None) is None:
        reason = f"{type(ev.model).__name__} has no `backbone` giving features"
        ev.results["geometry"] = {"skipped": reason}
        ev.log(f"feature geometry skipped: {reason}")
        return
    started = time.perf_counter()
    craft = ev.our_pgd("pgd")
    adversarial = np.concatenate([craft(x, y).numpy() for x, y in ev.batches()])
    entry = geometry.feature_geometry(
        ev.model,
        ev.images,
        ev.labels,
        adversarial_images=adversarial,
        attack=geometry.pgd_label(ev.step_size, ev.norm, ev.epsilon),
        seed=ev.seed,
        batch_size=ev.batch_size,
    )
    entry["seconds"] = round(time.perf_counter() - started, 2)
    ev.results["geometry"] = entry
    ev.log(
        f"feature geometry of {entry['points']} clean and adversarial features "
        f"({entry['seconds']:.1f} s)"
    )


def diagnostics_part(ev):
    ev.results["worst_case"] = worst_case(ev)
    ev.results["diagnostics"] = diagnostics.summarise(diagnostics.masking_checks(ev.results))
    for warning in ev.results["diagnostics"]["warnings"]:
        ev.log(f"WARNING: {warning}")


def worst_case(ev):
    """Accuracy when a point counts as robust only if it is classified correctly clean and every
    attack row (each attack in `ev.correct`, all at ε) failed on it.

    Over all evaluated points with the attacks that ran on all of them; an attack run on a
    subset (AutoAttack with `autoattack_points`) adds the worst case on that subset.
    """
    correct = np.ones(len(ev.labels), bool)
    for name in ev.correct:
        correct &= ev.correct[name]
    entry = {"accuracy": float(correct.mean()), "attacks": [n for n in ev.correct if n != "clean"]}
    for name, (positions, subset_correct) in ev.subset_correct.items():
        entry[f"{name}_subset"] = {
            "points": int(len(positions)),
            "accuracy": float((correct[positions] & subset_correct).mean()),
        }
    return entry


PARTS = {
    "clean": clean_part,
    "fgsm": fgsm_part,
    "pgd": pgd_part,
    "cw_linf": cw_linf_part,
    "autoattack": autoattack_part,
    "cw_l2": cw_l2_part,
    "square": square_part,
    "epsilon_sweep": epsilon_sweep_part,
    "pgd_strength": pgd_strength_part,
    "gradients": gradients_part,
    "corruptions": corruptions_part,
    "geometry": geometry_part,
    "diagnostics": diagnostics_part,
}


def as_float_images(images):
    """A batch [N, H, W, C] as float32 in [0, 1]: uint8 divided by 255, floats checked."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be a batch [N, H, W, C], got shape {images.shape}")
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    images = images.astype(np.float32)
    if images.size and (images.min() < 0.0 or images.max() > 1.0):
        raise ValueError(
            f"float images must lie in [0, 1], got values in "
            f"[{images.min():.4g}, {images.max():.4g}]; pass uint8 images or "
            f"divide by 255"
        )
    return images


def _subset(count, num_points, seed):
    if num_points is None or num_points >= count:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, num_points, replace=False))


def evaluate_robustness(
    model,
    images,
    labels,
    *,
    epsilon,
    norm="linf",
    suite="standard",
    num_points=None,
    seed=0,
    batch_size=256,
    step_size=None,
    restarts=1,
    autoattack_points=None,
    autoattack_workers=1,
    autoattack_progress=None,
    corruption_settings=None,
    progress=True,
):
    """Runs a robustness suite on a model and returns its results as a JSON-ready dict.

    Args:
        model: maps float32 images [N, H, W, C] in [0, 1] to logits (called with
            `training=False`).
        images: uint8 images (scaled by 1/255) or float images in [0, 1]; labels: int [N].
            `ImageFiles` (a split streamed from disk) need `num_points`: only the subset is
            decoded into memory.
        epsilon, norm: the attack radius and norm (`linf` or `l2`), pixel scale [0, 1].
        suite: a name in `SUITES`: `quick` (clean, FGSM, PGD-20, CW∞, ε sweep, masking
            diagnostics), `standard` (+ AutoAttack, CW-L2 on 100 points, Square vs white-box),
            `full` (CW-L2 on every point, a finer sweep, accuracy under the CIFAR-10-C
            corruptions and the feature geometry of clean and PGD-20 features).
        num_points: evaluate a seeded random subset of this size (its indices are reported
            as `subset`); None: all points.
        seed: seeds the subset and every attack's random starts; each attack draws from its
            own seed (`attack_seed`), so a row's number does not depend on the suite.
        step_size: PGD step at `epsilon`; None: `2.5 ε / 20`. It scales with ε in the sweep.
        restarts: random restarts of the PGD-20 row (a point counts if every restart fails).
        autoattack_points: run AutoAttack on a fixed subset of this many of the evaluated
            points (drawn with `AUTOATTACK_SUBSET_SEED`, whatever `seed` is, so every run is
            attacked on the same points; its test indices are reported); None: all of them.
        autoattack_workers: AutoAttack's batches attacked at once (`autoattack`'s `workers`:
            the same result, faster on several cores).
        autoattack_progress: an `autoattack_progress.ProgressFile` where AutoAttack keeps its
            finished stages, so that an interrupted evaluation resumes after the last of them;
            None: kept in memory only.
        corruption_settings: a `corruptions.CorruptionSettings` for the `full` suite's
            corruptions (default: generated from the suite's points, not cached).
        progress: log each attack's accuracy and time to stderr.
    """
    if suite not in SUITES:
        raise ValueError(f"suite must be one of {tuple(SUITES)}, got {suite!r}")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise ValueError(f"epsilon must be > 0 and finite, got {epsilon}")
    if step_size is not None and not (math.isfinite(step_size) and step_size > 0):
        raise ValueError(f"step_size must be > 0 and finite, got {step_size}")
    if num_points is not None and num_points < 1:
        raise ValueError(f"num_points must be >= 1 (or None for all), got {num_points}")
    if restarts < 1:
        raise ValueError(f"restarts must be >= 1, got {restarts}")
    if autoattack_points is not None and autoattack_points < 1:
        raise ValueError(
            f"autoattack_points must be >= 1 (or None for all), got {autoattack_points}"
        )
    streamed = isinstance(images, ImageFiles)
    if streamed and num_points is None:
        raise ValueError(
            f"the test split is streamed from disk ({len(images)} images, "
            f"{images.nbytes / 2**20:.1f} MB decoded, over --max_in_memory_mb) and the "
            f"robustness suite holds its points in memory: evaluate a seeded subset "
            f"(python -m keras_dpnp.evaluate --num_points=N), or raise --max_in_memory_mb"
        )
    images = images if streamed else as_float_images(images)
    labels = np.asarray(labels).astype(np.int64)
    if labels.shape != (len(images),):
        raise ValueError(
            f"labels must have shape ({len(images)},), one per image, got {labels.shape}"
        )
    if len(images) == 0:
        raise ValueError("no images to evaluate")
    chosen = _subset(len(images), num_points, seed)
    spec = SUITES[suite]
    corruption_settings = corruption_settings or corruptions.CorruptionSettings()
    if "corruptions" in spec.parts:
        # Fails now, not after the attacks, when official data is asked for but missing.
        corruption_settings = corruption_settings.resolved()
    points = as_float_images(images[chosen].decode()) if streamed else images[chosen]
    ev = Evaluation(
        model=model,
        images=points,
        labels=labels[chosen],
        epsilon=float(epsilon),
        norm=norm,
        step_size=float(step_size or 2.5 * epsilon / PGD_STEPS),
        restarts=int(restarts),
        seed=int(seed),
        batch_size=int(batch_size),
        progress=progress,
        spec=spec,
        autoattack_points=autoattack_points,
        autoattack_workers=int(autoattack_workers),
        autoattack_progress=autoattack_progress,
        test_indices=chosen,
        corruption_settings=corruption_settings,
    )
    ev.results.update(
        {
            "suite": suite,
            "parts": list(spec.parts),
            "norm": norm,
            "epsilon": float(epsilon),
            "step_size": ev.step_size,
            "points": int(len(chosen)),
            "seed": int(seed),
            "subset": None if len(chosen) == len(images) else chosen.tolist(),
            "attacks": [],
        }
    )
    started = time.perf_counter()
    for part in spec.parts:
        PARTS[part](ev)
    ev.results["seconds"] = round(time.perf_counter() - started, 1)
    return ev.results
