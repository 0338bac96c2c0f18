"""Tests for `keras_dpnp.backbones`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_dpnp.backbones import BACKBONES, PixelNormalization, build_backbone

MEAN = (0.5, 0.4, 0.3)
STD = (0.2, 0.25, 0.3)
IMAGE_SHAPE = (16, 16, 3)

# Smallest configuration of each backbone: (body kwargs, pooled body width).
TINY = {
    "small_cnn": ({"width": 0.125}, 32),
    "resnet18": ({"width": 0.125}, 64),
    "preact_resnet18": ({"width": 0.125}, 64),
    "wide_resnet34_10": ({"depth": 10, "widen_factor": 1}, 64),
}

# Trainable parameters of the bodies in their PyTorch reference
# implementations (conv kernels, BN gamma/beta), classifier excluded.
RESNET18_CIFAR_BODY_PARAMS = 11_168_832
WRN_34_10_BODY_PARAMS = 46_154_064


def build_tiny(name, **kwargs):
    body_kwargs, _ = TINY[name]
    return build_backbone(name, IMAGE_SHAPE, mean=MEAN, std=STD, **body_kwargs, **kwargs)


def random_images(count=4, shape=IMAGE_SHAPE, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(size=(count, *shape)).astype("float32")


def features_of(model, images):
    return keras.ops.convert_to_numpy(model(images, training=False))


def trainable_params(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.fixture
def mixed_bfloat16():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    yield
    keras.config.set_dtype_policy(previous)


def test_tiny_configurations_cover_every_backbone():
    assert set(TINY) == set(BACKBONES)


@pytest.mark.parametrize("name", BACKBONES)
def test_linear_projection_shape_and_sign(name):
    keras.utils.set_random_seed(0)
    features = features_of(build_tiny(name, feature_dim=7), random_images())
    assert tuple(features.shape) == (4, 7)
    assert np.min(features) < 0


@pytest.mark.parametrize("name", BACKBONES)
def test_relu_projection_is_non_negative(name):
    keras.utils.set_random_seed(0)
    model = build_tiny(name, feature_dim=5, feature_activation="relu")
    features = features_of(model, random_images())
    assert tuple(features.shape) == (4, 5)
    assert np.min(features) >= 0


@pytest.mark.parametrize("name", BACKBONES)
def test_no_projection_returns_pooled_post_relu_features(name):
    model = build_tiny(name, feature_dim=None)
    features = features_of(model, random_images())
    assert tuple(features.shape) == (4, TINY[name][1])
    assert np.min(features) >= 0
    assert "projection" not in [layer.name for layer in model.layers]


@pytest.mark.parametrize("name", BACKBONES)
def test_keras_file_round_trip_gives_identical_outputs(name, tmp_path):
    keras.utils.set_random_seed(1)
    model = build_tiny(name, feature_dim=6)
    images = random_images()
    model(images, training=True)  # moves the BN statistics off their defaults
    path = tmp_path / f"{name}.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_array_equal(features_of(restored, images), features_of(model, images))


class _Classifier(keras.Model):
    def __init__(self, backbone, classes, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.head = keras.layers.Dense(classes)

    def call(self, images, training=False):
        return self.head(self.backbone(images, training=training))


@pytest.mark.parametrize("name", BACKBONES)
def test_backbone_trains_inside_a_subclassed_model(name):
    backbone = build_tiny(name, feature_dim=8)
    classifier = _Classifier(backbone, classes=3)
    images = random_images()
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(classifier(images, training=True)))
    gradients = tape.gradient(loss, classifier.trainable_weights)
    head_weights = 2
    assert len(classifier.trainable_weights) == (len(backbone.trainable_weights) + head_weights)
    assert all(gradient is not None for gradient in gradients)


def test_layer_names_carry_the_prefix():
    model = build_backbone(
        "small_cnn",
        (8, 8, 1),
        mean=0.5,
        std=0.5,
        width=0.125,
        name_prefix="teacher",
    )
    assert model.name == "teacher_small_cnn"
    assert all(layer.name.startswith("teacher_") for layer in model.layers)


def test_input_channels_must_match_mean():
    with pytest.raises(ValueError, match="mean"):
        build_backbone("small_cnn", (8, 8, 1), mean=MEAN, std=0.5)


def test_unknown_backbone_lists_the_known_ones():
    with pytest.raises(ValueError) as error:
        build_backbone("vgg16", IMAGE_SHAPE, mean=MEAN, std=STD)
    assert all(name in str(error.value) for name in BACKBONES)


@pytest.mark.parametrize("feature_dim", [0, -3, 2.5, True])
def test_bad_feature_dim_is_rejected(feature_dim):
    with pytest.raises(ValueError, match="feature_dim"):
        build_tiny("small_cnn", feature_dim=feature_dim)


def test_activation_without_projection_is_rejected():
    with pytest.raises(ValueError, match="feature_activation"):
        build_tiny("small_cnn", feature_dim=None, feature_activation="relu")


@pytest.mark.parametrize("depth", [15, 9, 4])
def test_wide_resnet_rejects_bad_depth(depth):
    with pytest.raises(ValueError, match="depth"):
        build_backbone("wide_resnet34_10", IMAGE_SHAPE, mean=MEAN, std=STD, depth=depth)


def test_resnet18_body_has_the_reference_parameter_count():
    model = build_backbone("resnet18", (32, 32, 3), mean=MEAN, std=STD, feature_dim=None)
    assert trainable_params(model) == pytest.approx(RESNET18_CIFAR_BODY_PARAMS, rel=0.01)


def test_wide_resnet34_10_body_has_the_reference_parameter_count():
    model = build_backbone("wide_resnet34_10", (32, 32, 3), mean=MEAN, std=STD, feature_dim=None)
    assert trainable_params(model) == pytest.approx(WRN_34_10_BODY_PARAMS, rel=0.02)


def test_pixel_normalization_exact_values():
    layer = PixelNormalization(mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 2.0))
    images = np.array([[[[1.0, 0.75, 1.0], [0.0, 0.0, 0.5]]]], dtype="float32")
    expected = [[[[1.0, 2.0, 0.5], [-1.0, -1.0, 0.25]]]]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(images)), expected)
    assert not layer.weights


def test_pixel_normalization_broadcasts_scalars():
    layer = PixelNormalization(mean=0.5, std=0.25)
    images = np.array([[[[0.0, 0.5, 1.0]]]], dtype="float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(images)), [[[[-2.0, 0.0, 2.0]]]])


def test_pixel_normalization_config_round_trip():
    layer = PixelNormalization(np.array(MEAN), STD, name="normalize")
    config = layer.get_config()
    assert config["mean"] == list(MEAN)
    assert all(type(value) is float for value in config["mean"] + config["std"])
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(restored, PixelNormalization)
    assert restored.name == "normalize"
    images = random_images(count=2, shape=(2, 2, 3))
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(restored(images)),
        keras.ops.convert_to_numpy(layer(images)),
    )


@pytest.mark.parametrize("std", [0.0, -1.0, (0.2, 0.0, 0.2), float("nan")])
def test_pixel_normalization_rejects_non_positive_std(std):
    with pytest.raises(ValueError, match="std"):
        PixelNormalization(mean=0.5, std=std)


def test_pixel_normalization_stays_float32_under_mixed_bfloat16(mixed_bfloat16):
    layer = PixelNormalization(MEAN, STD)
    images = random_images(count=2, shape=(2, 2, 3))
    normalized = layer(images)
    assert keras.backend.standardize_dtype(normalized.dtype) == "float32"
    expected = (images - np.array(MEAN)) / np.array(STD)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(normalized), expected, rtol=1e-6, atol=1e-6
    )


def test_backbone_under_mixed_bfloat16(mixed_bfloat16):
    model = build_tiny("small_cnn", feature_dim=4)
    features = model(random_images(), training=False)
    assert keras.backend.standardize_dtype(features.dtype) == "bfloat16"
    features = keras.ops.convert_to_numpy(keras.ops.cast(features, "float32"))
    assert np.all(np.isfinite(features))
