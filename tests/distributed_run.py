"""Trains a tiny Adv-DPNP model for two steps under a strategy; saves weights and logs to .npz.

    python distributed_run.py OUT.npz --strategy=one_device|mirrored|multi_worker
        [--logical_cpus=2] [--sync_batchnorm] [--precision=float32]

A helper of tests/test_distribute.py: logical CPU devices and multi-worker collectives must be
configured before TensorFlow starts, so every run gets a process of its own.
"""

import argparse

import numpy as np


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("output")
    parser.add_argument("--strategy", required=True)
    parser.add_argument("--logical_cpus", type=int, default=1)
    parser.add_argument("--sync_batchnorm", action="store_true")
    parser.add_argument("--precision", default="float32")
    args = parser.parse_args()

    import tensorflow as tf

    if args.logical_cpus > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * args.logical_cpus
        )

    import keras

    from keras_dpnp.backbones import build_backbone
    from keras_dpnp.data import make_dataset
    from keras_dpnp.model import AdvDPNP
    from keras_dpnp.training import distribute

    strategy = distribute.make_strategy(args.strategy)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (32, 8, 8, 1), dtype=np.uint8)
    labels = rng.integers(0, 10, 32)
    distribute.check_global_batch(16, strategy)
    dataset = distribute.shard_by_example(
        make_dataset(images, labels, batch_size=16, training=False)
    )
    keras.utils.set_random_seed(0)
    with strategy.scope(), distribute.precision_policy(args.precision):
        backbone = build_backbone(
            "small_cnn",
            (8, 8, 1),
            mean=0.5,
            std=0.25,
            feature_dim=8,
            width=0.25,
            sync_batchnorm=args.sync_batchnorm,
        )
        model = AdvDPNP(backbone, 10, attack={"epsilon": 0.2, "step_size": 0.05, "steps": 2})
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    history = model.fit(dataset, epochs=1, verbose=0).history
    np.savez(
        args.output,
        replicas=strategy.num_replicas_in_sync,
        **{f"weight_{i}": np.asarray(v) for i, v in enumerate(model.weights)},
        **{f"log_{name}": values[-1] for name, values in history.items()},
    )


if __name__ == "__main__":
    main()
