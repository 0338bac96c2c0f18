"""The comparison's feature-geometry table, read from real geometry entries."""

import numpy as np
import pytest

from keras_dpnp.config import TrainConfig
from keras_dpnp.evaluation.geometry import geometry_metrics
from keras_dpnp.training import comparison, geometry_table


def _geometry(spread, seed=0, prototypes=False):
    """A report's geometry entry of three classes whose features scatter by `spread`."""
    rng = np.random.default_rng(seed)
    centres = np.array([[4.0, 0.0], [0.0, 4.0], [-4.0, -4.0]])
    labels = np.repeat(np.arange(3), 20)
    features = centres[labels] + spread * rng.normal(size=(60, 2))
    adversarial = features + rng.normal(size=(60, 2))
    anchors = centres if prototypes else None
    return geometry_metrics(features, labels, anchors, adversarial_features=adversarial)


def test_a_report_geometry_becomes_flat_numbers_and_a_skipped_one_none():
    entry = _geometry(0.5)
    numbers = geometry_table.report_geometry(entry)
    assert numbers["anchors"] == "class means"
    assert numbers["fisher_ratio_clean"] == entry["clean"]["fisher_ratio"]
    assert numbers["silhouette_adversarial"] == entry["adversarial"]["silhouette"]
    assert numbers["cos_to_class_mean_clean"] == entry["clean"]["to_class_mean"]["cosine"]
    assert numbers["shift_relative"] == entry["shift"]["relative"]
    assert numbers["simplex_angle"] == pytest.approx(120.0)
    assert geometry_table.report_geometry(_geometry(0.5, prototypes=True))["anchors"] == (
        "prototypes"
    )
    assert geometry_table.report_geometry({"skipped": "no backbone"}) is None
    assert geometry_table.report_geometry(None) is None


def test_the_summary_averages_the_runs_that_were_measured():
    first, second = (geometry_table.report_geometry(_geometry(0.5, seed)) for seed in (0, 1))
    summary = geometry_table.summarise_geometry([first, None, second])
    assert summary["seeds"] == 2
    expected = (first["fisher_ratio_clean"] + second["fisher_ratio_clean"]) / 2
    assert summary["fisher_ratio_clean"] == pytest.approx(expected)
    # In the runs' own order, so a rewritten comparison.json differs only where numbers do.
    assert list(summary)[2:] == [key for key in first if key != "anchors"]
    assert geometry_table.summarise_geometry([None, None]) is None


def _row(label, seed, geometry):
    report = {
        "attacks": [
            {"name": "clean", "accuracy": 0.9, "points": 60},
            {"name": "pgd", "accuracy": 0.5, "points": 60},
        ]
    }
    if geometry is not None:
        report["geometry"] = geometry
    results = {
        "clean_accuracy": 0.9,
        "pgd_accuracy": 0.5,
        "method": "pgd_at",
        "attack": "PGD-20 (CE)",
        "validation": {"clean_accuracy": 0.9},
        "final_train_logs": {},
    }
    run = comparison.Run(label, seed, TrainConfig(seed=seed))
    return run, comparison._with_report(results, report)


def test_the_comparison_table_shows_the_geometry_of_the_variants_that_have_one():
    compact, spread = _geometry(0.3), _geometry(1.5)
    rows = [_row("compact", 0, compact), _row("spread", 0, spread), _row("plain", 0, None)]
    table = comparison.markdown_table(comparison.summarise(rows))
    assert "Feature geometry of the test features, clean → PGD-20" in table
    assert "a regular simplex has 120.0°" in table
    compact_line = next(line for line in table.splitlines() if line.startswith("| compact | 1 |"))
    clean, adversarial = compact["clean"], compact["adversarial"]
    fisher = f"{clean['fisher_ratio']:.3g} → {adversarial['fisher_ratio']:.3g}"
    assert f"| {fisher} |" in compact_line
    assert compact_line.startswith("| compact | 1 | class means | ")
    assert not any(line.startswith("| plain | 1 | class") for line in table.splitlines())
    assert compact["clean"]["fisher_ratio"] > spread["clean"]["fisher_ratio"]


def test_no_geometry_no_section():
    table = comparison.markdown_table(comparison.summarise([_row("plain", 0, None)]))
    assert "Feature geometry" not in table
