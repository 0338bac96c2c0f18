"""Every artefact is checked on the spot: reloaded, it must reproduce the Keras model's
outputs on random images and on PGD examples crafted from them (`Probes`)."""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from keras_dpnp.attacks.pgd import PGDConfig, pgd
from keras_dpnp.exporting.errors import ExportError, VerificationError
from keras_dpnp.exporting.serving import image_shape, serving_outputs

TOLERANCE = 1e-4
DEFAULT_EPSILON = 8 / 255


@dataclasses.dataclass(frozen=True, eq=False)
class Probes:
    """float32 images in [0, 1]: `clean` and their PGD counterparts `adversarial`."""

    clean: np.ndarray
    adversarial: np.ndarray
    attack: PGDConfig

    def items(self):
        return (("clean", self.clean), ("adversarial", self.adversarial))


def probe_attack(model):
    """L∞ PGD-10 (CE) at the model's training ε (8/255 for a model trained without attack)."""
    epsilon = model.attack_config.epsilon or DEFAULT_EPSILON
    return PGDConfig(epsilon=epsilon, step_size=epsilon / 4, steps=10, norm="linf", objective="ce")


def make_probes(model, count=16, seed=0):
    """`count` uniform random images and PGD examples that push them off the model's own labels."""
    if count < 2:
        raise ValueError(f"at least 2 probe images are needed, got {count}")
    rng = np.random.default_rng(seed)
    clean = rng.random((count,) + image_shape(model), dtype=np.float32)
    labels = np.argmax(np.asarray(model(clean, training=False)), axis=1)
    attack = probe_attack(model)
    seed_generator = keras.random.SeedGenerator(seed)
    # Traced, not eager: eager Conv2D filter gradients of the ResNets crash TF 2.21's oneDNN
    # build on some CPUs for odd batch sizes; the traced attack is also faster.
    attack_fn = tf.function(
        lambda images, targets: pgd(
            lambda x: model(x, training=False),
            images,
            targets,
            attack,
            seed_generator=seed_generator,
        )
    )
    adversarial = attack_fn(tf.constant(clean), tf.constant(labels))
    return Probes(clean=clean, adversarial=np.asarray(adversarial), attack=attack)


def reference_outputs(model, probes):
    """The Keras model's logits and probabilities on each kind of probe; `ExportError` if any
    is NaN or infinite (such a model is broken, and no artefact can be checked against it)."""
    references = {
        kind: {name: np.asarray(value) for name, value in serving_outputs(model, images).items()}
        for kind, images in probes.items()
    }
    for kind, outputs in references.items():
        for name, value in outputs.items():
            if not np.all(np.isfinite(value)):
                raise ExportError(
                    f"the Keras model's own {name} on {kind} probes hold NaN or inf: "
                    f"its weights are broken, so it cannot be exported"
                )
    return references


def logit_tolerance(reference_logits, tolerance):
    """`tolerance` for logits of magnitude up to 1, `tolerance` relative beyond.

    float32 carries about 7 significant digits, so logits of magnitude ~100 cannot agree to
    1e-4 absolute between two correct implementations (nor with their own float64 value).
    """
    return tolerance * max(1.0, float(np.max(np.abs(reference_logits))))


def _run(format_name, run, images):
    try:
        return run(images)
    except Exception as error:  # noqa: BLE001 - any runtime failure means a bad artefact
        raise VerificationError(
            f"{format_name}: the reloaded artefact failed to run on "
            f"{images.shape[0]} image(s): {type(error).__name__}: "
            f"{error}"
        ) from error


def _largest_difference(format_name, kind, name, got, expected):
    got = np.asarray(got)
    if got.dtype != np.float32 or got.shape != expected.shape:
        raise VerificationError(
            f"{format_name}: {name} on {kind} probes is {got.dtype} {list(got.shape)}, "
            f"expected float32 {list(expected.shape)}"
        )
    if not np.all(np.isfinite(got)):
        # Checked apart: NaN compares false with any limit and would pass the check below.
        raise VerificationError(f"{format_name}: {name} on {kind} probes hold NaN or inf")
    return float(np.max(np.abs(got.astype(np.float64) - expected)))


def verify(format_name, run, probes, references, tolerance=TOLERANCE):
    """Checks `run` (images -> {output: array}) against `references`; returns the differences.

    Each kind of probe runs as one batch and as a batch of one (a fixed batch size shows
    up). Logits must agree within `logit_tolerance`, probabilities (where the artefact has
    them) within `tolerance`; otherwise `VerificationError`.
    """
    if not (np.isfinite(tolerance) and tolerance >= 0):
        raise ExportError(f"tolerance must be a finite number >= 0, got {tolerance}")
    report = {}
    for kind, images in probes.items():
        expected = references[kind]
        whole, single = _run(format_name, run, images), _run(format_name, run, images[:1])
        if "logits" not in whole:
            raise VerificationError(f"{format_name}: the reloaded artefact has no logits output")
        limits = {
            "logits": logit_tolerance(expected["logits"], tolerance),
            "probabilities": tolerance,
        }
        differences = {}
        for name in (name for name in limits if name in whole):
            differences[name] = max(
                _largest_difference(format_name, kind, name, whole[name], expected[name]),
                _largest_difference(format_name, kind, name, single[name], expected[name][:1]),
            )
            if differences[name] > limits[name]:
                raise VerificationError(
                    f"{format_name}: {name} differ from the Keras model by "
                    f"{differences[name]:.3g} on {kind} probes (allowed {limits[name]:.3g})"
                )
        report[kind] = {f"max_abs_{name}_difference": value for name, value in differences.items()}
        report[kind]["logit_tolerance"] = limits["logits"]
    return report
