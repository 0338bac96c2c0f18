"""Feature geometry against hand-computed values, and on tiny models."""

import math

import numpy as np
import pytest

from conftest import tiny_backbone, tiny_model
from keras_dpnp.evaluation import geometry
from keras_dpnp.heads import prototype_init_values
from keras_dpnp.model import AdvDPNP


def _on_a_simplex(num_classes=4, dim=6, radius=3.0, per_class=3):
    prototypes = radius * prototype_init_values("simplex", num_classes, dim, seed=2)
    labels = np.repeat(np.arange(num_classes), per_class)
    return prototypes[labels], labels, prototypes


def test_features_exactly_on_their_simplex_prototypes():
    features, labels, prototypes = _on_a_simplex()
    result = geometry.geometry_metrics(features, labels, prototypes)
    simplex = math.degrees(math.acos(-1 / 3))  # 109.47°
    assert result["separation"] == pytest.approx(
        {
            "between": "prototypes",
            "min_angle": simplex,
            "mean_angle": simplex,
            "simplex_angle": simplex,
        }
    )
    clean = result["clean"]
    assert clean["to_prototype"]["distance"] == pytest.approx(0, abs=1e-9)
    assert clean["to_prototype"]["cosine"] == pytest.approx(1)
    assert clean["to_class_mean"]["distance"] == pytest.approx(0, abs=1e-9)
    assert clean["feature_norm"] == pytest.approx(3.0)
    assert clean["class_mean_angles"]["min_angle"] == pytest.approx(simplex)
    assert clean["fisher_ratio"] is None  # no within-class scatter at all
    assert clean["silhouette"] == pytest.approx(1.0)
    assert "adversarial" not in result and "shift" not in result


def test_without_prototypes_class_means_are_the_anchors():
    features, labels, _ = _on_a_simplex(num_classes=3, dim=2)
    result = geometry.geometry_metrics(features + 5.0, labels)  # centring removes the offset
    assert result["anchors"] == "class means" and result["clean"]["to_prototype"] is None
    assert result["separation"]["min_angle"] == pytest.approx(120.0)
    assert result["separation"]["simplex_angle"] == pytest.approx(120.0)


def test_a_hand_computed_two_class_example():
    # Class 0 at (-2, ±1), class 1 at (2, ±1): means (∓2, 0), overall mean 0.
    features = np.array([[-2, 1], [-2, -1], [2, 1], [2, -1]], float)
    labels = np.array([0, 0, 1, 1])
    adversarial = features + [0.5, 0.0]
    result = geometry.geometry_metrics(features, labels, adversarial_features=adversarial)
    clean, attacked = result["clean"], result["adversarial"]
    assert clean["fisher_ratio"] == pytest.approx(16 / 4)  # between 4·2² / within 4·1²
    # Each point: 2 from its partner, (4 + √20) / 2 on average from the other class.
    b = (4 + math.sqrt(20)) / 2
    assert clean["silhouette"] == pytest.approx((b - 2) / b)
    assert clean["to_class_mean"] == pytest.approx({"distance": 1.0, "cosine": 2 / math.sqrt(5)})
    assert result["separation"]["min_angle"] == pytest.approx(180.0)
    # Attacked points are measured against the clean means: √(0.5² + 1²) away.
    assert attacked["to_class_mean"]["distance"] == pytest.approx(math.sqrt(1.25))
    assert attacked["fisher_ratio"] == pytest.approx(16 / 4)  # a shift moves no scatter
    cosines = [
        (3 + 1) / (math.sqrt(5) * math.sqrt(3.25)),
        (5 + 1) / (math.sqrt(5) * math.sqrt(7.25)),
    ]
    assert result["shift"] == pytest.approx(
        {"mean_distance": 0.5, "relative": 0.5 / math.sqrt(5), "cosine": np.mean(cosines)}
    )


def test_bad_features_are_refused():
    features, labels, prototypes = _on_a_simplex()
    with pytest.raises(ValueError, match=r"features must be \[N >= 2, d\]"):
        geometry.geometry_metrics(features[:, 0], labels)
    with pytest.raises(ValueError, match=r"prototypes must be \[K, 6\]"):
        geometry.geometry_metrics(features, labels, prototypes[:, :3])
    with pytest.raises(ValueError, match="labels must lie in 0..3"):
        geometry.geometry_metrics(features, labels + 1, prototypes)
    with pytest.raises(ValueError, match="must match the clean ones"):
        geometry.geometry_metrics(features, labels, prototypes, features[:5])
    with pytest.raises(ValueError, match="at least two classes"):
        geometry.geometry_metrics(features[:3], labels[:3])


@pytest.fixture(scope="module")
def digits_points():
    rng = np.random.default_rng(0)
    return rng.random((30, 8, 8, 1), dtype=np.float32), np.arange(30) % 10


def test_model_geometry_with_prototypes_and_embedding(digits_points):
    images, labels = digits_points
    model = tiny_model("adv_dpnp")
    result = geometry.feature_geometry(model, images, labels, epsilon=0.2, embedding_points=20)
    prototypes = np.asarray(model.class_vectors())
    assert result["anchors"] == "prototypes" and result["classes"] == 10
    assert result["attack"] == "PGD-20 (CE, step 0.025) at L∞ ε = 0.2"
    features = np.asarray(model.features(images))
    expected = np.mean(np.linalg.norm(features - prototypes[labels], axis=1))
    assert result["clean"]["to_prototype"]["distance"] == pytest.approx(expected, rel=1e-5)
    assert result["shift"]["mean_distance"] > 0
    embedding = result["embedding"]
    assert len(embedding["clean"]) == len(embedding["adversarial"]) == 20
    assert len(embedding["anchors"]) == 10 and embedding["anchor_classes"] == list(range(10))


def test_model_geometry_of_a_linear_head_and_errors(digits_points):
    images, labels = digits_points
    model = AdvDPNP(tiny_backbone(), 10, method="standard")
    result = geometry.feature_geometry(
        model, images, labels, adversarial_images=images, attack="none", embedding_points=0
    )
    assert result["anchors"] == "class means" and "embedding" not in result
    assert result["shift"]["mean_distance"] == pytest.approx(0, abs=1e-6)
    with pytest.raises(ValueError, match="pass adversarial_images, or epsilon"):
        geometry.feature_geometry(model, images, labels)
    with pytest.raises(ValueError, match="needs a model with a `backbone`"):
        geometry.feature_geometry(model.backbone, images, labels, adversarial_images=images)
