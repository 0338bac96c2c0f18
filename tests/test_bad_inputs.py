"""Bad files through the command lines: one-line error, non-zero exit, nothing left behind."""

import os
import subprocess
import sys

import pytest

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


def _tiny_model_file(folder):
    from conftest import tiny_model

    path = folder / "model.keras"
    tiny_model("standard").save(path)
    return path


@pytest.mark.slow
def test_an_unwritable_report_folder_is_one_line_before_the_suite(tmp_path):
    model = _tiny_model_file(tmp_path)
    (tmp_path / "a_file").write_text("")
    out = tmp_path / "a_file" / "report"
    error = _run(
        "keras_dpnp.evaluate", f"--model={model}", "--dataset=digits", f"--out={out}", cwd=tmp_path
    )
    assert error.endswith(f"error: cannot write to {out}: {tmp_path / 'a_file'} is not a folder")
    assert sorted(os.listdir(tmp_path)) == ["a_file", "model.keras"]


@pytest.mark.slow
def test_an_unwritable_export_folder_is_one_line_and_nothing_is_written(tmp_path):
    model = _tiny_model_file(tmp_path)
    (tmp_path / "a_file").write_text("")
    out = tmp_path / "a_file" / "export"
    error = _run("export", f"--model={model}", f"--out={out}", cwd=tmp_path)
    assert f"error: cannot write to {tmp_path / 'a_file'}: " in error
    assert sorted(os.listdir(tmp_path)) == ["a_file", "model.keras"]
