"""AutoAttack (Croce & Hein 2020): a fixed, parameter-free ensemble; a point counts as robust
only if every attack fails on it.

Standard version: APGD-CE → APGD-T → FAB-T → Square, each on the points still robust.
"""

import dataclasses
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from keras_dpnp.attacks import autoattack_progress
from keras_dpnp.attacks.apgd import apgd, apgd_targeted
from keras_dpnp.attacks.batching import check_inputs, check_workers, num_classes
from keras_dpnp.attacks.fab import fab_targeted
from keras_dpnp.attacks.pgd import project
from keras_dpnp.attacks.square import square

VERSIONS = {
    "standard": ("apgd-ce", "apgd-t", "fab-t", "square"),
    "fast": ("apgd-ce", "apgd-t"),
}
STEPS = 100
SQUARE_QUERIES = 5000
MAX_TARGETS = 9
# Float32 rounding of x + δ; every returned perturbation is checked against ε plus this.
BALL_TOLERANCE = 1e-6


@dataclasses.dataclass(frozen=True)
class AutoAttackResult:
    """What AutoAttack found.

    `x_adv`: the images, adversarial where a stage succeeded, else clean. `robust`: bool mask,
    True where the point is classified correctly clean and after every stage. `stages`:
    `((stage name, robust accuracy after it), ...)` in running order. `robust_accuracy`: the
    final (worst case per point) accuracy, equal to the last stage's. `seconds`: wall time.
    `stage_seconds`: the wall time of each stage, in the order of `stages`. `resumed_stages`:
    how many of `stages` were read from a progress file, finished by an earlier call.
    """

    x_adv: np.ndarray
    robust: np.ndarray
    clean_accuracy: float
    stages: tuple
    robust_accuracy: float
    seconds: float
    stage_seconds: tuple
    resumed_stages: int = 0


def _classifier(logits_fn, image_shape, batch_size):
    """A function from images (np.ndarray) to predicted labels, one compiled graph per batch."""

    @tf.function(input_signature=[tf.TensorSpec([None, *image_shape], tf.float32)])
    def labels_of(batch):
        return tf.argmax(tf.cast(logits_fn(batch), tf.float32), axis=1)

    def classify(images):
        return np.concatenate(
            [
                labels_of(tf.constant(images[start : start + batch_size])).numpy()
                for start in range(0, len(images), batch_size)
            ]
        )

    return classify


def _into_box_and_ball(x, candidates, epsilon, norm):
    """Clips to [0, 1] and projects onto the ε-ball, undoing any rounding past the radius."""
    delta = project(tf.constant(np.clip(candidates, 0.0, 1.0) - x), epsilon, norm).numpy()
    return np.clip(x + delta, 0.0, 1.0)


def perturbation_sizes(x, x_adv, norm):
    """Per-point L∞ or L2 norm of `x_adv − x`."""
    delta = (np.asarray(x_adv, np.float64) - np.asarray(x, np.float64)).reshape(len(x), -1)
    return np.abs(delta).max(axis=1) if norm == "linf" else np.linalg.norm(delta, axis=1)


def _check_valid(x, x_adv, epsilon, norm):
    largest = perturbation_sizes(x, x_adv, norm).max()
    if largest > epsilon + BALL_TOLERANCE or x_adv.min() < 0 or x_adv.max() > 1:
        raise RuntimeError(
            f"AutoAttack produced an invalid point (largest {norm} perturbation "
            f"{largest:.6g} for epsilon {epsilon}, range [{x_adv.min():g}, "
            f"{x_adv.max():g}]); this is a bug, please report it"
        )


def _stage(
    name, logits_fn, x, y, *, epsilon, norm, seed, num_targets, progress, batch_size, workers
):
    common = dict(
        epsilon=epsilon, norm=norm, batch_size=batch_size, progress=progress, workers=workers
    )
    if name == "apgd-ce":
        return apgd(logits_fn, x, y, loss="ce", steps=STEPS, seed=seed, **common)
    if name == "apgd-t":
        return apgd_targeted(
            logits_fn, x, y, steps=STEPS, num_targets=num_targets, seed=seed, **common
        )
    if name == "fab-t":
        return fab_targeted(logits_fn, x, y, steps=STEPS, num_targets=num_targets, **common)
    return square(logits_fn, x, y, queries=SQUARE_QUERIES, seed=seed, **common)


class _StageProgress:
    """A progress bar over a stage's points, counting the work done in points (a targeted
    stage's point is a ninth done after one of its nine target passes)."""

    def __init__(self, points):
        self.bar = keras.utils.Progbar(points, unit_name="point")
        self.done = 0

    def __call__(self, points):
        self.done += points
        # Rounded so that the passes' fractions add up to the exact total and the bar ends.
        self.bar.update(round(self.done, 6))


