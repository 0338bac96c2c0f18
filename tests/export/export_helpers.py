"""Tiny models of every backbone and head, and independent reloads of exported artefacts."""

import os

import keras
import numpy as np
import onnxruntime
import tensorflow as tf

from keras_dpnp.attacks.pgd import PGDConfig, pgd
from keras_dpnp.backbones import build_backbone
from keras_dpnp.model import AdvDPNP

BACKBONE_OPTIONS = {
    "small_cnn": {"width": 0.125},
    "resnet18": {"width": 0.125},
    "preact_resnet18": {"width": 0.125},
    "wide_resnet34_10": {"depth": 10, "widen_factor": 1},
}
# head name -> AdvDPNP keyword arguments.
HEADS = {
    "prototype_dot": {"method": "adv_dpnp", "logits": "dot"},
    "prototype_cosine": {"method": "adv_dpnp", "logits": "cosine"},
    "linear": {"method": "trades"},
}
ATTACK = {"epsilon": 0.1, "step_size": 0.025, "steps": 2}


def tiny_model(backbone="small_cnn", head="prototype_dot", image_shape=(8, 8, 1)):
    channels = image_shape[-1]
    features = build_backbone(
        backbone,
        image_shape,
        mean=(0.5,) * channels,
        std=(0.25,) * channels,
        feature_dim=8,
        **BACKBONE_OPTIONS[backbone],
    )
    return AdvDPNP(features, 10, attack=ATTACK, **HEADS[head])


def fresh_inputs(model, count=5, seed=1):
    """Fresh clean images and PGD examples (not the exporter's own probes)."""
    shape = tuple(model.backbone.input_shape[1:])
    clean = np.random.default_rng(seed).random((count, *shape), dtype=np.float32)
    labels = np.argmax(np.asarray(model(clean)), axis=1)
    attack = PGDConfig(epsilon=0.1, step_size=0.025, steps=5)
    # Traced: eager ResNet filter gradients crash TF's oneDNN build for odd batch sizes.
    adversarial = tf.function(
        lambda x, y: pgd(lambda images: model(images, training=False), x, y, attack)
    )(clean, labels)
    return {"clean": clean, "adversarial": np.asarray(adversarial)}


def reload_saved_model(export_dir, version=1):
    loaded = tf.saved_model.load(os.path.join(export_dir, "saved_model", str(version)))

    def run(images):
        outputs = loaded.signatures["serving_default"](images=tf.constant(images))
        return {name: value.numpy() for name, value in outputs.items()}

    return run


def reload_onnx(export_dir):
    session = onnxruntime.InferenceSession(
        os.path.join(export_dir, "model.onnx"), providers=["CPUExecutionProvider"]
    )

    def run(images):
        logits, probabilities = session.run(["logits", "probabilities"], {"images": images})
        return {"logits": logits, "probabilities": probabilities}

    return run


def reload_keras(export_dir):
    model = keras.saving.load_model(os.path.join(export_dir, "model.keras"))
    return lambda images: {"logits": np.asarray(model(images, training=False))}
