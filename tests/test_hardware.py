"""Hardware detection, `--precision=auto`, and the entry points' start-up settings."""

import json
import os
import re
import subprocess
import sys

import pytest

from keras_dpnp import hardware, startup
from keras_dpnp.config import TrainConfig
from keras_dpnp.training import distribute

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AVX2_ONLY = "processor\t: 0\nmodel name\t: Some AVX2 CPU\nflags\t\t: fpu sse4_2 avx avx2 fma\n"
AMX = AVX2_ONLY.replace("fma", "fma avx512f avx512_bf16 amx_tile amx_bf16")


def test_cpuinfo_gives_the_model_and_the_flags():
    assert hardware.cpu_model(AMX) == "Some AVX2 CPU"
    assert {"avx2", "amx_bf16", "avx512_bf16"} <= hardware.cpu_flags(AMX)
    assert hardware.isa_summary(hardware.cpu_flags(AVX2_ONLY))["avx2"]
    assert not hardware.isa_summary(hardware.cpu_flags(AVX2_ONLY))["amx_bf16"]
    assert hardware.cpu_flags("") == frozenset()


@pytest.mark.parametrize(
    "flags,expected",
    [
        ("fpu avx avx2 fma", "float32"),
        ("avx2 avx512f avx512_vnni", "float32"),
        ("avx2 avx512f avx512_bf16", "mixed_bfloat16"),
        ("avx2 amx_tile amx_bf16", "mixed_bfloat16"),
    ],
)
def test_auto_picks_bfloat16_only_on_cpus_that_compute_it(flags, expected):
    precision, reason = hardware.auto_precision(frozenset(flags.split()))
    assert precision == expected and reason


def test_auto_on_gpus_follows_the_lowest_compute_capability():
    assert hardware.auto_precision(frozenset(), [(8, 0), (9, 0)])[0] == "mixed_bfloat16"
    assert hardware.auto_precision(frozenset({"amx_bf16"}), [(7, 5)])[0] == "float32"
    assert hardware.auto_precision(frozenset(), [(8, 6), (7, 0)])[0] == "float32"


def _fake_cpu(monkeypatch, cpuinfo):
    monkeypatch.setattr(hardware, "read_cpuinfo", lambda path="/proc/cpuinfo": cpuinfo)


def test_resolve_precision_reads_this_cpu(monkeypatch):
    _fake_cpu(monkeypatch, AVX2_ONLY)
    assert distribute.resolve_precision("auto")[0] == "float32"
    _fake_cpu(monkeypatch, AMX)
    assert distribute.resolve_precision("auto")[0] == "mixed_bfloat16"
    assert distribute.resolve_precision("mixed_float16") == ("mixed_float16", "chosen explicitly")
    with pytest.raises(ValueError, match="--precision='float8' is not one of"):
        distribute.resolve_precision("float8")


def test_auto_is_the_default_and_matches_a_saved_run_of_what_it_picks(monkeypatch):
    config = TrainConfig()
    assert config.precision == "auto"
    saved_float32 = TrainConfig(precision="float32").to_json()
    saved_bfloat16 = TrainConfig(precision="mixed_bfloat16").to_json()
    _fake_cpu(monkeypatch, AVX2_ONLY)
    assert config.matches_saved(saved_float32) and not config.matches_saved(saved_bfloat16)
    assert TrainConfig(precision="float32").matches_saved(config.to_json())
    _fake_cpu(monkeypatch, AMX)
    assert config.matches_saved(saved_bfloat16) and not config.matches_saved(saved_float32)


def test_entry_points_are_recognised_from_the_command_line():
    python = sys.executable
    assert startup.started_as_entry_point([python, "-m", "keras_dpnp.train", "--epochs=1"])
    assert startup.started_as_entry_point([python, "-X", "dev", "-mkeras_dpnp.bench"])
    assert startup.started_as_entry_point([python, "-m", "export", "--model=m"])
    assert startup.started_as_entry_point([python, "/venv/bin/keras-dpnp-evaluate", "--model=m"])
    assert not startup.started_as_entry_point([python, "-m", "pytest", "tests"])
    assert not startup.started_as_entry_point([python, "-c", "import keras_dpnp"])
    assert not startup.started_as_entry_point([python, "script.py", "-m", "keras_dpnp.train"])


def test_settings_keep_what_the_user_set():
    environ = {"TF_ENABLE_ONEDNN_OPTS": "0"}
    assert startup.apply_settings({"TF_ENABLE_ONEDNN_OPTS": "1"}, environ) == {}
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": "0"}
    assert startup.tensorflow_settings(frozenset({"avx2"})) == {"TF_ENABLE_ONEDNN_OPTS": "1"}
    assert startup.tensorflow_settings(frozenset({"neon"})) == {}


# The child claims to be `python -m keras_dpnp.train` (sys.orig_argv) before importing the
# package, then reports the variable and TensorFlow's own oneDNN state.
_CHILD = """
import os, sys
sys.orig_argv = [sys.executable, "-m", "{module}"]
import keras_dpnp
from tensorflow.python.util import _pywrap_util_port
print(os.environ.get("TF_ENABLE_ONEDNN_OPTS"), _pywrap_util_port.IsMklEnabled())
"""


