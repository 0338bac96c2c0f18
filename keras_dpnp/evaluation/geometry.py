"""Feature-space geometry of clean and adversarial test features (SPEC §5).

Features are the backbone's output `z`; anchors are the prototype head's class vectors
`c_j = r P_j / ‖P_j‖`, or, for a linear head (no prototypes), the clean class means. Measured:
compactness (Euclidean distance and cosine of each feature to its class's prototype and to its
class's clean mean; cosines are about the origin, as the head's logits are), separation (min
and mean angle between prototypes, or between globally centred class means, against the regular
simplex's arccos(−1/(K−1))), the Fisher ratio tr(S_B) / tr(S_W), the silhouette score, the mean
clean→adversarial feature shift, and a t-SNE embedding (`geometry_embedding`).
"""

import math

import keras
import numpy as np
import tensorflow as tf
from sklearn.metrics import silhouette_score

from keras_dpnp import figures
from keras_dpnp.attacks.pgd import PGDConfig, pgd
from keras_dpnp.evaluation.geometry_embedding import EMBEDDING_POINTS, tsne_embedding
from keras_dpnp.heads import PrototypeHead
from keras_dpnp.model import inference_function

SILHOUETTE_POINTS = 2000  # silhouette on a seeded sample beyond this many points (it is O(N²))
PGD_STEPS = 20


def simplex_angle(num_classes):
    """The pairwise angle (degrees) of K unit vectors forming a regular simplex."""
    return math.degrees(math.acos(-1.0 / (num_classes - 1)))


def pairwise_angles(vectors):
    """Min and mean angle (degrees) over all pairs of the rows of `vectors`."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    cosines = np.clip(unit @ unit.T, -1.0, 1.0)
    upper = np.degrees(np.arccos(cosines[np.triu_indices(len(vectors), k=1)]))
    return {"min_angle": float(upper.min()), "mean_angle": float(upper.mean())}


def _cosines(a, b):
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.sum(a * b, axis=1) / np.maximum(norms, 1e-12)


def _compactness(features, targets):
    return {
        "distance": float(np.mean(np.linalg.norm(features - targets, axis=1))),
        "cosine": float(np.mean(_cosines(features, targets))),
    }


def class_means(features, labels):
    """(classes present, their mean features [K, d])."""
    classes = np.unique(labels)
    return classes, np.stack([features[labels == k].mean(axis=0) for k in classes])


def fisher_ratio(features, labels):
    """tr(S_B) / tr(S_W): between-class over within-class scatter (None without any
    within-class scatter)."""
    classes, means = class_means(features, labels)
    counts = np.array([np.sum(labels == k) for k in classes])
    between = float(np.sum(counts * np.sum((means - features.mean(axis=0)) ** 2, axis=1)))
    within = float(np.sum((features - means[np.searchsorted(classes, labels)]) ** 2))
    return between / within if within > 0 else None


def _silhouette(features, labels, seed):
    if not 2 <= len(np.unique(labels)) <= len(labels) - 1:
        return None
    sample = SILHOUETTE_POINTS if len(labels) > SILHOUETTE_POINTS else None
    return float(silhouette_score(features, labels, sample_size=sample, random_state=seed))


def _set_metrics(features, labels, prototypes, anchor_classes, anchor_means, seed):
    classes, means = class_means(features, labels)
    metrics = {"feature_norm": float(np.mean(np.linalg.norm(features, axis=1)))}
    metrics["to_prototype"] = (
        None if prototypes is None else _compactness(features, prototypes[labels])
    )
    metrics["to_class_mean"] = _compactness(
        features, anchor_means[np.searchsorted(anchor_classes, labels)]
    )
    metrics["class_mean_angles"] = (
        pairwise_angles(means - features.mean(axis=0)) if len(classes) > 1 else None
    )
    metrics["fisher_ratio"] = fisher_ratio(features, labels)
    metrics["silhouette"] = _silhouette(features, labels, seed)
    return metrics


def geometry_metrics(features, labels, prototypes=None, adversarial_features=None, seed=0):
    """The geometry numbers of given features [N, d] with integer labels [N].

    `prototypes` [K, d] (row k: class k) or None (a linear head: class means take their
    place). `adversarial_features` [N, d] (the same points attacked) or None. Compactness of
    both sets is measured to the clean class means; the Fisher ratio, silhouette and
    class-mean angles of each set use that set's own means.
    """
    features = np.asarray(features, np.float64)
    labels = np.asarray(labels).astype(np.int64)
    if features.ndim != 2 or labels.shape != (len(features),) or len(features) < 2:
        raise ValueError(
            f"features must be [N >= 2, d] with one label each, got features "
            f"{features.shape} and labels {labels.shape}"
        )
    if prototypes is not None:
        prototypes = np.asarray(prototypes, np.float64)
        if prototypes.ndim != 2 or prototypes.shape[1] != features.shape[1]:
            raise ValueError(f"prototypes must be [K, {features.shape[1]}], got {prototypes.shape}")
        if labels.min() < 0 or labels.max() >= len(prototypes):
            raise ValueError(
                f"labels must lie in 0..{len(prototypes) - 1} (one prototype "
                f"each), got {labels.min()}..{labels.max()}"
            )
    anchor_classes, anchor_means = class_means(features, labels)
    if prototypes is not None:
        separated = prototypes
        between = "prototypes"
    else:
        separated = anchor_means - features.mean(axis=0)
        between = "class means"
    if len(separated) < 2:
        raise ValueError("geometry needs points of at least two classes")
    result = {
        "points": int(len(features)),
        "feature_dim": int(features.shape[1]),
        "classes": int(len(separated)),
        "anchors": between,
        "separation": {
            "between": between,
            **pairwise_angles(separated),
            "simplex_angle": simplex_angle(len(separated)),
        },
        "clean": _set_metrics(features, labels, prototypes, anchor_classes, anchor_means, seed),
    }
    if adversarial_features is not None:
        adversarial = np.asarray(adversarial_features, np.float64)
        if adversarial.shape != features.shape:
            raise ValueError(
                f"adversarial features must match the clean ones {features.shape}, "
                f"got {adversarial.shape}"
            )
        result["adversarial"] = _set_metrics(
            adversarial, labels, prototypes, anchor_classes, anchor_means, seed
        )
        shift = np.linalg.norm(adversarial - features, axis=1)
        norms = np.linalg.norm(features, axis=1)
        result["shift"] = {
            "mean_distance": float(shift.mean()),
            "relative": float(np.mean(shift / np.maximum(norms, 1e-12))),
            "cosine": float(np.mean(_cosines(features, adversarial))),
        }
    return result


def model_prototypes(model):
    """The prototype head's class vectors [K, d], or None if the model has no prototype head."""
    head = getattr(model, "head", None)
    return np.asarray(head.class_vectors()) if isinstance(head, PrototypeHead) else None


