"""A forward pass's value and its input gradient, for comparing two ways of computing one."""

import tensorflow as tf


def value_and_input_gradient(forward, x, probe):
    """(forward(x), d/dx of sum(forward(x) · probe)) as float32 NumPy arrays."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = tf.cast(forward(x), tf.float32)
        objective = tf.reduce_sum(value * probe)
    return value.numpy(), tape.gradient(objective, x).numpy()
