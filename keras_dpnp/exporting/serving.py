"""The serving computation every exported graph holds (images -> logits and probabilities),
and the float32 copy of a mixed-precision model it is traced from."""

import keras
import tensorflow as tf

from keras_dpnp import compat

INPUT_NAME = "images"
OUTPUT_NAMES = ("logits", "probabilities")


def image_shape(model):
    """`(height, width, channels)` of the images `model` takes."""
    return tuple(int(size) for size in model.backbone.input_shape[1:])


def input_signature(model):
    """float32 images `[batch, H, W, C]` in [0, 1], any batch size."""
    return [tf.TensorSpec((None,) + image_shape(model), tf.float32, name=INPUT_NAME)]


def serving_outputs(model, images):
    """Inference-mode logits (float32) and their softmax, keyed by `OUTPUT_NAMES`."""
    logits = tf.cast(model(images, training=False), tf.float32)
    return {"logits": logits, "probabilities": tf.nn.softmax(logits)}


def serving_function(model):
    """`serving_outputs` traced once for any batch size."""
    return tf.function(
        lambda images: serving_outputs(model, images), input_signature=input_signature(model)
    )


def compute_dtypes(model):
    """The compute dtypes of all of `model`'s layers."""
    return {layer.dtype_policy.compute_dtype for layer in compat.all_layers(model)}


def _float32_policies(value):
    if isinstance(value, dict):
        if value.get("class_name") == "DTypePolicy" and value["config"]["name"].startswith(
            "mixed_"
        ):
            return {**value, "config": {**value["config"], "name": "float32"}}
        return {key: _float32_policies(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_float32_policies(item) for item in value]
    return value


def float32_copy(model):
    """`model` itself if it computes in float32 throughout, else a float32 copy of it.

    The copy has the same weights (mixed policies keep variables in float32), so it is the
    same function evaluated without float16/bfloat16 rounding; onnxruntime cannot run a
    bfloat16 graph on CPU, and TF Serving clients expect float32.
    """
    if compute_dtypes(model) == {"float32"}:
        return model
    config = _float32_policies(keras.saving.serialize_keras_object(model))
    copy = keras.saving.deserialize_keras_object(config)
    copy.set_weights(model.get_weights())
    return copy
