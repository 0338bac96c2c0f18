"""The generated CIFAR-10-C corruptions: shape, range, determinism, strength, cache, sources."""

import hashlib
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image
from scipy import ndimage

from conftest import tiny_backbone
from keras_dpnp.data import DatasetNotFoundError, cifar10_corrupted
from keras_dpnp.data.cifar10_corrupted import CORRUPTIONS
from keras_dpnp.evaluation import corruptions
from keras_dpnp.evaluation.corruptions import CorruptionSettings, corruption_accuracy
from keras_dpnp.evaluation.corruptions import generated as corruptions_generated
from keras_dpnp.evaluation.corruptions.blur import defocus_kernel, zoom_factors
from keras_dpnp.evaluation.corruptions.generated import cached_corruption, corrupt
from keras_dpnp.model import AdvDPNP

# Corruptions without randomness: the seed cannot change them.
SEED_FREE = {"defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate", "jpeg_compression"}


def _smooth_images(count, shape, seed=1):
    """Photo-like test images: smoothed noise stretched to the full range, as uint8."""
    noise = np.random.default_rng(seed).random((count,) + shape)
    smooth = ndimage.gaussian_filter(noise, (0, 2, 2, 0))
    low = smooth.min(axis=(1, 2, 3), keepdims=True)
    high = smooth.max(axis=(1, 2, 3), keepdims=True)
    return np.rint(255 * (smooth - low) / (high - low)).astype(np.uint8)


CIFAR_LIKE = _smooth_images(24, (32, 32, 3))
DIGIT_LIKE = _smooth_images(4, (8, 8, 1))


@pytest.fixture(scope="module")
def distances():
    """Mean absolute change (pixel scale [0, 1]) of the CIFAR-like images per severity."""
    clean = CIFAR_LIKE.astype(np.float64)
    return {
        name: [
            float(np.abs(corrupt(CIFAR_LIKE, name, s).astype(np.float64) - clean).mean()) / 255
            for s in range(1, 6)
        ]
        for name in CORRUPTIONS
    }


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_each_corruption_keeps_shape_dtype_range_and_is_seeded(name):
    for images in (CIFAR_LIKE[:3], DIGIT_LIKE):
        for severity in (1, 5):
            first = corrupt(images, name, severity, seed=0)
            assert first.shape == images.shape and first.dtype == np.uint8
            np.testing.assert_array_equal(first, corrupt(images, name, severity, seed=0))
            assert not np.array_equal(first, images), f"{name} {severity} left the images alone"
            if name not in SEED_FREE:
                assert not np.array_equal(first, corrupt(images, name, severity, seed=1))
    as_float = corrupt(DIGIT_LIKE / np.float32(255), name, 3)
    assert as_float.dtype == np.float32 and 0.0 <= as_float.min() <= as_float.max() <= 1.0
    two_channels = corrupt(CIFAR_LIKE[:2, :16, :12, :2], name, 3)
    assert two_channels.shape == (2, 16, 12, 2)


MONOTONE = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "zoom_blur",
    "fog",
    "brightness",
    "contrast",
    "pixelate",
    "jpeg_compression",
)


def test_the_change_grows_with_severity(distances):
    for name in MONOTONE:
        assert np.all(np.diff(distances[name]) > 0), (name, distances[name])


def test_motion_blur_grows_except_where_only_the_radius_grows(distances):
    # Severities 3 and 4 share σ = 2; the larger radius (6 → 8) only adds taps of weight
    # below e⁻¹⁸, so the two blur alike (their random directions differ).
    d1, d2, d3, d4, d5 = distances["motion_blur"]
    assert d1 < d2 < d3 and d4 < d5 and abs(d3 - d4) < 0.1 * d3


def test_glass_blur_strength_is_set_by_its_passes(distances):
    # A larger σ smooths away more of the swaps than it blurs, so one-pass severities 1-3 do
    # not grow; at equal σ a second pass moves more (2 → 4 at σ 0.25, 3 → 5 at σ 0.4).
    d1, d2, d3, d4, d5 = distances["glass_blur"]
    assert d4 > d2 and d5 > d3 and min(d4, d5) > max(d1, d2, d3)


def _one_minus_correlation(corrupted, clean):
    a = corrupted.reshape(len(clean), -1).astype(np.float64)
    b = clean.reshape(len(clean), -1).astype(np.float64)
    a -= a.mean(axis=1, keepdims=True)
    b -= b.mean(axis=1, keepdims=True)
    return float(np.mean(1 - np.sum(a * b, 1) / np.sqrt(np.sum(a * a, 1) * np.sum(b * b, 1))))


def test_snow_and_frost_hide_more_of_the_image_with_severity(distances):
    # Frost dims the image (weight 1 → 0.75) while adding more texture (0.2 → 0.45), so the
    # mean change can fall; snow's severity 3 has larger but fewer flakes than severity 2.
    # What grows in both is how much of the image's pattern is lost: 1 − correlation.
    for name in ("snow", "frost"):
        lost = [
            _one_minus_correlation(corrupt(CIFAR_LIKE, name, s), CIFAR_LIKE) for s in range(1, 6)
        ]
        assert np.all(np.diff(lost) > 0), (name, lost)
    d1, d2, d3, d4, d5 = distances["snow"]
    assert d1 < min(d2, d3) and max(d2, d3) < d4 < d5


