import keras
import numpy as np
import pytest

from keras_dpnp.heads import LinearHead, PrototypeHead, prototype_init_values


def test_prototypes_lie_on_the_sphere_of_radius_r():
    head = PrototypeHead(5, radius=3.0)
    head.build((None, 7))
    head.prototypes.assign(np.random.default_rng(1).normal(size=(5, 7)) * 10)
    norms = np.linalg.norm(np.asarray(head.class_vectors()), axis=1)
    np.testing.assert_allclose(norms, 3.0, rtol=1e-5)


def test_dot_logits_rank_like_negative_squared_distance():
    head = PrototypeHead(4, radius=2.0)
    head.build((None, 3))
    z = np.random.default_rng(2).normal(size=(6, 3)).astype("float32")
    logits = np.asarray(head(z))
    c = np.asarray(head.class_vectors())
    neg_dist = -0.5 * ((z[:, None, :] - c[None]) ** 2).sum(-1)
    # The difference is the same for every class, so softmax and argmax agree.
    offset = logits - neg_dist
    np.testing.assert_allclose(offset, offset[:, :1].repeat(4, 1), atol=1e-5)


def test_cosine_logits_are_scaled_cosines():
    head = PrototypeHead(3, radius=5.0, logits="cosine", scale=7.0)
    head.build((None, 4))
    z = np.random.default_rng(3).normal(size=(2, 4)).astype("float32")
    c = np.asarray(head.class_vectors())
    expected = 7.0 * (z / np.linalg.norm(z, axis=1, keepdims=True)) @ (c / 5.0).T
    np.testing.assert_allclose(np.asarray(head(z)), expected, rtol=1e-5)


@pytest.mark.parametrize("kind,expected_cos", [("orthogonal", 0.0), ("simplex", -1 / 9)])
def test_structured_inits_have_their_angles(kind, expected_cos):
    p = prototype_init_values(kind, 10, 16, seed=4)
    cos = p @ p.T
    off = cos[~np.eye(10, dtype=bool)]
    np.testing.assert_allclose(off, expected_cos, atol=1e-5)
    np.testing.assert_allclose(np.diag(cos), 1.0, atol=1e-5)


def test_simplex_needs_enough_dimensions():
    with pytest.raises(ValueError, match="feature_dim >= 9"):
        prototype_init_values("simplex", 10, 8)


def test_heads_round_trip_through_config():
    head = PrototypeHead(3, radius=2.5, logits="cosine", scale=4.0, init="orthogonal")
    clone = PrototypeHead.from_config(head.get_config())
    assert (clone.radius, clone.logit_form, clone.scale, clone.init) == (
        2.5,
        "cosine",
        4.0,
        "orthogonal",
    )
    linear = LinearHead.from_config(LinearHead(6).get_config())
    assert linear.num_classes == 6 and linear.use_bias


def test_bad_radius_is_rejected():
    with pytest.raises(ValueError, match="radius must be a finite number > 0"):
        PrototypeHead(3, radius=0.0)


def test_head_computes_in_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        head = PrototypeHead(3)
        head.build((None, 4))
        assert head(np.ones((1, 4), "float32")).dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_set_to_class_means_points_each_prototype_at_its_class_mean():
    head = PrototypeHead(3, radius=2.0, init="class_means")
    head.build((None, 2))
    before = np.asarray(head.prototypes).copy()
    features = np.array([[3.0, 0.0], [1.0, 0.0], [0.0, -4.0], [0.0, -2.0]])
    labels = np.array([0, 0, 1, 1])
    means = head.set_to_class_means(features, labels)
    np.testing.assert_allclose(means[:2], [[2.0, 0.0], [0.0, -3.0]])
    c = np.asarray(head.class_vectors())
    np.testing.assert_allclose(c[:2], [[2.0, 0.0], [0.0, -2.0]], atol=1e-6)
    np.testing.assert_allclose(np.asarray(head.prototypes)[2], before[2])  # class 2 unseen


def test_set_to_class_means_checks_the_feature_width():
    head = PrototypeHead(3, init="class_means")
    head.build((None, 4))
    with pytest.raises(ValueError, match=r"features must be \[N, 4\]"):
        head.set_to_class_means(np.zeros((5, 3)), np.zeros(5))
