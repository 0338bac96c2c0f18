import json
import os
import re

import numpy as np
from matplotlib import image as mpimg

from keras_dpnp import figures
from keras_dpnp.evaluation import report


def _results(fgsm_passes=True):
    check = {
        "name": "FGSM ≥ PGD",
        "passed": fgsm_passes,
        "numbers": {"fgsm": 0.6, "pgd": 0.5},
        "detail": "" if fgsm_passes else "FGSM low",
    }
    return {
        "suite": "standard",
        "norm": "linf",
        "epsilon": 0.2,
        "step_size": 0.05,
        "points": 50,
        "seed": 0,
        "subset": None,
        "model": {"path": "runs/x/best.keras", "method": "adv_dpnp", "head": "prototype"},
        "dataset": {"name": "digits", "split": "test"},
        "attacks": [
            {"name": "clean", "label": "Clean", "accuracy": 0.96, "points": 50, "seconds": 0.1},
            {
                "name": "pgd",
                "label": "PGD-20 (CE, step 0.05)",
                "accuracy": 0.7,
                "points": 50,
                "seconds": 1.0,
            },
            {
                "name": "autoattack",
                "label": "AutoAttack (standard)",
                "accuracy": 0.66,
                "points": 50,
                "seconds": 9.0,
            },
        ],
        "worst_case": {"accuracy": 0.64, "attacks": ["pgd", "autoattack"]},
        "autoattack": {
            "version": "standard",
            "clean_accuracy": 0.96,
            "robust_accuracy": 0.66,
            "stages": [["apgd-ce", 0.7], ["apgd-t", 0.68], ["fab-t", 0.68], ["square", 0.66]],
            "seconds": 9.0,
        },
        "cw_l2": {
            "points": 50,
            "clean_correct": 48,
            "success_rate": 1.0,
            "median_l2": 0.9,
            "mean_l2": 1.0,
            "accuracy": 0.0,
            "seconds": 3.0,
        },
        "square": {"points": 50, "accuracy": 0.8, "white_box_accuracy": 0.7, "seconds": 2.0},
        "epsilon_sweep": {
            "attack": "PGD-20 (CE)",
            "large_epsilon": 0.5,
            "large_epsilon_accuracy": 0.0,
            "points": [
                {"epsilon": 0.0, "accuracy": 0.96},
                {"epsilon": 0.2, "accuracy": 0.7},
                {"epsilon": 0.5, "accuracy": 0.0},
            ],
        },
        "diagnostics": {
            "passed": fgsm_passes,
            "checks": [check],
            "warnings": []
            if fgsm_passes
            else ["possible gradient masking: FGSM low (check: FGSM ≥ PGD)"],
        },
    }


def test_report_files_reload_and_the_plot_is_an_image(tmp_path):
    results = _results()
    markdown, paths = report.write_report(results, str(tmp_path / "out"))
    with open(paths["json"], encoding="utf-8") as f:
        assert json.load(f) == results
    with open(paths["markdown"], encoding="utf-8") as f:
        assert f.read() == markdown
    picture = mpimg.imread(paths["plot"])
    assert picture.ndim == 3 and picture.shape[0] > 100 and np.std(picture) > 0
    assert sorted(os.listdir(tmp_path / "out")) == sorted(
        [report.JSON_NAME, report.MARKDOWN_NAME, f"{report.SWEEP_FIGURE}.png"]
    )


def test_each_figure_is_written_in_each_format_and_linked(tmp_path):
    markdown, paths = report.write_report(_results(), str(tmp_path), figure_formats=("png", "pdf"))
    sweep = [f"{report.SWEEP_FIGURE}.png", f"{report.SWEEP_FIGURE}.pdf"]
    assert [os.path.basename(path) for path in paths["figures"]] == sweep
    assert paths["plot"] == str(tmp_path / sweep[0])
    with open(tmp_path / sweep[1], "rb") as f:
        assert f.read(4) == b"%PDF"
    assert os.path.getsize(tmp_path / sweep[0]) > 1000
    links = re.findall(r"\[(\w+)\]\(([^)]+)\)", markdown)
    assert links == [("png", sweep[0]), ("pdf", sweep[1])]
    assert "- Robust accuracy vs ε: [png](" in markdown.split("### Figures")[1]


