"""The serving computation every exported graph holds: images -> logits and probabilities."""

import tensorflow as tf

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
    return tf.function(lambda images: serving_outputs(model, images),
                       input_signature=input_signature(model))