def model_features(model, images, batch_size=256):
    """Backbone features [N, d] (inference mode) of float images in [0, 1]."""
    backbone = getattr(model, "backbone", None)
    if backbone is None:
        raise ValueError(
            f"feature geometry needs a model with a `backbone` (images -> "
            f"features), such as keras_dpnp's AdvDPNP; got {type(model).__name__}"
        )
    chunks = [
        np.asarray(
            backbone(tf.constant(images[start : start + batch_size]), training=False), np.float64
        )
        for start in range(0, len(images), batch_size)
    ]
    return np.concatenate(chunks)


def _pgd_images(model, images, labels, epsilon, norm, step_size, seed, batch_size):
    config = PGDConfig(
        epsilon=epsilon, step_size=step_size, steps=PGD_STEPS, norm=norm, objective="ce"
    )
    seed_generator = keras.random.SeedGenerator(seed)
    craft = tf.function(
        lambda x, y: pgd(inference_function(model), x, y, config, seed_generator=seed_generator),
        reduce_retracing=True,
    )
    return np.concatenate(
        [
            craft(
                tf.constant(images[start : start + batch_size]),
                tf.constant(labels[start : start + batch_size]),
            ).numpy()
            for start in range(0, len(images), batch_size)
        ]
    )


def pgd_label(step_size, norm, epsilon):
    """How the geometry names its PGD-20 attack, e.g. `PGD-20 (CE, step 0.025) at L∞ ε = 0.2`."""
    radius = f"{figures.epsilon_label(norm)} = {epsilon:.4g}"
    return f"PGD-{PGD_STEPS} (CE, step {step_size:.4g}) at {radius}"


def feature_geometry(
    model,
    images,
    labels,
    *,
    adversarial_images=None,
    epsilon=None,
    norm="linf",
    step_size=None,
    attack=None,
    seed=0,
    batch_size=256,
    embedding_points=EMBEDDING_POINTS,
):
    """Geometry of the model's clean and adversarial test features, as a JSON-ready dict.

    Args:
        model: an AdvDPNP-like model: `model.backbone` gives features; a `PrototypeHead` at
            `model.head` gives the prototypes (otherwise class means stand in).
        images: float images [N, H, W, C] in [0, 1]; labels: int [N].
        adversarial_images: the same points attacked; None: PGD-20 (CE, random start) at
            `epsilon` (`norm`, `step_size`, default 2.5 ε / 20) crafts them.
        attack: a description of the attack that made `adversarial_images`, for the report.
        embedding_points: points (clean and adversarial each) in the t-SNE embedding; 0: none.
    """
    images = np.asarray(images, np.float32)
    labels = np.asarray(labels).astype(np.int64)
    if adversarial_images is None:
        if epsilon is None:
            raise ValueError("pass adversarial_images, or epsilon to craft them with PGD")
        step_size = step_size or 2.5 * epsilon / PGD_STEPS
        adversarial_images = _pgd_images(
            model, images, labels, float(epsilon), norm, step_size, seed, batch_size
        )
        attack = pgd_label(step_size, norm, epsilon)
    features = model_features(model, images, batch_size)
    adversarial = model_features(model, np.asarray(adversarial_images, np.float32), batch_size)
    prototypes = model_prototypes(model)
    result = geometry_metrics(features, labels, prototypes, adversarial, seed)
    result["attack"] = attack or "given adversarial images"
    if embedding_points:
        if prototypes is None:
            classes, anchors = class_means(features, labels)
        else:
            classes, anchors = np.arange(len(prototypes)), prototypes
        result["embedding"] = tsne_embedding(
            features, adversarial, labels, anchors, classes, points=embedding_points, seed=seed
        )
    return result
