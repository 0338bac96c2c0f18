"""Attack speed: our in-graph PGD-20 against cleverhans's PGD-20, and AutoAttack's wall time.

    python -m keras_dpnp.bench_attacks [--batch_size=256] [--repeats=3] [--model=runs/adv_dpnp]

Setups: an untrained small CNN on random 32×32×3 images, an untrained small CNN on the digits
test images, and (with --model) a trained model on its data set's test images. Both PGDs attack
the same model and batch at the same ε, step and number of steps. AutoAttack (standard) time
depends on how many points survive each stage, so its robust accuracy is printed beside it.
Prints figures only.
"""

import functools
import time

from absl import flags

from keras_dpnp import cli

flags.DEFINE_integer("batch_size", 256, "Images per PGD call.", lower_bound=1)
flags.DEFINE_integer("repeats", 3, "Timed PGD calls per setup (after one warm-up call).",
                     lower_bound=1)
flags.DEFINE_integer("autoattack_points", 100, "Points for the AutoAttack timing; 0: skip.",
                     lower_bound=0)
flags.DEFINE_string("model", None, "Optional run directory or .keras file to add as a setup.")
flags.DEFINE_string("dataset", None, "Data set of a bare .keras --model.")
flags.DEFINE_float("epsilon", 8 / 255, "L∞ radius of both PGDs and AutoAttack; a --model "
                   "setup uses its training ε unless this flag is given.", lower_bound=0)
flags.DEFINE_integer("seed", 0, "Seed of the random images, labels and weights.", lower_bound=0)


def _untrained(image_shape, seed):
    import keras

    from keras_dpnp.backbones import build_backbone
    from keras_dpnp.model import AdvDPNP

    keras.utils.set_random_seed(seed)
    channels = image_shape[-1]
    backbone = build_backbone("small_cnn", image_shape, mean=(0.5,) * channels,
                              std=(0.25,) * channels)
    return AdvDPNP(backbone, 10, method="standard")


def _setups(batch_size, seed, epsilon):
    """(name, model, images float32, labels, ε) for every setup."""
    import numpy as np

    from keras_dpnp.data import load_dataset
    from keras_dpnp.evaluation import loading

    rng = np.random.default_rng(seed)
    setups = [("small CNN, random 32×32×3", _untrained((32, 32, 3), seed),
               rng.random((batch_size, 32, 32, 3), dtype=np.float32),
               rng.integers(0, 10, batch_size), epsilon)]
    digits = load_dataset("digits")
    setups.append(("small CNN, digits 8×8×1", _untrained((8, 8, 1), seed),
                   digits.test[0][:batch_size].astype(np.float32) / 255,
                   digits.test[1][:batch_size], epsilon))
    if flags.FLAGS.model:
        source = loading.find_model(flags.FLAGS.model)
        dataset = flags.FLAGS.dataset or (source.config.dataset if source.config else None)
        if dataset is None:
            cli.fail("a bare .keras --model needs --dataset")
        model = loading.load_model(source.model_path)
        splits = load_dataset(dataset)
        loading.check_fits_data(model, splits.info)
        if not flags.FLAGS["epsilon"].present and source.config and source.config.epsilon > 0:
            epsilon = source.config.epsilon
        setups.append((f"{source.model_path} on {dataset}", model,
                       splits.test[0][:batch_size].astype(np.float32) / 255,
                       splits.test[1][:batch_size], epsilon))
    return setups


def _images_per_second(attack, images, repeats):
    attack()
    started = time.perf_counter()
    for _ in range(repeats):
        attack()
    return repeats * len(images) / (time.perf_counter() - started)


def _pgd_speeds(model, images, labels, epsilon, repeats):
    import numpy as np
    import tensorflow as tf

    from keras_dpnp.attacks import cleverhans_attacks
    from keras_dpnp.attacks.pgd import PGDConfig, pgd

    def logits_fn(x):
        return model(x, training=False)

    config = PGDConfig(epsilon=epsilon, step_size=epsilon / 4, steps=20)
    ours = tf.function(lambda x, y: pgd(logits_fn, x, y, config))
    x, y = tf.constant(images), tf.constant(np.asarray(labels, np.int64))
    our_speed = _images_per_second(lambda: ours(x, y).numpy(), images, repeats)
    theirs_speed = _images_per_second(
        lambda: cleverhans_attacks.pgd(logits_fn, x, y, epsilon=epsilon, step_size=epsilon / 4,
                                       steps=20, seed=0).numpy(), images, repeats)
    return our_speed, theirs_speed


def main(argv):
    if len(argv) > 1:
        cli.fail(f"unexpected arguments {argv[1:]}; every option is a --flag")
    from keras_dpnp.attacks.autoattack import autoattack
    from keras_dpnp.data import DatasetNotFoundError
    from keras_dpnp.evaluation.loading import ModelLoadError

    f = flags.FLAGS
    try:
        setups = _setups(f.batch_size, f.seed, f.epsilon)
    except (ModelLoadError, DatasetNotFoundError, ValueError) as error:
        cli.fail(str(error))
    print(f"PGD-20 (L∞, step ε/4), batch {f.batch_size}, {f.repeats} timed calls each: "
          f"images per second, higher is better\n")
    print("| setup | ε | ours (in-graph) | cleverhans 4.0.0 | ours / cleverhans |")
    print("|---|---:|---:|---:|---:|")
    for name, model, images, labels, epsilon in setups:
        ours, theirs = _pgd_speeds(model, images, labels, epsilon, f.repeats)
        print(f"| {name} | {epsilon:.4g} | {ours:,.0f} | {theirs:,.0f} | {ours / theirs:.1f}× |",
              flush=True)
    if not f.autoattack_points:
        return
    print(f"\nAutoAttack (standard), {f.autoattack_points} points\n")
    print("| setup | ε | seconds per 100 points | robust accuracy % |")
    print("|---|---:|---:|---:|")
    for name, model, images, labels, epsilon in setups:
        count = min(f.autoattack_points, len(images))
        result = autoattack(functools.partial(model, training=False), images[:count],
                            labels[:count], epsilon=epsilon, seed=f.seed, verbose=False)
        print(f"| {name} | {epsilon:.4g} | {100 * result.seconds / count:.1f} | "
              f"{100 * result.robust_accuracy:.1f} |", flush=True)


def run():
    """The console entry point (`keras-dpnp-...`)."""
    cli.run(main)


if __name__ == "__main__":
    run()
