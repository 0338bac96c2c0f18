"""Inputs every artefact is checked on: random images and PGD examples crafted from them."""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from keras_dpnp.attacks.pgd import PGDConfig, pgd
from keras_dpnp.exporting.serving import image_shape

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
    return PGDConfig(epsilon=epsilon, step_size=epsilon / 4, steps=10, norm="linf",
                     objective="ce")


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
    attack_fn = tf.function(lambda images, targets: pgd(
        lambda x: model(x, training=False), images, targets, attack,
        seed_generator=seed_generator))
    adversarial = attack_fn(tf.constant(clean), tf.constant(labels))
    return Probes(clean=clean, adversarial=np.asarray(adversarial), attack=attack)
