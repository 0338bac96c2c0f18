"""End to end on real digits: train (CLI), export (CLI), predict (CLI) = Keras's classes."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

from keras_dpnp.data import load_dataset

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_trained_digits_model_predicts_like_keras(tmp_path):
    run_dir, out = tmp_path / "run", tmp_path / "export"
    run(
        "keras_dpnp.train",
        "--flagfile=configs/digits_adv_dpnp.cfg",
        "--epochs=2",
        f"--model_dir={run_dir}",
    )
    printed = run("export", f"--model={run_dir}", f"--out={out}")  # the run's model
    assert "| onnx | model.onnx |" in printed

    images, labels = load_dataset("digits").test
    np.save(tmp_path / "test.npy", images)
    for index in range(3):
        Image.fromarray(images[index, :, :, 0]).save(tmp_path / f"digit{index}.png")
    lines = run(
        "export.predict",
        f"--onnx={out / 'model.onnx'}",
        "--json",
        str(tmp_path / "test.npy"),
        *(str(tmp_path / f"digit{index}.png") for index in range(3)),
    ).splitlines()
    rows = [json.loads(line) for line in lines]

    results = json.loads((run_dir / "results.json").read_text())
    model = keras.saving.load_model(str(run_dir / results["checkpoint"]["file"]))
    logits = np.asarray(model.predict(images.astype(np.float32) / 255, verbose=0))
    expected = np.argmax(logits, axis=1)
    assert [row["index"] for row in rows] == list(expected) + list(expected[:3])
    assert [row["class"] for row in rows[:3]] == [str(digit) for digit in expected[:3]]
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
    np.testing.assert_allclose(
        [row["probability"] for row in rows[:450]], probabilities.max(axis=1), atol=1e-5
    )
    assert np.mean(expected == labels) > 0.3

    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["robustness"]["test"]["pgd_accuracy"] == results["pgd_accuracy"]
    assert metadata["training"]["epsilon"] == pytest.approx(0.2)
