"""The full suite end to end: corruptions and geometry as parts, in the JSON and the report."""

import json

import numpy as np
import pytest
from matplotlib import image as mpimg

from conftest import tiny_backbone
from keras_dpnp.data import load_dataset
from keras_dpnp.evaluation import report, robustness
from keras_dpnp.evaluation.corruptions import CorruptionSettings
from keras_dpnp.model import AdvDPNP


def _points(shape):
    """Ten digits test images, or ten random CIFAR-shaped ones, and their labels."""
    if shape == (8, 8, 1):
        images, labels = load_dataset("digits").test
        return images[:10], labels[:10]
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (10,) + shape).astype(np.uint8), np.arange(10)


def _full_suite(shape, method, tmp_path, **settings):
    model = AdvDPNP(
        tiny_backbone(8, shape),
        10,
        method=method,
        attack={"epsilon": 0.1, "step_size": 0.05, "steps": 2},
    )
    images, labels = _points(shape)
    results = robustness.evaluate_robustness(
        model,
        images,
        labels,
        epsilon=8 / 255,
        suite="full",
        progress=False,
        corruption_settings=CorruptionSettings(cache_dir=str(tmp_path / "cache"), **settings),
    )
    markdown, paths = report.write_report(results, str(tmp_path / "report"))
    return results, markdown, paths


@pytest.mark.parametrize(
    "shape, method",
    [pytest.param((32, 32, 3), "adv_dpnp", marks=pytest.mark.slow), ((8, 8, 1), "standard")],
    ids=["cifar_shaped", "digits"],
)
def test_full_suite_reports_corruptions_and_geometry(shape, method, tmp_path):
    results, markdown, paths = _full_suite(
        shape, method, tmp_path, dataset="svhn_cropped", severities=(1, 3, 5)
    )
    entry = results["corruptions"]
    assert entry["source"] == "generated" and "generated from the svhn_cropped" in entry["label"]
    assert len(entry["accuracy"]) == 15 and entry["severities"] == [1, 3, 5]
    assert entry["points"] == 10 and entry["clean_accuracy"] == pytest.approx(
        results["attacks"][0]["accuracy"]
    )
    assert "corruptions" not in results["worst_case"]["attacks"]
    geometry = results["geometry"]
    assert geometry["anchors"] == ("prototypes" if method == "adv_dpnp" else "class means")
    assert geometry["points"] == 10 and geometry["attack"].startswith("PGD-20 (CE")
    assert "### Common corruptions (generated): generated from the svhn_cropped" in markdown
    assert "**Mean corruption accuracy: " in markdown and "| **mean** |" in markdown
    assert "### Feature geometry: 10 points, " in markdown and "| silhouette |" in markdown
    assert markdown.index("### Feature geometry") < markdown.index("### Gradient-masking")
    for name in ("corruption_plot", "embedding_plot"):
        picture = mpimg.imread(paths[name])
        assert picture.ndim == 3 and picture.shape[0] > 100 and np.std(picture) > 0
    with open(paths["json"], encoding="utf-8") as f:
        assert json.load(f) == results


def test_quick_and_standard_suites_leave_them_out():
    for suite in ("quick", "standard"):
        assert not {"corruptions", "geometry"} & set(robustness.SUITES[suite].parts)


def test_a_model_without_backbone_skips_geometry():
    backbone_only = tiny_backbone(8, (8, 8, 1))  # a plain Keras model: no `backbone` in it
    images, labels = _points((8, 8, 1))
    ev = robustness.Evaluation(
        model=backbone_only,
        images=images / np.float32(255),
        labels=labels,
        epsilon=0.1,
        norm="linf",
        step_size=0.0125,
        restarts=1,
        seed=0,
        batch_size=8,
        progress=False,
        spec=robustness.SUITES["full"],
    )
    robustness.geometry_part(ev)
    assert ev.results["geometry"]["skipped"].endswith("has no `backbone` giving features")
    markdown = report.format_markdown(
        {"suite": "full", "norm": "linf", "epsilon": 0.1, "points": 10, "attacks": [], **ev.results}
    )
    assert "### Feature geometry: skipped (Functional has no `backbone`" in markdown