def _resumed_state(progress_file, key, verbose):
    """The `StagesDone` an earlier call left for this evaluation, or None."""
    state = progress_file and autoattack_progress.load(progress_file, key)
    if state and verbose:
        print(
            f"resuming after {state.stages[-1][0]} ({progress_file.path}): "
            f"{state.robust.mean():.2%} robust"
        )
    return state


def autoattack(
    logits_fn,
    x,
    y,
    *,
    epsilon,
    norm="linf",
    version="standard",
    seed=0,
    batch_size=500,
    verbose=True,
    workers=1,
    progress_file=None,
):
    """Runs AutoAttack on images `x` (float32 [N, H, W, C] in [0, 1]) with true labels `y`.

    `logits_fn` maps images to logits (call a model with `training=False`). `version`:
    'standard' (APGD-CE, APGD-T, FAB-T, Square 5000 queries) or 'fast' (APGD-CE, APGD-T).
    Targeted stages use min(9, K − 1) targets. Each stage attacks only the points still
    robust; its images are clipped to [0, 1], projected onto the ε-ball and classified again
    before a point is counted as broken. Each stage attacks `batch_size` points per batch,
    `workers` batches at once (the same result for any `workers`; `run_on_unfooled`).
    `verbose` prints a line per stage and, on a terminal only, a progress bar over its points.
    `progress_file` (an `autoattack_progress.ProgressFile`): the state after each stage is
    written there, and a call that finds the state of the same model, points and settings
    resumes after its last stage (the same result as a run that never stopped).
    Returns an `AutoAttackResult`.
    """
    started = time.perf_counter()
    x, y = check_inputs(x, y, epsilon, norm)
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {tuple(VERSIONS)}, got {version!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    check_workers(workers)
    if len(x) == 0:
        raise ValueError("no images to attack: x is empty")
    classes = num_classes(logits_fn, x)
    if classes < 4:
        raise ValueError(
            f"AutoAttack's APGD-T (targeted DLR loss) needs at least 4 classes, "
            f"the model has {classes}"
        )
    num_targets = min(MAX_TARGETS, classes - 1)
    classify = _classifier(logits_fn, x.shape[1:], batch_size)
    robust = classify(x) == y
    clean_accuracy = float(robust.mean())
    if verbose:
        print(
            f"AutoAttack ({version}, {norm}, eps={epsilon:g}) on {len(x)} points: "
            f"clean accuracy {clean_accuracy:.2%}"
        )
    settings = dict(version=version, norm=norm, epsilon=epsilon, seed=seed, batch_size=batch_size)
    key = progress_file and autoattack_progress.evaluation_key(progress_file, x, y, settings)
    state = _resumed_state(progress_file, key, verbose) or autoattack_progress.StagesDone(
        robust, x.copy(), (), ()
    )
    x_adv, robust = state.x_adv.copy(), state.robust.copy()
    stages, stage_seconds = list(state.stages), list(state.stage_seconds)
    for name in VERSIONS[version][len(stages) :]:
        stage_started = time.perf_counter()
        index = np.flatnonzero(robust)
        if len(index):
            progress = _StageProgress(len(index)) if verbose and sys.stdout.isatty() else None
            candidates = _stage(
                name,
                logits_fn,
                x[index],
                y[index],
                epsilon=epsilon,
                norm=norm,
                seed=seed,
                num_targets=num_targets,
                progress=progress,
                batch_size=batch_size,
                workers=workers,
            )
            candidates = _into_box_and_ball(x[index], candidates, epsilon, norm)
            broken = classify(candidates) != y[index]
            x_adv[index[broken]] = candidates[broken]
            robust[index[broken]] = False
        stages.append((name, float(robust.mean())))
        stage_seconds.append(time.perf_counter() - stage_started)
        if progress_file:
            done = autoattack_progress.StagesDone(
                robust, x_adv, tuple(stages), tuple(stage_seconds)
            )
            autoattack_progress.save(progress_file, key, done)
        if verbose:
            print(
                f"robust accuracy after {name}: {robust.mean():.2%} "
                f"({time.perf_counter() - started:.1f} s)"
            )
    _check_valid(x, x_adv, epsilon, norm)
    return AutoAttackResult(
        x_adv=x_adv,
        robust=robust,
        clean_accuracy=clean_accuracy,
        stages=tuple(stages),
        robust_accuracy=stages[-1][1],
        seconds=time.perf_counter() - started + sum(state.stage_seconds),
        stage_seconds=tuple(stage_seconds),
        resumed_stages=len(state.stages),
    )
