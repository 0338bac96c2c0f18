"""Hardware set-up: the `tf.distribute` strategy and the Keras mixed-precision policy.

`make_strategy` picks TensorFlow's own distribution engine (one device, `MirroredStrategy` over
local devices, or `MultiWorkerMirroredStrategy` from `TF_CONFIG`). Build the model, its optimizer
and its metrics inside `strategy.scope()`; batch the data by the global batch (`fit` splits each
batch over the replicas) and shard it with `shard_by_example`.
"""

import contextlib
import json
import os

import keras
import tensorflow as tf

from keras_dpnp import hardware, startup

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
# `auto` resolves to one of PRECISIONS on the machine at hand (`resolve_precision`).
PRECISION_CHOICES = ("auto",) + PRECISIONS


class HardwareSetupError(ValueError):
    """The strategy cannot be set up as asked (TF_CONFIG, batch size over replicas)."""


def make_strategy(name="auto"):
    """The `tf.distribute.Strategy` called `name` (one of `STRATEGIES`).

    `auto`: `MirroredStrategy` when there is more than one GPU, else one device.
    `one_device`: the first GPU, else the CPU. `mirrored`: every local GPU, or every logical CPU
    device when there is no GPU. `multi_worker`: `MultiWorkerMirroredStrategy` on the cluster that
    the `TF_CONFIG` environment variable describes; create it before any other TensorFlow work.
    """
    if name not in STRATEGIES:
        raise ValueError(f"--strategy={name!r} is not one of {list(STRATEGIES)}")
    if name == "multi_worker":
        _check_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")


def _check_tf_config():
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise HardwareSetupError(
            "--strategy=multi_worker needs the TF_CONFIG environment variable, e.g. "
            'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}}\' on the first worker'
        )
    try:
        config = json.loads(text)
        workers = config["cluster"]["worker"]
        task = config["task"]
        index = int(task["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise HardwareSetupError(
            f"TF_CONFIG is not valid: {error!r}; it needs cluster.worker "
            f"(a list of host:port) and task.type/task.index"
        ) from error
    if task.get("type") not in ("worker", "chief") or not 0 <= index < len(workers):
        raise HardwareSetupError(
            f"TF_CONFIG task {task} does not name one of the "
            f"{len(workers)} workers in cluster.worker"
        )


def check_global_batch(batch_size, strategy):
    """Raises unless the global batch splits evenly over the strategy's replicas."""
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise HardwareSetupError(
            f"--batch_size={batch_size} does not split evenly over the {replicas} replicas; "
            f"use a multiple of {replicas}"
        )


def shard_by_example(dataset):
    """`dataset` sharded element by element across workers (in-memory data has no files)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def gpu_compute_capabilities():
    """(major, minor) compute capability of every visible GPU."""
    return [
        tuple(tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0)))
        for gpu in tf.config.list_physical_devices("GPU")
    ]


def resolve_precision(name):
    """(precision, reason): `name` itself, or for `auto` the choice of `hardware.auto_precision`
    (mixed_bfloat16 only where the hardware computes bfloat16 natively, else float32)."""
    if name not in PRECISION_CHOICES:
        raise ValueError(f"--precision={name!r} is not one of {list(PRECISION_CHOICES)}")
    if name != "auto":
        return name, "chosen explicitly"
    return hardware.auto_precision(hardware.cpu_flags(), gpu_compute_capabilities())


def onednn_status():
    """'on' or 'off': whether TensorFlow runs its oneDNN CPU kernels, and who decided."""
    from tensorflow.python.util import _pywrap_util_port

    state = "on" if _pywrap_util_port.IsMklEnabled() else "off"
    value = os.environ.get(startup.ONEDNN_VARIABLE)
    if value is None:
        return f"{state} (TensorFlow's default on this CPU)"
    setter = "keras_dpnp" if startup.applied_settings.get(startup.ONEDNN_VARIABLE) else "the user"
    return f"{state} ({startup.ONEDNN_VARIABLE}={value}, set by {setter})"


@contextlib.contextmanager
def precision_policy(name):
    """Sets the global Keras dtype policy to `name` (one of `PRECISION_CHOICES`) while inside.

    Layers take the policy when they are created, so build the model inside. Under a mixed policy
    Keras wraps the optimizer of a `mixed_float16` model in `LossScaleOptimizer` at `compile`.
    """
    name, _ = resolve_precision(name)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
