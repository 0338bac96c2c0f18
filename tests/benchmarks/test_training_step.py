"""The training-step benchmark: FLOP counting, and the CLI on a tiny setting."""

import json
import os
import subprocess
import sys

import pytest

from conftest import tiny_model
from keras_dpnp.benchmarks import training_step

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROW_FIELDS = {
    "backbone",
    "precision",
    "step",
    "batch_size",
    "attack",
    "images_per_second",
    "seconds_per_step",
    "seconds_per_50k_epoch",
    "forward_gflop_per_image",
    "forward_passes_per_step",
    "achieved_gflops",
    "matmul_peak_gflops",
    "fraction_of_matmul_peak",
    "peak_memory_mib",
    "memory_kind",
    "retraces_after_first_step",
    "load_average_1min",
}


def test_forward_flops_count_convolutions_dense_layers_and_head():
    # small_cnn at width 0.25 on 8x8x1: convs 1->8 (8x8 out), 8->16 (4x4), 16->32 (2x2),
    # dense 32->64, projection 64->8, prototype head 8->10.
    expected = 2 * (64 * 9 * 1 * 8 + 16 * 9 * 8 * 16 + 4 * 9 * 16 * 32 + 32 * 64 + 64 * 8 + 8 * 10)
    assert training_step.forward_flops(tiny_model()) == expected


def test_step_costs_in_forward_passes():
    assert training_step.step_forward_passes("clean", 10) == 3
    assert training_step.step_forward_passes("pgd_at", 10) == 23
    assert training_step.step_forward_passes("adv_dpnp", 10) == 27
    with pytest.raises(ValueError, match="unknown step 'trades'"):
        training_step.step_forward_passes("trades", 10)


def test_cli_measures_a_tiny_setting_and_writes_json(tmp_path):
    output = tmp_path / "bench.json"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_dpnp.bench",
            "--models=small_cnn",
            "--precisions=float32",
            "--steps=clean,adv_dpnp",
            "--batch_size=8",
            "--image_size=8",
            "--width=0.25",
            "--attack_steps=2",
            "--timed_steps=2",
            "--matmul_size=128",
            f"--output={output}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| small_cnn | float32 | adv_dpnp PGD-2 |" in result.stdout
    report = json.loads(output.read_text())
    assert report["matmul_gflops"]["float32"] > 0
    assert {"device", "cpu_cores", "tensorflow"} <= set(report["environment"])
    assert [row["step"] for row in report["results"]] == ["clean", "adv_dpnp"]
    for row in report["results"]:
        assert ROW_FIELDS <= set(row)
        assert row["images_per_second"] > 0 and row["achieved_gflops"] > 0
        assert row["retraces_after_first_step"] == 0
        assert row["peak_memory_mib"] > 0


def test_cli_rejects_an_unknown_model():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    result = subprocess.run(
        [sys.executable, "-m", "keras_dpnp.bench", "--models=vgg"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "--models: unknown backbones ['vgg']" in result.stderr


def test_default_precisions_add_float16_only_on_a_gpu():
    assert training_step.default_precisions({"gpus": 0}) == ["float32", "mixed_bfloat16"]
    assert training_step.default_precisions({"gpus": 2})[-1] == "mixed_float16"
