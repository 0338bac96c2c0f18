"""`python -m export`: exit status and one-line errors."""

import os
import subprocess
import sys

import pytest

from export_helpers import tiny_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_cli(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "export", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("model") / "tiny.keras")
    tiny_model().save(path)
    return path


def test_export_then_refuse_to_overwrite(model_file, tmp_path):
    out = str(tmp_path / "export")
    result = run_cli(
        f"--model={model_file}",
        f"--out={out}",
        "--formats=onnx,keras",
        "--class_names=a,b,c,d,e,f,g,h,i,j",
    )
    assert result.returncode == 0, result.stderr
    assert "| onnx | model.onnx |" in result.stdout and "| keras | model.keras |" in result.stdout
    assert "classes: a, b, c" in result.stdout
    assert sorted(os.listdir(out)) == ["metadata.json", "model.keras", "model.onnx"]

    again = run_cli(f"--model={model_file}", f"--out={out}", "--formats=keras")
    assert again.returncode == 1
    assert (
        again.stderr.strip()
        .splitlines()[-1]
        .endswith(
            f"error: {out} already exists and is not empty; pass --overwrite to replace it, or "
            f"choose another --out; {out} was left unchanged"
        )
    )


@pytest.mark.slow
def test_unknown_format_and_missing_flag(model_file, tmp_path):
    result = run_cli(
        f"--model={model_file}", f"--out={tmp_path / 'export'}", "--formats=onnx,tflite"
    )
    assert result.returncode == 1
    assert (
        "error: unknown export format 'tflite'; choose from saved_model, onnx, keras"
        in result.stderr.strip().splitlines()[-1]
    )
    assert os.listdir(tmp_path) == []

    missing = run_cli(f"--model={model_file}")
    assert missing.returncode == 2
    assert "Flag --out must have a value other than None" in missing.stderr.strip().splitlines()[-1]
