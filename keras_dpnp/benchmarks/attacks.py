"""Attack speed: our in-graph PGD-20 against cleverhans's PGD-20, and AutoAttack's wall time.

Setups: an untrained small CNN on random 32×32×3 images, an untrained small CNN on the digits
test images, and optionally a trained model on its data set's test images. Both PGDs attack the
same model and batch at the same ε, step (ε/4) and number of steps. AutoAttack (standard) time
depends on how many points survive each stage, so its robust accuracy is reported beside it.
"""

import dataclasses
import functools
import time

import keras
import numpy as np
import tensorflow as tf

from keras_dpnp.attacks import cleverhans_attacks
from keras_dpnp.attacks.autoattack import autoattack
from keras_dpnp.attacks.pgd import PGDConfig, pgd
from keras_dpnp.backbones import build_backbone
from keras_dpnp.data import load_dataset
from keras_dpnp.data.image_files import ImageFiles
from keras_dpnp.evaluation.robustness import autoattack_subset
from keras_dpnp.evaluation.run_report import attack_settings, training_attack
from keras_dpnp.model import AdvDPNP
from keras_dpnp.training.run_dir import check_fits_data, find_model, load_model

PGD_STEPS = 20


@dataclasses.dataclass(frozen=True, eq=False)
class Setup:
    """A model and a batch of float32 images in [0, 1] with labels, attacked at `epsilon`
    (PGD is L∞; AutoAttack uses `norm`)."""

    name: str
    model: keras.Model
    images: np.ndarray
    labels: np.ndarray
    epsilon: float
    norm: str = "linf"


def untrained_model(image_shape, seed):
    """A freshly initialised small CNN with a linear head, 10 classes."""
    keras.utils.set_random_seed(seed)
    channels = image_shape[-1]
    backbone = build_backbone(
        "small_cnn", image_shape, mean=(0.5,) * channels, std=(0.25,) * channels
    )
    return AdvDPNP(backbone, 10, method="standard")


def standard_setups(batch_size, seed, epsilon):
    """The random-image and the digits setups."""
    rng = np.random.default_rng(seed)
    digits = load_dataset("digits")
    return [
        Setup(
            "small CNN, random 32×32×3",
            untrained_model((32, 32, 3), seed),
            rng.random((batch_size, 32, 32, 3), dtype=np.float32),
            rng.integers(0, 10, batch_size),
            epsilon,
        ),
        Setup(
            "small CNN, digits 8×8×1",
            untrained_model((8, 8, 1), seed),
            digits.test[0][:batch_size].astype(np.float32) / 255,
            digits.test[1][:batch_size],
            epsilon,
        ),
    ]


def _trained_model_and_test_split(path, dataset):
    """(model source, model, data set name, test images as stored, test labels) of a trained
    model (run directory or `.keras` file) on its data set, or on `dataset`."""
    source = find_model(path)
    dataset = dataset or (source.config.dataset if source.config else None)
    if dataset is None:
        raise ValueError("a bare .keras --model needs --dataset")
    model = load_model(source.model_path)
    same_data = source.config is not None and source.config.dataset == dataset
    splits = load_dataset(dataset, **(source.config.data_options() if same_data else {}))
    check_fits_data(model, splits.info)
    return source, model, dataset, *splits.test


def _float_images(images):
    """uint8 images (in memory, or `ImageFiles` streamed from disk) as float32 in [0, 1]."""
    if isinstance(images, ImageFiles):
        images = images.decode()
    return images.astype(np.float32) / 255


def trained_setup(path, batch_size, dataset=None, epsilon=None):
    """A trained model (run directory or `.keras` file) on its data set's test images, at
    `epsilon` or else the run's training ε."""
    source, model, dataset, images, labels = _trained_model_and_test_split(path, dataset)
    if epsilon is None:
        epsilon = source.config.epsilon if source.config and source.config.epsilon > 0 else 8 / 255
    return Setup(
        f"{source.shown_path} on {dataset}",
        model,
        _float_images(images[:batch_size]),
        labels[:batch_size],
        epsilon,
    )


def autoattack_subset_setup(path, points, dataset=None, epsilon=None):
    """A trained model on the test points that `evaluate --autoattack_points=points` attacks.

    The points are `robustness.autoattack_subset` of the whole test split; ε and the norm are
    evaluate's defaults (the training attack's) unless `epsilon` is given.

    Returns:
        (the `Setup`, the points' indices in the test split).
    """
    source, model, dataset, images, labels = _trained_model_and_test_split(path, dataset)
    epsilon, norm, _ = attack_settings(training_attack(source, model), epsilon)
    subset = autoattack_subset(len(labels), points)
    name = f"{source.shown_path} on {len(subset)} {dataset} test points"
    setup = Setup(name, model, _float_images(images[subset]), labels[subset], epsilon, norm)
    return setup, subset


def images_per_second(attack, count, repeats):
    """Images per second of `attack()` on `count` images, over `repeats` calls after one."""
    attack()
    started = time.perf_counter()
    for _ in range(repeats):
        attack()
    return repeats * count / (time.perf_counter() - started)


def pgd_speeds(setup, repeats):
    """(ours, cleverhans's) images per second of PGD-20 with step ε/4 on `setup`."""

    def logits_fn(x):
        return setup.model(x, training=False)

    epsilon = setup.epsilon
    config = PGDConfig(epsilon=epsilon, step_size=epsilon / 4, steps=PGD_STEPS)
    ours = tf.function(lambda x, y: pgd(logits_fn, x, y, config))
    x = tf.constant(setup.images)
    y = tf.constant(np.asarray(setup.labels, np.int64))
    count = len(setup.images)
    our_speed = images_per_second(lambda: ours(x, y).numpy(), count, repeats)
    theirs_speed = images_per_second(
        lambda: cleverhans_attacks.pgd(
            logits_fn, x, y, epsilon=epsilon, step_size=epsilon / 4, steps=PGD_STEPS, seed=0
        ).numpy(),
        count,
        repeats,
    )
    return our_speed, theirs_speed


def autoattack_timing(setup, points, seed):
    """(seconds per 100 points, robust accuracy) of standard AutoAttack on `points` images."""
    count = min(points, len(setup.images))
    result = autoattack(
        functools.partial(setup.model, training=False),
        setup.images[:count],
        setup.labels[:count],
        epsilon=setup.epsilon,
        seed=seed,
        verbose=False,
    )
    return 100 * result.seconds / count, result.robust_accuracy
