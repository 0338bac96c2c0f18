"""The folded inference pass computes the backbone's inference pass and its input gradient."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from input_gradients import value_and_input_gradient

from keras_dpnp.backbones import build_backbone
from keras_dpnp.backbones.folding import FoldedInference
from keras_dpnp.backbones.fused_batch_norm import FusedBatchNormalization
from keras_dpnp.training import distribute

# (backbone, options, convolutions followed only by a BatchNorm)
BACKBONES = [
    ("small_cnn", {"width": 0.25}, 3),
    ("resnet18", {"width": 0.125}, 20),
    ("preact_resnet18", {"width": 0.125}, 8),
    ("wide_resnet34_10", {"widen_factor": 1}, 15),
]


def _randomise_batchnorms(model, rng):
    """Moving statistics and affine parameters far from the identity, so folding matters."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0.0, 1.0, channels))
            layer.moving_variance.assign(rng.uniform(0.2, 3.0, channels))
            layer.gamma.assign(rng.normal(1.0, 0.3, channels))
            layer.beta.assign(rng.normal(0.0, 0.3, channels))


def _assert_folded_pass_matches(backbone, folding, rng):
    """Values and input gradients of the folded pass against the layers', inference mode."""
    images = tf.constant(rng.random((4, *backbone.input_shape[1:])), tf.float32)
    probe = tf.constant(rng.normal(size=(4, backbone.output_shape[-1])), tf.float32)
    weights = folding.folded_weights()
    expected = value_and_input_gradient(lambda x: backbone(x, training=False), images, probe)
    got = value_and_input_gradient(lambda x: folding(x, weights), images, probe)
    for want, have in zip(expected, got):
        assert np.abs(want).max() > 0
        np.testing.assert_allclose(have, want, atol=2e-5 * np.abs(want).max())


def _cosine(a, b):
    return float(np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b)))


@pytest.mark.parametrize("name,options,folded", BACKBONES)
def test_folded_pass_matches_inference_pass(name, options, folded):
    rng = np.random.default_rng(0)
    backbone = build_backbone(name, (16, 16, 3), mean=0.5, std=0.25, **options)
    _randomise_batchnorms(backbone, rng)
    folding = FoldedInference.of(backbone)
    assert len(folding.folded_layers) == folded
    _assert_folded_pass_matches(backbone, folding, rng)


@pytest.mark.parametrize("name,options,folded", BACKBONES[:2])
def test_bfloat16_folded_pass_is_as_accurate_as_the_layers(name, options, folded):
    """Against the float32 result, folding's bfloat16 rounding is no worse than the layers' own.

    (Elementwise comparison between two bfloat16 passes fails by design: a ReLU input near
    zero rounds to either side.)"""
    rng = np.random.default_rng(0)
    reference = build_backbone(name, (16, 16, 3), mean=0.5, std=0.25, **options)
    _randomise_batchnorms(reference, rng)
    with distribute.precision_policy("mixed_bfloat16"):
        backbone = build_backbone(name, (16, 16, 3), mean=0.5, std=0.25, **options)
    backbone.set_weights(reference.get_weights())
    folding = FoldedInference.of(backbone)
    weights = folding.folded_weights()
    images = tf.constant(rng.random((4, 16, 16, 3)), tf.float32)
    probe = tf.constant(rng.normal(size=(4, backbone.output_shape[-1])), tf.float32)
    exact = value_and_input_gradient(lambda x: reference(x, training=False), images, probe)
    layers = value_and_input_gradient(lambda x: backbone(x, training=False), images, probe)
    folded_ = value_and_input_gradient(lambda x: folding(x, weights), images, probe)
    for index in range(2):
        assert _cosine(folded_[index], exact[index]) > _cosine(layers[index], exact[index]) - 0.02
    assert _cosine(folded_[0], exact[0]) > 0.999


