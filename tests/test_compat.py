"""The private TensorFlow/Keras APIs of `keras_dpnp.compat` still behave as relied on.

A failure here means an upgrade changed one of them: the message names which, and
`keras_dpnp/compat.py` is the one place to adapt.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_dpnp import compat

UPGRADE = "a TensorFlow/Keras upgrade changed {}; adapt keras_dpnp/compat.py"


def _functional():
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(4, name="hidden")(inputs)
    outputs = keras.layers.Dense(2, name="out")(keras.layers.ReLU(name="relu")(hidden))
    return keras.Model(inputs, outputs)


def test_multi_worker_mode_is_readable_from_the_strategy():
    # Creating a MultiWorkerMirroredStrategy here would fix this process's devices;
    # tests/training/test_distribute.py runs one across two worker processes.
    from tensorflow.python.distribute import collective_all_reduce_strategy as collective

    assert tf.distribute.MultiWorkerMirroredStrategy is collective.CollectiveAllReduceStrategy
    assert callable(
        getattr(collective.CollectiveAllReduceExtended, "_in_multi_worker_mode", None)
    ), UPGRADE.format("the strategy's _in_multi_worker_mode()")
    assert compat.in_multi_worker_mode(tf.distribute.get_strategy()) is False
    assert compat.in_multi_worker_mode(tf.distribute.OneDeviceStrategy("/cpu:0")) is False


def test_all_layers_lists_nested_layers():
    assert hasattr(keras.layers.Layer, "_flatten_layers"), UPGRADE.format("Layer._flatten_layers")
    inner = _functional()
    outer = keras.Sequential([keras.Input((3,)), inner, keras.layers.Dense(1, name="top")])
    names = {layer.name for layer in compat.all_layers(outer)}
    assert {outer.name, inner.name, "hidden", "relu", "out", "top"} <= names, UPGRADE.format(
        "Layer._flatten_layers (nested layers missing)"
    )


def test_run_through_graph_calls_the_given_operation_for_each_layer():
    model = _functional()
    assert compat.can_run_through_graph(model), UPGRADE.format("Functional._run_through_graph")
    assert not compat.can_run_through_graph(keras.layers.Dense(2))
    x = np.random.default_rng(0).random((5, 3)).astype("float32")
    seen = []

    def operation_fn(layer):
        seen.append(layer.name)
        if layer.name == "relu":
            return lambda inputs, **_: -inputs  # a replaced operation must take effect
        return layer

    try:
        replaced = compat.run_through_graph(model, tf.constant(x), operation_fn)
    except TypeError as error:
        pytest.fail(UPGRADE.format(f"Functional._run_through_graph's signature ({error})"))
    assert seen == ["hidden", "relu", "out"], UPGRADE.format("Functional._run_through_graph")
    hidden = model.get_layer("hidden")(x)
    expected = model.get_layer("out")(-hidden)
    np.testing.assert_allclose(np.asarray(replaced), np.asarray(expected), rtol=1e-6)
