"""The private TensorFlow and Keras APIs keras_dpnp relies on, each behind one function.

No public API offers these; `tests/test_compat.py` checks each one against the installed
versions, so an upgrade that changes them fails there, by name, before anything else breaks.
"""

import tensorflow as tf


def in_multi_worker_mode(strategy):
    """Whether `strategy` is a `MultiWorkerMirroredStrategy` spanning several workers.

    Uses `strategy.extended._in_multi_worker_mode()`.
    """
    return (
        isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        and strategy.extended._in_multi_worker_mode()
    )


def all_layers(model):
    """Every layer of `model`, nested ones included, and `model` itself.

    Uses `Layer._flatten_layers()`.
    """
    return list(model._flatten_layers())


def can_run_through_graph(model):
    """Whether `model` is a functional model that `run_through_graph` can execute."""
    return hasattr(model, "_run_through_graph")


def run_through_graph(model, inputs, operation_fn):
    """Runs the functional `model` on `inputs`, calling `operation_fn(layer)(*args, **kwargs)`
    in place of each layer.

    Uses `Functional._run_through_graph`, Keras's own loop over a functional graph.
    """
    return model._run_through_graph(inputs, operation_fn=operation_fn)
