"""uint8 images (as `load_dataset` returns them) are scaled by 1/255, never taken as [0, 1]."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_model


@pytest.fixture
def uint8_batch():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (16, 8, 8, 1), dtype=np.uint8), rng.integers(0, 10, 16)


def test_call_and_predict_scale_uint8_images(uint8_batch):
    images, _ = uint8_batch
    model = tiny_model()
    expected = np.asarray(model(images.astype(np.float32) / 255.0))
    np.testing.assert_allclose(np.asarray(model(images)), expected, atol=1e-6)
    np.testing.assert_allclose(model.predict(images, verbose=0), expected, atol=1e-5)
    np.testing.assert_allclose(
        np.asarray(model.features(images)), np.asarray(model.features(images / 255.0)), atol=1e-6
    )


def test_integer_images_of_unknown_scale_are_refused(uint8_batch):
    images, _ = uint8_batch
    with pytest.raises(TypeError, match="images of dtype int32 have no known pixel scale"):
        tiny_model()(images.astype(np.int32))


def _fitted_weights(images, labels):
    keras.utils.set_random_seed(0)
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
    model.fit(dataset, epochs=1, verbose=0)
    return model.get_weights()


def test_fit_on_uint8_images_equals_fit_on_unit_range_images(uint8_batch):
    images, labels = uint8_batch
    from_uint8 = _fitted_weights(images, labels)
    from_float = _fitted_weights(images.astype(np.float32) / 255.0, labels)
    for a, b in zip(from_uint8, from_float):
        np.testing.assert_allclose(a, b, atol=1e-5)