def test_batchnorm_options_fold_exactly():
    rng = np.random.default_rng(1)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(6, 3, use_bias=True, name="biased")(inputs)
    x = keras.layers.BatchNormalization(epsilon=1e-3, center=False, name="no_beta")(x)
    x = keras.layers.Conv2D(5, 3, strides=2, padding="same", name="strided")(x)
    x = FusedBatchNormalization(scale=False, name="no_gamma")(x)
    model = keras.Model(inputs, x)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(size=layer.moving_mean.shape))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, layer.moving_variance.shape))
    model.get_layer("biased").bias.assign(rng.normal(size=6))
    folding = FoldedInference.of(model)
    assert folding.folded_layers == {"biased": "no_beta", "strided": "no_gamma"}
    images = rng.random((2, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(
        folding(images, folding.folded_weights()), model(images, training=False), atol=1e-5
    )


def test_convolutions_read_elsewhere_or_activated_are_left_alone():
    inputs = keras.Input((8, 8, 3))
    shared = keras.layers.Conv2D(4, 3, padding="same", name="read_twice")(inputs)
    normalised = keras.layers.BatchNormalization(name="bn_a")(shared)
    x = keras.layers.Add()([normalised, shared])
    x = keras.layers.Conv2D(4, 3, activation="relu", name="activated")(x)
    x = keras.layers.BatchNormalization(name="bn_b")(x)
    x = keras.layers.Conv2D(4, 1, name="plain")(x)
    x = keras.layers.BatchNormalization(name="bn_c")(x)
    folding = FoldedInference.of(keras.Model(inputs, x))
    assert folding.folded_layers == {"plain": "bn_c"}


def test_models_without_a_foldable_pair_give_none():
    sequential = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.BatchNormalization()]
    )
    assert FoldedInference.of(sequential) is None
    inputs = keras.Input((8, 8, 3))
    no_batchnorm = keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs))
    assert FoldedInference.of(no_batchnorm) is None


@pytest.mark.parametrize(
    "precision,expected",
    [
        ("float32", {"stage4_block1_conv2", "stage4_block2_conv1", "stage4_block2_conv2"}),
        ("mixed_bfloat16", set()),
    ],
)
def test_winograd_form_for_float32_maps_of_at_most_16_pixels(precision, expected):
    """On a CPU; ResNet-18 on 32×32 images has 4×4 maps in its last stage only."""
    with distribute.precision_policy(precision):
        backbone = build_backbone("resnet18", (32, 32, 3), mean=0.5, std=0.25, width=0.125)
    assert FoldedInference.of(backbone).winograd_layers == expected


@pytest.mark.parametrize("precision,expected", [("float32", {"conv1"}), ("mixed_bfloat16", set())])
def test_single_channel_form_for_float32_grayscale_input(precision, expected):
    """On a CPU: only the first convolution reads a one-channel map."""
    with distribute.precision_policy(precision):
        backbone = build_backbone("small_cnn", (8, 8, 1), mean=0.5, std=0.25, width=0.25)
    assert FoldedInference.of(backbone).single_channel_layers == expected


@pytest.mark.parametrize(
    "threads,cores,expected", [(1, 2, True), (0, 1, True), (2, 2, False), (0, 2, False)]
)
def test_the_attack_pass_pads_first_on_one_thread(monkeypatch, threads, cores, expected):
    monkeypatch.setattr(tf.config.threading, "get_intra_op_parallelism_threads", lambda: threads)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)))
    backbone = build_backbone("small_cnn", (8, 8, 1), mean=0.5, std=0.25, width=0.25)
    folding = FoldedInference.of(backbone)
    assert folding.pads_first is expected
    weights = folding.folded_weights()
    spec = tf.TensorSpec((2, 8, 8, 1), tf.float32)
    graph = tf.function(lambda x: folding(x, weights)).get_concrete_function(spec).graph
    assert any(op.type == "Pad" for op in graph.get_operations()) is expected


def test_without_affinity_the_core_count_decides(monkeypatch):
    """macOS and Windows have no `os.sched_getaffinity`."""
    monkeypatch.setattr(tf.config.threading, "get_intra_op_parallelism_threads", lambda: 0)
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    backbone = build_backbone("small_cnn", (8, 8, 1), mean=0.5, std=0.25, width=0.25)
    assert FoldedInference.of(backbone).pads_first


@pytest.mark.parametrize("threads", [1, 2])
def test_folded_pass_of_a_grayscale_backbone_matches_inference_pass(monkeypatch, threads):
    """The one-channel input gradient, with the strided layers padded first (one thread) or
    with the padding inside the kernel."""
    monkeypatch.setattr(tf.config.threading, "get_intra_op_parallelism_threads", lambda: threads)
    rng = np.random.default_rng(3)
    backbone = build_backbone("small_cnn", (12, 12, 1), mean=0.5, std=0.25, width=0.25)
    _randomise_batchnorms(backbone, rng)
    folding = FoldedInference.of(backbone)
    assert folding.single_channel_layers and folding.pads_first is (threads == 1)
    _assert_folded_pass_matches(backbone, folding, rng)