def test_elastic_trades_affine_jitter_for_local_displacement():
    """On a coordinate ramp the output is the sampling position, so the displacement field
    is visible: its affine part shrinks with severity (jitter 8 % → 3 % of the side), while
    the rest, the elastic part, grows from exactly zero at severity 1 (α = 0)."""
    size = 32
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    ramp = np.stack([rows, cols, np.zeros_like(rows)], axis=-1) / (size - 1)
    ramps = np.repeat(ramp[None], 16, axis=0)
    inner = slice(8, size - 8)  # away from the reflected border
    design = np.stack(
        [rows[inner, inner].ravel(), cols[inner, inner].ravel(), np.ones((size - 16) ** 2)], axis=1
    )
    affine, elastic = [], []
    for severity in range(1, 6):
        moved = corrupt(ramps, "elastic_transform", severity) * (size - 1)
        field = moved[:, inner, inner, :2].reshape(len(ramps), -1, 2)
        fitted = np.stack([design @ np.linalg.lstsq(design, f, rcond=None)[0] for f in field])
        elastic.append(np.abs(field - fitted).mean())
        identity = design[:, :2]
        affine.append(np.abs(fitted - identity).mean())
    assert elastic[0] < 1e-6 and np.all(np.diff(elastic) > 0), elastic
    assert np.all(np.diff(affine) < 0), affine


def test_parameters_follow_the_cifar10c_script():
    # The script's float np.arange(1, 1.06, 0.01) etc. give these many zoom factors.
    assert [len(zoom_factors(s)) for s in range(1, 6)] == [7, 12, 16, 21, 26]
    kernel = defocus_kernel(1.5, 0.1)  # the 3×3 disk, hardly smoothed
    np.testing.assert_allclose(kernel.sum(), 1.0)
    np.testing.assert_allclose(kernel[1:4, 1:4], np.full((3, 3), 1 / 9), atol=1e-6)
    grey = np.full((1, 8, 8, 3), 0.4)
    np.testing.assert_allclose(corrupt(grey, "brightness", 5), 0.7)  # value + 0.3
    np.testing.assert_allclose(corrupt(grey, "contrast", 5), 0.4)  # a flat image stays
    halves = np.concatenate([np.zeros((1, 8, 4, 1)), np.ones((1, 8, 4, 1))], axis=2)
    np.testing.assert_allclose(corrupt(halves, "contrast", 1), 0.5 + (halves - 0.5) * 0.75)
    noisy = corrupt(np.full((4, 64, 64, 3), 0.5), "gaussian_noise", 5)
    assert noisy.std() == pytest.approx(0.10, rel=0.02)
    pixelated = corrupt(CIFAR_LIKE[:1], "pixelate", 5)  # 32 → 20 → 32 with PIL's box filter
    image = Image.fromarray(CIFAR_LIKE[0])
    expected = image.resize((20, 20), Image.BOX).resize((32, 32), Image.BOX)
    np.testing.assert_array_equal(pixelated[0], np.asarray(expected))


def test_bad_input_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="unknown corruption 'rain'; choose from"):
        corrupt(DIGIT_LIKE, "rain", 1)
    with pytest.raises(ValueError, match=r"severity must be one of \(1, 2, 3, 4, 5\), got 6"):
        corrupt(DIGIT_LIKE, "fog", 6)
    with pytest.raises(ValueError, match="divide by 255"):
        corrupt(DIGIT_LIKE.astype(np.float32), "fog", 1)
    with pytest.raises(ValueError, match="at least 4×4 pixels"):
        corrupt(DIGIT_LIKE[:, :3, :3], "fog", 1)
    with pytest.raises(ValueError, match=r"a batch \[N, H, W, C\]"):
        corrupt(DIGIT_LIKE[0], "fog", 1)
    with pytest.raises(ValueError, match="non-empty selection of gaussian_noise"):
        CorruptionSettings(corruptions=("fog", "rain"))
    with pytest.raises(ValueError, match="severities must be a non-empty selection"):
        CorruptionSettings(severities=(0, 1))
    with pytest.raises(ValueError, match="come from digits: use the corruption source 'generated'"):
        CorruptionSettings(source="tfds", dataset="digits")


def test_the_cache_returns_the_stored_arrays(tmp_path, monkeypatch):
    first = cached_corruption(DIGIT_LIKE, "snow", 2, seed=3, cache_dir=str(tmp_path))
    stored, digest = sorted(os.listdir(tmp_path))
    assert stored.startswith("snow_2_") and stored.endswith(".npz")
    assert digest == stored + ".sha256"

    def refuse(*args, **kwargs):
        raise AssertionError("a cached set must not be generated again")

    monkeypatch.setattr(corruptions_generated, "corrupt", refuse)
    again = cached_corruption(DIGIT_LIKE, "snow", 2, seed=3, cache_dir=str(tmp_path))
    np.testing.assert_array_equal(again, first)
    assert again.dtype == first.dtype
    other_seed = corruptions_generated.cache_path(str(tmp_path), DIGIT_LIKE, "snow", 2, 4)
    assert not os.path.exists(other_seed)


