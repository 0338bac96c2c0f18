"""Bad files through the command lines: one-line error, non-zero exit, nothing left behind."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(module, *args, cwd):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = [line for line in result.stderr.splitlines() if ": error:" in line]
    assert result.returncode != 0 and len(errors) == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    return errors[0]


def test_truncated_archive_stops_training_before_any_run_directory(tmp_path):
    archives = tmp_path / "archives"
    archives.mkdir()
    (archives / "cifar-10-binary.tar.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 40)
    error = _run(
        "keras_dpnp.train",
        "--dataset=cifar10",
        f"--manual_dir={archives}",
        "--epochs=1",
        cwd=tmp_path,
    )
    assert "corrupt or truncated" in error and "cifar-10-binary.tar.gz" in error
    assert not (tmp_path / "runs").exists()


def test_truncated_model_file_is_refused_and_no_report_is_written(tmp_path):
    model = tmp_path / "model.keras"
    model.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    out = tmp_path / "report"
    error = _run(
        "keras_dpnp.evaluate", f"--model={model}", "--dataset=digits", f"--out={out}", cwd=tmp_path
    )
    assert f"could not load {model} as a Keras model" in error
    assert not out.exists()
