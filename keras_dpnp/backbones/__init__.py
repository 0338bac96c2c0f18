"""Image backbones: pixels in [0, 1] -> feature vectors `z`."""

import numbers

import keras
from keras import layers

from keras_dpnp.backbones.normalization import PixelNormalization
from keras_dpnp.backbones.resnet import preact_resnet18_features, resnet18_features
from keras_dpnp.backbones.small_cnn import small_cnn_features
from keras_dpnp.backbones.wide_resnet import wide_resnet_features

BACKBONES = ("small_cnn", "resnet18", "preact_resnet18", "wide_resnet34_10")

_FEATURE_EXTRACTORS = {
    "small_cnn": small_cnn_features,
    "resnet18": resnet18_features,
    "preact_resnet18": preact_resnet18_features,
    "wide_resnet34_10": wide_resnet_features,
}


def build_backbone(
    name,
    input_shape,
    *,
    mean,
    std,
    feature_dim=128,
    feature_activation=None,
    name_prefix=None,
    **kwargs,
):
    """Builds a functional model mapping images in [0, 1] to features.

    Layers: `PixelNormalization(mean, std)`, the body, global average
    pooling (inside the body), then the feature output.

    Args:
        name: one of `BACKBONES`.
        input_shape: `(height, width, channels)` of the images.
        mean: per-channel (or scalar) pixel mean.
        std: per-channel (or scalar) pixel standard deviation.
        feature_dim: width `d` of a final `Dense` projection. `None` skips
            the projection: `z` is then the pooled body output, which is
            post-ReLU (non-negative) for every backbone here.
        feature_activation: activation of the projection; the default `None`
            keeps it linear so that features can point in any direction.
        name_prefix: prepended, with `_`, to the model's and every layer's
            name, so several backbones can live in one model.
        **kwargs: passed to the body, e.g. `width` (channel multiplier) for
            `small_cnn`, `resnet18` and `preact_resnet18`, `depth` and
            `widen_factor` for `wide_resnet34_10`, and for every body
            `sync_batchnorm=True` to share batch statistics across the
            replicas of a `tf.distribute` strategy.

    Returns:
        A functional `keras.Model` from `[N, H, W, C]` images to `[N, d]`.
    """
    if name not in _FEATURE_EXTRACTORS:
        raise ValueError(f"Unknown backbone {name!r}; expected one of {BACKBONES}.")
    if feature_dim is None:
        if feature_activation is not None:
            raise ValueError(
                "`feature_activation` needs a projection; got feature_dim=None "
                f"and feature_activation={feature_activation!r}."
            )
    elif (
        isinstance(feature_dim, bool)
        or not isinstance(feature_dim, numbers.Integral)
        or feature_dim <= 0
    ):
        raise ValueError(f"`feature_dim` must be a positive integer or None, got {feature_dim!r}.")
    prefix = f"{name_prefix}_" if name_prefix else ""
    images = keras.Input(shape=tuple(input_shape), name=f"{prefix}images")
    x = PixelNormalization(mean, std, name=f"{prefix}pixel_normalization")(images)
    features = _FEATURE_EXTRACTORS[name](x, prefix=prefix, **kwargs)
    if feature_dim is not None:
        features = layers.Dense(
            int(feature_dim),
            activation=feature_activation,
            name=f"{prefix}projection",
        )(features)
    return keras.Model(images, features, name=f"{prefix}{name}")


__all__ = ["BACKBONES", "PixelNormalization", "build_backbone"]
