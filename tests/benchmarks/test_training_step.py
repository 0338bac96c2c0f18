"""The training-step benchmark: FLOP counting, and the CLI on a tiny setting."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import tiny_model
from keras_dpnp import hardware
from keras_dpnp.benchmarks import torch_steps, training_step

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROW_FIELDS = {
    "backbone",
    "precision",
    "step",
    "batch_size",
    "attack",
    "images_per_second",
    "seconds_per_step",
    "cpu_seconds_per_step",
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
    assert training_step.step_forward_passes("trades", 10) == 27
    assert training_step.step_forward_passes("mart", 10) == 26
    assert training_step.step_forward_passes("dpnp", 10) == 3
    with pytest.raises(ValueError, match="unknown step 'fgsm_at'"):
        training_step.step_forward_passes("fgsm_at", 10)


@pytest.mark.parametrize("step", ["trades", "mart", "dpnp"])
def test_every_method_has_a_step_that_trains_it(step):
    case = training_step.Case(
        backbone="small_cnn",
        step=step,
        batch_size=4,
        image_shape=(8, 8, 1),
        width=0.25,
        attack_steps=1,
        timed_steps=1,
    )
    row = training_step.run_case(case)
    assert row["step"] == step and row["images_per_second"] > 0
    assert row["attack"] == ("none" if step == "dpnp" else "PGD-1")
    assert row["retraces_after_first_step"] == 0


def _run_tiny_bench(folder, *flags, pythonpath=ROOT):
    output = folder / "bench.json"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": pythonpath}
    env.pop("TF_ENABLE_ONEDNN_OPTS", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_dpnp.bench",
            "--models=small_cnn",
            "--precisions=float32",
            "--batch_size=8",
            "--image_shape=8,8,1",
            "--width=0.25",
            "--attack_steps=2",
            "--timed_steps=2",
            "--matmul_size=128",
            "--threads=1",
            f"--output={output}",
            *flags,
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, json.loads(output.read_text())


def _torch_installed():
    return importlib.util.find_spec("torch") is not None


@pytest.mark.slow
def test_cli_measures_a_tiny_setting_and_writes_json(tmp_path):
    stdout, report = _run_tiny_bench(tmp_path, "--steps=clean,adv_dpnp", "--nopytorch")
    assert "| small_cnn | 8×8×1 | float32 | adv_dpnp PGD-2 |" in stdout
    assert report["matmul_gflops"]["float32"] > 0
    environment = report["environment"]
    assert {"device", "cpu_cores", "tensorflow", "cpu_model", "onednn"} <= set(environment)
    assert set(environment["cpu_isa"]) == set(hardware.ISA_FLAGS)
    if environment["cpu_isa"]["avx2"]:
        assert environment["onednn"] == "on (TF_ENABLE_ONEDNN_OPTS=1, set by keras_dpnp)"
    assert environment["pytorch"] == {"skipped": "--nopytorch"}
    assert [row["step"] for row in report["results"]] == ["clean", "adv_dpnp"]
    for row in report["results"]:
        assert ROW_FIELDS <= set(row)
        assert row["images_per_second"] > 0 and row["achieved_gflops"] > 0
        assert row["retraces_after_first_step"] == 0
        assert row["peak_memory_mib"] > 0
        assert row["image_shape"] == [8, 8, 1] and "pytorch" not in row


@pytest.mark.slow
def test_pytorch_side_is_skipped_with_the_reason_when_it_cannot_be_imported(tmp_path):
    # A `torch` package that fails on import shadows any installed PyTorch.
    fake = tmp_path / "no_torch" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no PyTorch in this test')\n")
    stdout, report = _run_tiny_bench(
        tmp_path, "--steps=clean", pythonpath=os.pathsep.join([str(fake.parent), ROOT])
    )
    skipped = report["environment"]["pytorch"]["skipped"]
    assert skipped == "PyTorch could not be imported (no PyTorch in this test)"
    assert f"PyTorch skipped: {skipped}" in stdout
    assert "| clean | " in stdout and "| — | — | — |" in stdout


@pytest.mark.skipif(not _torch_installed(), reason="PyTorch is not installed (it is optional)")
@pytest.mark.slow
def test_pytorch_side_runs_the_same_steps_in_the_same_run(tmp_path):
    _, report = _run_tiny_bench(tmp_path, "--steps=clean,pgd_at,adv_dpnp", "--repeats=2")
    assert "version" in report["environment"]["pytorch"]
    for row in report["results"]:
        theirs = row["pytorch"]
        assert theirs["images_per_second"] > 0 and theirs["threads"] == 1
        assert len(theirs["images_per_second_runs"]) == len(row["images_per_second_runs"]) == 2
        assert theirs["ratio"] == pytest.approx(
            row["images_per_second"] / theirs["images_per_second"]
        )
        assert theirs["cpu_time_ratio"] > 0 and row["cpu_seconds_per_step"] > 0


@pytest.mark.slow
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


@pytest.mark.skipif(not _torch_installed(), reason="PyTorch is not installed (it is optional)")
@pytest.mark.parametrize("backbone,shape", [("small_cnn", (28, 28, 1)), ("resnet18", (8, 8, 3))])
def test_pytorch_networks_have_our_parameters(backbone, shape):
    # In a child process: PyTorch never shares a process with TensorFlow here either.
    code = (
        "import importlib.util, sys; spec = importlib.util.spec_from_file_location("
        "'torch_steps', sys.argv[1]); steps = importlib.util.module_from_spec(spec); "
        "spec.loader.exec_module(steps); "
        f"print([sum(p.numel() for m in steps.build({backbone!r}, {shape}, 0.5, step) "
        "for p in m.parameters()) for step in ('clean', 'adv_dpnp')])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, torch_steps.__file__],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    ours = [
        sum(
            int(np.prod(v.shape))
            for v in training_step._build(
                training_step.Case(backbone=backbone, step=step, image_shape=shape, width=0.5)
            ).trainable_variables
        )
        for step in ("clean", "adv_dpnp")
    ]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == ours