def _child(module, **env):
    environ = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT, **env}
    if "TF_ENABLE_ONEDNN_OPTS" not in env:
        environ.pop("TF_ENABLE_ONEDNN_OPTS", None)
    result = subprocess.run(
        [sys.executable, "-c", _CHILD.format(module=module)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.split()[-2:]


needs_avx2 = pytest.mark.skipif(
    "avx2" not in hardware.cpu_flags(), reason="the entry points enable oneDNN on AVX2 CPUs only"
)


@needs_avx2
def test_an_entry_point_turns_onednn_on_before_tensorflow_loads():
    assert _child("keras_dpnp.train") == ["1", "True"]


@pytest.mark.slow
@needs_avx2
def test_an_entry_point_keeps_the_users_own_onednn_setting():
    assert _child("keras_dpnp.train", TF_ENABLE_ONEDNN_OPTS="0") == ["0", "False"]


def test_importing_the_library_leaves_the_environment_alone():
    assert _child("pytest")[0] == "None"


def test_a_run_records_what_auto_resolved_to(monkeypatch):
    import tensorflow as tf

    from keras_dpnp.training import console, loop

    _fake_cpu(monkeypatch, AVX2_ONLY)
    config = TrainConfig(name="r").with_resolved_precision()
    assert json.loads(config.to_json())["precision"] == "float32"
    facts = console.RunFacts(
        parameters=1,
        split_sizes={"train": 1},
        data_source="s",
        devices=loop.devices_text(tf.distribute.get_strategy()),
        precision_reason=distribute.resolve_precision("auto")[1],
        onednn=distribute.onednn_status(),
        done_epochs=0,
    )
    banner = console.start_banner(config, facts)
    assert "precision  float32 (CPU has no native bfloat16" in banner
    assert "oneDNN o" in banner and "Some AVX2 CPU" in banner


_NOISY_CHILD = """
import os, sys
sys.orig_argv = [sys.executable, "-m", "keras_dpnp.train"]
import keras_dpnp
os.write(2, b"W0000 1 dataset.cc:1] Input of GeneratorDatasetOp::Dataset will not be optimized\\n")
os.write(2, b"E0000 1 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)\\n")
os.write(2, b"E0000 1 some_kernel.cc:9] a real error\\n")
raise RuntimeError("the traceback gets through")
"""


@pytest.mark.slow
def test_an_entry_point_drops_the_known_noise_and_nothing_else():
    result = subprocess.run(
        [sys.executable, "-c", _NOISY_CHILD],
        env={**os.environ, "PYTHONPATH": ROOT},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1
    assert "GeneratorDatasetOp" not in result.stderr and "oneDNN custom" not in result.stderr
    assert ("cuInit" in result.stderr) == hardware.nvidia_driver_loaded()
    assert "a real error" in result.stderr
    assert result.stderr.rstrip().endswith("RuntimeError: the traceback gets through")


@pytest.mark.parametrize(
    "line,noise",
    [
        ("I0000 00:00:1.2 31472 single_machine.cc:376] Starting new session", True),
        (
            "I0000 00:00:1.2 31472 devices.cc:67] Number of eligible GPUs (core count >= 8, "
            "compute capability >= 0.0): 0",
            True,
        ),
        (
            "I0000 00:00:1.2 31472 devices.cc:67] Number of eligible GPUs (core count >= 8, "
            "compute capability >= 0.0): 1",
            False,
        ),
        ("E0000 00:00:1.2 31472 some_kernel.cc:9] a real error", False),
    ],
)
def test_the_export_notes_of_a_cpu_machine_are_noise(line, noise):
    patterns = startup.noise_patterns(nvidia_driver_loaded=False)
    assert any(re.search(pattern, line) for pattern in patterns) is noise


def test_the_cuda_start_up_notes_are_noise_only_without_an_nvidia_driver():
    assert startup.CPU_ONLY_NOISE[0] in startup.noise_patterns(nvidia_driver_loaded=False)
    assert set(startup.noise_patterns(True)) == set(startup.ALWAYS_NOISE)


# The filter set up in a process that then starts a longer-lived one holding the error stream
# (as multiprocessing's resource tracker does) and exits. The package is stubbed so that the
# child imports `keras_dpnp.startup` without TensorFlow.
_FILTERED_CHILD = """
import os, subprocess, sys, types
package = types.ModuleType("keras_dpnp")
package.__path__ = [os.path.join({root!r}, "keras_dpnp")]
sys.modules["keras_dpnp"] = package
from keras_dpnp import startup
startup.filter_stderr([r"drop me"])
holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
print(holder.pid, flush=True)
os.write(2, b"drop me: noise\\n")
os.write(2, b"kept line\\n")
os.write(2, b"partial line without its newline")
"""


def test_the_filter_hands_the_error_stream_back_while_a_child_still_holds_it(tmp_path):
    out, err = tmp_path / "out", tmp_path / "err"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-c", _FILTERED_CHILD.format(root=ROOT)],
            stdout=stdout,
            stderr=stderr,
        )
        returncode = child.wait(timeout=120)
    holder = int(out.read_text().split()[0])
    os.kill(holder, 9)
    assert returncode == 0
    assert err.read_text() == "kept line\npartial line without its newline"