def _cached_snow(cache_dir):
    return cached_corruption(DIGIT_LIKE, "snow", 2, seed=3, cache_dir=str(cache_dir))


@pytest.mark.parametrize(
    "damage,warning",
    [
        (lambda path: path.write_bytes(path.read_bytes()[:-1] + b"x"), "does not match its sha256"),
        (lambda path: os.remove(corruptions_generated.digest_path(str(path))), "is unusable"),
    ],
)
def test_a_cached_set_that_fails_its_digest_is_regenerated(tmp_path, caplog, damage, warning):
    first = _cached_snow(tmp_path)
    path = tmp_path / sorted(os.listdir(tmp_path))[0]
    damage(path)
    again = _cached_snow(tmp_path)
    np.testing.assert_array_equal(again, first)
    assert warning in caplog.text and str(path) in caplog.text
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    with open(corruptions_generated.digest_path(str(path)), encoding="utf-8") as f:
        assert f.read().strip() == digest


def test_an_unwritable_cache_is_skipped_with_a_warning(tmp_path, caplog):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    settings = CorruptionSettings(source="auto", dataset="digits", cache_dir=str(blocker / "c"))
    assert settings.resolved().cache_dir is None
    assert f"cannot write to {blocker}/c: {blocker} is not a folder; the corrupted sets" in (
        caplog.text
    )
    corrupted = _cached_snow(blocker / "c")
    np.testing.assert_array_equal(corrupted, corrupt(DIGIT_LIKE, "snow", 2, seed=3))
    assert "could not write the corruption cache" in caplog.text
    assert os.listdir(tmp_path) == ["a_file"]


def test_summary_means():
    summary = corruptions.summarise({"fog": [1.0, 0.5], "snow": [0.5, 0.0]})
    assert summary == {
        "mean_per_severity": [0.75, 0.25],
        "mean_per_corruption": {"fog": 0.75, "snow": 0.25},
        "mean_corruption_accuracy": 0.5,
    }


@pytest.fixture(scope="module")
def cifar_model():
    return AdvDPNP(tiny_backbone(8, (32, 32, 3)), 10, method="standard")


def test_generated_accuracy_on_a_subset(cifar_model, tmp_path):
    labels = np.arange(len(CIFAR_LIKE)) % 10
    settings = CorruptionSettings(
        source="auto",
        dataset="svhn_cropped",
        cache_dir=str(tmp_path),
        corruptions=("fog", "contrast"),
        severities=(5, 1),
    )
    entry = corruption_accuracy(cifar_model, CIFAR_LIKE, labels, settings=settings, num_points=10)
    assert entry["source"] == "generated" and entry["label"].startswith(
        "generated from the svhn_cropped test points with CIFAR-10-C's severity parameters"
    )
    assert entry["severities"] == [1, 5] and list(entry["accuracy"]) == ["fog", "contrast"]
    assert entry["points"] == 10 and len(entry["subset"]) == 10
    table = np.array(list(entry["accuracy"].values()))
    assert entry["mean_corruption_accuracy"] == pytest.approx(table.mean())
    assert len(os.listdir(tmp_path)) == 8


def test_official_cifar10c_from_prepared_tfds_data(cifar_model, tmp_path, monkeypatch):
    monkeypatch.setattr(tfds.core.DatasetBuilder, "is_prepared", lambda self: True)
    settings = CorruptionSettings(
        source="auto",
        dataset="cifar10",
        data_dir=str(tmp_path),
        corruptions=("glass_blur", "elastic_transform"),
        severities=(2,),
    )
    with tfds.testing.mock_data(num_examples=12):
        entry = corruption_accuracy(cifar_model, settings=settings, num_points=5)
    assert entry["source"] == "tfds" and entry["label"].startswith("official CIFAR-10-C")
    assert entry["points"] == 5 and entry["clean_accuracy"] is None
    assert cifar10_corrupted.tfds_config("glass_blur", 2) == (
        "cifar10_corrupted/frosted_glass_blur_2"
    )
    assert 0.0 <= entry["mean_corruption_accuracy"] <= 1.0


def test_missing_official_data_says_how_to_get_it(tmp_path):
    auto = CorruptionSettings(dataset="cifar10", data_dir=str(tmp_path)).resolved()
    assert auto.source == "generated"
    with pytest.raises(DatasetNotFoundError) as error:
        CorruptionSettings(source="tfds", data_dir=str(tmp_path)).resolved()
    message = str(error.value)
    for expected in (
        f"CIFAR-10-C is not prepared in {tmp_path}",
        "cifar10_corrupted/gaussian_noise_1",
        "tfds build cifar10_corrupted --data_dir=<folder>",
        "--corruption_source=generated",
    ):
        assert expected in message


def test_the_registry_covers_the_fifteen_benchmark_corruptions():
    assert tuple(corruptions_generated.CORRUPTION_FUNCTIONS) == CORRUPTIONS
