"""Models the evaluation tests share: one standard-trained tiny digits CNN, and masked copies."""

import functools

import keras
import tensorflow as tf

from conftest import tiny_model
from keras_dpnp.data import load_dataset, make_dataset


@functools.lru_cache(maxsize=1)
def standard_digits_model():
    """(model, 150 test images uint8, their labels): tiny CNN, 8 epochs of Adam, ~95 % clean."""
    keras.utils.set_random_seed(0)
    splits = load_dataset("digits")
    model = tiny_model("standard")
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(
        make_dataset(*splits.train, batch_size=64, training=True),
        epochs=8,
        shuffle=False,
        verbose=0,
    )
    images, labels = splits.test
    return model, images[:150], labels[:150]


class Quantised(keras.Model):
    """Rounds its input to 4 grey levels first: every input gradient is exactly zero."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def call(self, x, training=False):
        return self.inner(tf.round(x * 3.0) / 3.0, training=training)


class Saturated(keras.Model):
    """Multiplies the logits by 10⁴: softmax saturates and cross-entropy gradients underflow."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def call(self, x, training=False):
        return 1e4 * self.inner(x, training=training)
