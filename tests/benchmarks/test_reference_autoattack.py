"""The reference AutoAttack's script: reading its log, its probe, and onnx2torch without
torchvision. The script itself runs in the slow end-to-end test of the comparison."""

import json
import os
import subprocess
import sys

from keras_dpnp.benchmarks import reference_autoattack

ATTACKS = ["apgd-ce", "apgd-t", "fab-t", "square"]
# Logged by fra31/auto-attack a392200 (PyTorch 2.13.0, CPU) on 20 digits test points of a
# 3-epoch Adv-DPNP model, L∞ ε = 0.2, seed 0.
LOG = """\
using standard version including apgd-ce, apgd-t, fab-t, square.
initial accuracy: 55.00%
apgd-ce - 1/1 - 6 out of 11 successfully perturbed
robust accuracy after APGD-CE: 25.00% (total time 5.8 s)
apgd-t - 1/1 - 0 out of 5 successfully perturbed
robust accuracy after APGD-T: 25.00% (total time 93.4 s)
fab-t - 1/1 - 0 out of 5 successfully perturbed
robust accuracy after FAB-T: 25.00% (total time 100.4 s)
square - 1/1 - 0 out of 5 successfully perturbed
robust accuracy after SQUARE: 25.00% (total time 112.8 s)
max Linf perturbation: 0.20000, nan in tensor: 0, max: 1.00000, min: 0.00000
robust accuracy: 25.00%
"""
# The same points at ε = 0.5: APGD-CE broke every point, so the reference stopped there.
LOG_STOPPED_EARLY = """\
using standard version including apgd-ce, apgd-t, fab-t, square.
initial accuracy: 55.00%
apgd-ce - 1/1 - 11 out of 11 successfully perturbed
robust accuracy after APGD-CE: 0.00% (total time 0.3 s)
max Linf perturbation: 0.50000, nan in tensor: 0, max: 1.00000, min: 0.00000
robust accuracy: 0.00%
"""


def test_the_log_gives_each_stage_robust_accuracy_and_seconds():
    figures = reference_autoattack.parse_log(LOG, ATTACKS, points=20)
    assert figures["clean_accuracy"] == 0.55
    assert figures["stages"] == [[attack, 0.25] for attack in ATTACKS]
    assert figures["stage_seconds"] == [5.8, 87.6, 7.0, 12.4]


def test_stages_after_the_last_robust_point_fell_keep_zero_accuracy_and_take_no_time():
    figures = reference_autoattack.parse_log(LOG_STOPPED_EARLY, ATTACKS, points=20)
    assert figures["stages"] == [[attack, 0.0] for attack in ATTACKS]
    assert figures["stage_seconds"] == [0.3, 0.0, 0.0, 0.0]


def test_logged_percentages_become_whole_points():
    line = "robust accuracy after APGD-CE: 64.89% (total time 1.0 s)"  # 292 of 450 points
    figures = reference_autoattack.parse_log(line, ATTACKS[:1], points=450)
    assert figures["stages"] == [["apgd-ce", 292 / 450]]
    assert figures["clean_accuracy"] is None


def _run_script(code, *args, env=None):
    return subprocess.run(
        [sys.executable, "-c", code, reference_autoattack.__file__, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


# The script imports nothing from keras_dpnp: loaded from its file, it runs without TensorFlow.
LOAD = (
    "import importlib.util, sys; "
    "spec = importlib.util.spec_from_file_location('reference_autoattack', sys.argv[1]); "
    "script = importlib.util.module_from_spec(spec); spec.loader.exec_module(script); "
)


def test_a_missing_torchvision_is_replaced_by_a_stand_in_that_fails_only_when_called():
    code = LOAD + (
        "import inspect; script._stand_in_for_torchvision('not installed'); "
        "from torchvision.ops import roi_align; inspect.getmodule(roi_align); "
        "roi_align()"
    )
    result = _run_script(code)
    assert result.stderr.strip().splitlines()[-1] == (
        "RuntimeError: this ONNX graph needs torchvision.ops.roi_align (not installed)"
    )


def test_the_probe_names_the_interpreter_and_the_missing_package(tmp_path):
    # A `torch` package that fails on import shadows any installed PyTorch.
    fake = tmp_path / "torch"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('no PyTorch in this test')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = _run_script(LOAD + "script.main(['script', '--probe'])", env=env)
    answer = json.loads(result.stdout)
    assert answer == {
        "unavailable": f"{sys.executable} cannot import the reference AutoAttack (no PyTorch in "
        f"this test); docs/autoattack.md says how to install it"
    }