def test_the_sweep_figure_names_the_norm_as_the_title_does():
    results = _results()
    axes = report.sweep_figure(results).axes[0]
    assert axes.get_xlabel() == "L∞ ε" == figures.epsilon_label("linf")
    assert axes.get_ylabel() == "accuracy (%)"
    assert "L∞ ε = 0.2" in report.format_markdown(results)
    assert figures.epsilon_label("l2") == "L2 ε"


def test_the_corruption_heat_map_labels_its_colour_bar_and_names_in_words():
    entry = {
        "source": "generated",
        "severities": [1, 5],
        "accuracy": {"gaussian_noise": [0.9, 0.5], "jpeg_compression": [0.8, 0.6]},
        "mean_per_corruption": {"gaussian_noise": 0.7, "jpeg_compression": 0.7},
        "mean_corruption_accuracy": 0.7,
    }
    heat_map, colour_bar = report.corruption_figure(entry).axes
    assert colour_bar.get_ylabel() == "accuracy (%)"
    names = [label.get_text() for label in heat_map.get_yticklabels()]
    assert names == ["gaussian noise", "jpeg compression"]


def test_the_embedding_title_is_a_sentence():
    entry = {
        "anchors": "prototypes",
        "attack": "PGD-20 (CE, step 0.01) at L∞ ε = 0.1",
        "embedding": {
            "method": "t-SNE (perplexity 3, sklearn)",
            "labels": [0, 1, 1],
            "clean": [[0, 0], [1, 1], [1, 2]],
            "adversarial": [[0, 1], [1, 0], [2, 2]],
            "anchors": [[0, 0.5], [1, 1.5]],
            "anchor_classes": [0, 1],
        },
    }
    figure = report.embedding_figure(entry)
    assert figure.get_suptitle() == (
        "Features of 3 test points mapped to 2-D by t-SNE (perplexity 3, sklearn); stars mark "
        "the prototypes"
    )
    assert [axes.get_title() for axes in figure.axes] == [
        "clean images",
        "attacked: PGD-20 (CE, step 0.01) at L∞ ε = 0.1",
    ]


def test_markdown_has_every_table_and_no_warning_when_all_checks_pass():
    markdown = report.format_markdown(_results())
    assert markdown.startswith("## Robustness: `runs/x/best.keras` (adv_dpnp), digits test")
    assert "| AutoAttack (standard) | 66.00 | 9.0 |" in markdown
    assert "| apgd-t | 68.00 |" in markdown and "| **final** | **66.00** |" in markdown
    assert "| **worst case over all attacks** | **64.00** | |" in markdown
    assert report.WORST_CASE_NOTE in markdown
    assert "| 100.00 | 0.9 | 1 | 0.00 |" in markdown
    assert "| FGSM ≥ PGD | PASS |" in markdown
    assert "WARNING" not in markdown


def test_a_failed_check_is_flagged_at_the_top():
    markdown = report.format_markdown(_results(fgsm_passes=False))
    assert markdown.splitlines()[0] == (
        "WARNING: possible gradient masking: FGSM low (check: FGSM ≥ PGD)"
    )
    assert "| FGSM ≥ PGD | **FAIL** |" in markdown


def test_no_plot_without_a_sweep(tmp_path):
    results = _results()
    del results["epsilon_sweep"]
    _, paths = report.write_report(results, str(tmp_path))
    assert "plot" not in paths and paths["figures"] == []
    assert sorted(os.listdir(tmp_path)) == sorted([report.JSON_NAME, report.MARKDOWN_NAME])
    assert "### Figures" not in report.format_markdown(results)
