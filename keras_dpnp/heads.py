"""Classifier heads: class prototypes on a hypersphere, and the plain linear layer."""

import math

import keras
import numpy as np
from keras import ops

PROTOTYPE_INITS = ("random", "orthogonal", "simplex", "class_means")
LOGIT_FORMS = ("dot", "cosine")
# Head choices of a model; `auto` is the method's default (`Method.head_for`).
HEADS = ("auto", "prototype", "linear")


def prototype_init_values(kind, num_classes, dim, seed=0):
    """Initial prototype matrix [K, d] (unit rows) for a named initialisation.

    `random`: Gaussian directions. `orthogonal`: mutually orthogonal rows (needs d >= K).
    `simplex`: a regular simplex, every pair at the angle arccos(-1/(K-1)) (needs d >= K - 1).
    `class_means`: starts as `random`; training replaces the rows with the directions of the
    class means of the features after a warm-up (`PrototypeHead.set_to_class_means`).
    The orthogonal and simplex shapes are randomly rotated so no feature axis is privileged.
    """
    rng = np.random.default_rng(seed)
    if kind in ("random", "class_means"):
        values = rng.standard_normal((num_classes, dim))
    elif kind in ("orthogonal", "simplex"):
        needed = num_classes if kind == "orthogonal" else num_classes - 1
        if dim < needed:
            raise ValueError(
                f"prototype_init={kind!r} needs feature_dim >= {needed} for {num_classes} "
                f"classes, got {dim}; raise --feature_dim or use --prototype_init=random"
            )
        rotation, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
        if kind == "orthogonal":
            values = rotation[:num_classes]
        else:
            centred = np.eye(num_classes) - 1.0 / num_classes
            # The centred identity spans K-1 dimensions; an SVD gives those coordinates.
            u, s, _ = np.linalg.svd(centred)
            coords = u[:, : num_classes - 1] * s[: num_classes - 1]
            values = coords @ rotation[: num_classes - 1]
    else:
        raise ValueError(f"unknown prototype init {kind!r}; choose one of {PROTOTYPE_INITS}")
    return (values / np.linalg.norm(values, axis=1, keepdims=True)).astype("float32")


@keras.saving.register_keras_serializable(package="keras_dpnp")
class PrototypeHead(keras.layers.Layer):
    """One trainable prototype per class, used as `c_j = r * P_j / ||P_j||`.

    Logits are `z . c_j` (`dot`, the nearest-prototype rule for equal-norm prototypes) or
    `scale * cos(z, c_j)` (`cosine`). The head computes in float32 whatever the policy.
    """

    def __init__(
        self,
        num_classes,
        radius=4.0,
        logits="dot",
        scale=10.0,
        init="random",
        init_seed=0,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if not (math.isfinite(radius) and radius > 0):
            raise ValueError(f"radius must be a finite number > 0, got {radius}")
        if not math.isfinite(scale):
            raise ValueError(f"logit scale must be a finite number, got {scale}")
        if logits not in LOGIT_FORMS:
            raise ValueError(f"logits must be one of {LOGIT_FORMS}, got {logits!r}")
        if init not in PROTOTYPE_INITS:
            raise ValueError(f"init must be one of {PROTOTYPE_INITS}, got {init!r}")
        self.num_classes = int(num_classes)
        self.radius = float(radius)
        self.logit_form = logits
        self.scale = float(scale)
        self.init = init
        self.init_seed = int(init_seed)

    def build(self, input_shape):
        dim = int(input_shape[-1])
        values = prototype_init_values(self.init, self.num_classes, dim, self.init_seed)
        self.prototypes = self.add_weight(
            name="prototypes",
            shape=(self.num_classes, dim),
            initializer=keras.initializers.Constant(values),
            trainable=True,
        )

    def class_vectors(self):
        """The constrained prototypes `C` [K, d], every row of norm `radius`."""
        p = ops.convert_to_tensor(self.prototypes)
        return self.radius * p / ops.sqrt(ops.sum(ops.square(p), axis=1, keepdims=True) + 1e-12)

    def set_to_class_means(self, features, labels):
        """Points every prototype at the mean feature of its class; returns the K means.

        A class with no example keeps its prototype. Only the direction matters: the head
        rescales rows to `radius`.
        """
        features = np.asarray(features, np.float64)
        labels = np.asarray(labels)
        if features.ndim != 2 or features.shape[1] != self.prototypes.shape[1]:
            raise ValueError(
                f"features must be [N, {self.prototypes.shape[1]}], got {features.shape}"
            )
        values = np.array(keras.ops.convert_to_numpy(self.prototypes), np.float64)
        means = np.zeros_like(values)
        for k in range(self.num_classes):
            members = features[labels == k]
            if len(members):
                means[k] = members.mean(axis=0)
                norm = np.linalg.norm(means[k])
                if norm > 0:
                    values[k] = means[k] / norm
        self.prototypes.assign(values.astype("float32"))
        return means

    def logits_with(self, features, class_vectors):
        """Logits of `features` against given class vectors (e.g. a stop-gradient copy)."""
        z = ops.cast(features, "float32")
        if self.logit_form == "dot":
            return ops.matmul(z, ops.transpose(class_vectors))
        z_unit = z / ops.sqrt(ops.sum(ops.square(z), axis=1, keepdims=True) + 1e-12)
        return self.scale * ops.matmul(z_unit, ops.transpose(class_vectors)) / self.radius

    def call(self, features):
        return self.logits_with(features, self.class_vectors())

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.num_classes,)

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "radius": self.radius,
            "logits": self.logit_form,
            "scale": self.scale,
            "init": self.init,
            "init_seed": self.init_seed,
        }


@keras.saving.register_keras_serializable(package="keras_dpnp")
class LinearHead(keras.layers.Dense):
    """The usual linear classifier with bias (the literature baselines' head), in float32."""

    def __init__(self, num_classes, **kwargs):
        kwargs.setdefault("dtype", "float32")
        kwargs.pop("units", None)
        super().__init__(units=num_classes, **kwargs)
        self.num_classes = int(num_classes)

    def get_config(self):
        config = super().get_config()
        config["num_classes"] = config.pop("units")
        return config
