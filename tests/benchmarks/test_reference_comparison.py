"""Our AutoAttack beside the reference's: the rows, the verdicts, the skip reason, the CLI."""

import json
import os
import subprocess
import sys
import venv

import keras
import numpy as np
import pytest

from conftest import tiny_model
from keras_dpnp.benchmarks import reference_comparison
from keras_dpnp.data import load_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OURS = {
    "clean_accuracy": 0.6,
    "stages": [["apgd-ce", 0.4], ["apgd-t", 0.3], ["fab-t", 0.3], ["square", 0.2]],
    "stage_seconds": [2.0, 4.0, 1.0, 3.0],
    "seconds": 10.5,
    "robust": [True, True, False, False, False, False, False, False, False, False],
}
REFERENCE = {
    "clean_accuracy": 0.6,
    "stages": [["apgd-ce", 0.5], ["apgd-t", 0.3], ["fab-t", 0.3], ["square", 0.3]],
    "stage_seconds": [4.0, 8.0, 2.0, 0.0],
    "seconds": 15.0,
    "robust": [True, False, True, False, False, False, False, False, False, False],
}


def test_rows_give_each_side_the_gap_in_points_and_the_time_ratio():
    rows = reference_comparison.comparison_rows(OURS, REFERENCE)
    assert [row["stage"] for row in rows] == [
        "clean",
        "apgd-ce",
        "apgd-t",
        "fab-t",
        "square",
        "total",
    ]
    clean, apgd_ce, _, _, square, total = rows
    assert clean["gap_points"] == 0 and clean["time_ratio"] is None
    assert apgd_ce["ours_robust_percent"] == pytest.approx(40)
    assert apgd_ce["reference_robust_percent"] == pytest.approx(50)
    assert apgd_ce["gap_points"] == -10.0 and apgd_ce["time_ratio"] == 0.5
    assert square["time_ratio"] is None  # the reference took no time: no ratio
    assert total["gap_points"] == -10.0 and total["time_ratio"] == pytest.approx(0.7)
    assert reference_comparison.differing_verdicts(OURS, REFERENCE) == 2


def test_without_the_reference_its_columns_are_dashes():
    rows = reference_comparison.comparison_rows(OURS)
    assert all(row["reference_robust_percent"] is None for row in rows)
    table = reference_comparison.markdown_table(rows)
    assert "| APGD-CE | 40.00 | — | — | 2.0 | — | — |" in table
    assert "| total | 20.00 | — | — | 10.5 | — | — |" in table


def test_the_table_signs_the_gap_and_marks_the_ratio():
    table = reference_comparison.markdown_table(
        reference_comparison.comparison_rows(OURS, REFERENCE)
    )
    assert "| APGD-CE | 40.00 | 50.00 | -10.00 | 2.0 | 4.0 | 0.50× |" in table
    assert "| Square | 20.00 | 30.00 | -10.00 | 3.0 | 0.0 | — |" in table


def test_an_interpreter_without_the_reference_is_skipped_with_the_reason(tmp_path):
    bare = tmp_path / "bare"
    venv.create(bare, with_pip=False)  # no system site packages: no torch, onnx2torch, autoattack
    python = str(bare / "bin" / "python")
    answer = reference_comparison.reference_probe(python)
    assert answer["unavailable"].startswith(f"{python} cannot import the reference AutoAttack (")
    assert "No module named 'torch'" in answer["unavailable"]


def test_a_missing_interpreter_is_skipped_with_the_reason(tmp_path):
    python = str(tmp_path / "no_python")
    answer = reference_comparison.reference_probe(python)
    assert answer == {"unavailable": f"{python} cannot be run (No such file or directory)"}


def _bench(*args, cwd):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    return subprocess.run(
        [sys.executable, "-m", "keras_dpnp.bench_attacks", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_reference_without_a_model_is_one_line(tmp_path):
    result = _bench("--reference", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "error: --reference compares on a trained model: pass --model=<run dir or .keras>"
        )
    )


@pytest.mark.slow
def test_autoattack_workers_without_the_reference_is_one_line(tmp_path):
    result = _bench("--autoattack_workers=2", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.endswith("error: --autoattack_workers is used only with --reference")


def _reference_python():
    """The interpreter the end-to-end test gives the reference: $KERAS_DPNP_REFERENCE_PYTHON,
    else the documented .venv-reference, else this one."""
    documented = os.path.join(ROOT, ".venv-reference", "bin", "python")
    default = documented if os.path.exists(documented) else sys.executable
    return os.environ.get("KERAS_DPNP_REFERENCE_PYTHON", default)


def _digits_model(path):
    """A tiny CNN fitted for a few seconds on the digits training split, saved to `path`."""
    train_images, train_labels = load_dataset("digits").train
    model = tiny_model("standard")
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    model.fit(train_images.astype(np.float32) / 255, train_labels, epochs=5, verbose=0)
    model.save(path)


@pytest.mark.slow
def test_both_attacks_run_on_the_same_points_and_agree(tmp_path):
    python = _reference_python()
    probe = reference_comparison.reference_probe(python)
    if "unavailable" in probe:
        pytest.skip(probe["unavailable"])
    _digits_model(tmp_path / "model.keras")
    # At ε = 0.5 every image reaches mid-grey, so no point can stay robust on either side.
    result = _bench(
        f"--model={tmp_path / 'model.keras'}",
        "--dataset=digits",
        "--epsilon=0.5",
        "--reference",
        f"--reference_python={python}",
        "--autoattack_points=8",
        "--batch_size=4",
        "--autoattack_workers=2",
        f"--output={tmp_path / 'report.json'}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["points"] == 8 and len(report["test_indices"]) == 8
    assert report["autoattack_workers"] == 2 and ", 2 batches at once;" in result.stdout
    assert report["reference"]["clean_accuracy"] == report["ours"]["clean_accuracy"] > 0
    assert report["reference"]["max_logit_difference"] < 1e-4
    assert report["differing_verdicts"] == 0
    assert (
        report["rows"][-1]["ours_robust_percent"]
        == report["rows"][-1]["reference_robust_percent"]
        == 0
    )
    assert "| APGD-CE | 0.00 | 0.00 | +0.00 |" in result.stdout
    assert "robust verdicts differ on 0 of 8 points" in result.stdout
