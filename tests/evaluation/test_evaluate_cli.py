import json
import os
import subprocess
import sys

import pytest

from keras_dpnp.backbones import build_backbone
from keras_dpnp.config import TrainConfig
from keras_dpnp.data import load_dataset
from keras_dpnp.model import AdvDPNP
from keras_dpnp.training.loop import train
from keras_dpnp.training.run_dir import ModelLoadError, check_fits_data, find_model, load_model


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A one-epoch Adv-DPNP run on digits with a quarter-width CNN."""
    folder = str(tmp_path_factory.mktemp("run"))
    train(
        TrainConfig(
            dataset="digits",
            method="adv_dpnp",
            width=0.25,
            epochs=1,
            epsilon=0.2,
            attack_step_size=0.05,
            batch_size=64,
            learning_rate=0.05,
            model_dir=folder,
        ),
        verbose=0,
    )
    return folder


@pytest.fixture(scope="module")
def three_class_model(tmp_path_factory):
    backbone = build_backbone(
        "small_cnn", (8, 8, 1), mean=(0.5,), std=(0.25,), feature_dim=8, width=0.25
    )
    path = str(tmp_path_factory.mktemp("bare") / "three.keras")
    AdvDPNP(backbone, 3, method="standard").save(path)
    return path


def _evaluate(*flags):
    return subprocess.run(
        [sys.executable, "-m", "keras_dpnp.evaluate", *flags],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def test_quick_suite_on_a_run_directory_writes_the_report(run_dir, tmp_path):
    out = str(tmp_path / "report")
    done = _evaluate(
        f"--model={run_dir}",
        "--suite=quick",
        "--num_points=40",
        f"--out={out}",
        "--figure_format=png,pdf",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| Clean |" in done.stdout and "### Gradient-masking diagnostics" in done.stdout
    with open(os.path.join(out, "robustness.json"), encoding="utf-8") as f:
        results = json.load(f)
    assert results["epsilon"] == pytest.approx(0.2)
    assert results["step_size"] == pytest.approx(0.05)
    assert results["points"] == 40 and results["dataset"]["name"] == "digits"
    assert results["model"]["method"] == "adv_dpnp"
    assert os.path.basename(results["model"]["path"]) in ("best.keras", "last.keras")
    assert os.path.getsize(os.path.join(out, "robust_accuracy_vs_epsilon.png")) > 1000
    with open(os.path.join(out, "robust_accuracy_vs_epsilon.pdf"), "rb") as f:
        assert f.read(4) == b"%PDF"
    assert "[pdf](robust_accuracy_vs_epsilon.pdf)" in done.stdout


def _last_error_line(done):
    assert done.returncode == 1, done.stderr[-2000:]
    return done.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_cli_errors_are_one_line(three_class_model, tmp_path):
    missing = tmp_path / "nothing.keras"
    assert _last_error_line(_evaluate(f"--model={missing}")).endswith(
        f"error: model not found: {missing}; give a run directory (holding best.keras or "
        f"last.keras) or a .keras file"
    )
    mismatch = _evaluate(f"--model={three_class_model}", "--dataset=digits")
    assert _last_error_line(mismatch).endswith(
        "error: the model predicts 3 classes but digits has 10: pass the --dataset it was "
        "trained on"
    )
    assert _last_error_line(_evaluate(f"--model={three_class_model}")).endswith(
        f"error: {three_class_model} is a bare .keras file: pass --dataset (the data set it "
        f"was trained on)"
    )


def test_a_trained_run_directory_is_found_and_fits_its_data(run_dir, three_class_model):
    source = find_model(run_dir, "last")
    assert source.model_path == os.path.join(run_dir, "last.keras")
    assert source.config.dataset == "digits" and source.folder == run_dir
    assert find_model(three_class_model).config is None
    model = load_model(three_class_model)
    digits = load_dataset("digits").info
    with pytest.raises(ModelLoadError, match="predicts 3 classes but digits has 10"):
        check_fits_data(model, digits)
    check_fits_data(load_model(source.model_path), digits)


@pytest.mark.slow
def test_official_corruptions_of_another_data_set_are_a_one_line_error(run_dir):
    official = _evaluate(f"--model={run_dir}", "--suite=full", "--corruption_source=tfds")
    assert _last_error_line(official).endswith(
        "error: CIFAR-10-C corrupts the CIFAR-10 test set, but the test points come from "
        "digits: use the corruption source 'generated'"
    )


@pytest.mark.slow
def test_full_suite_from_the_command_line(run_dir, tmp_path):
    out, cache = str(tmp_path / "report"), str(tmp_path / "cache")
    done = _evaluate(
        f"--model={run_dir}",
        "--suite=full",
        "--num_points=8",
        f"--out={out}",
        "--corruptions=fog,contrast",
        "--severities=1,5",
        f"--corruption_cache={cache}",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (
        "### Common corruptions (generated): generated from the digits test points" in done.stdout
    )
    with open(os.path.join(out, "robustness.json"), encoding="utf-8") as f:
        results = json.load(f)
    assert list(results["corruptions"]["accuracy"]) == ["fog", "contrast"]
    assert results["corruptions"]["severities"] == [1, 5]
    assert results["geometry"]["anchors"] == "prototypes"
    cached = sorted(os.listdir(cache))
    assert len(cached) == 8  # four sets, each with its sha256 digest
    assert all(f"{name}.sha256" in cached for name in cached if name.endswith(".npz"))
    for name in ("corruption_accuracy.png", "feature_embedding.png"):
        assert os.path.getsize(os.path.join(out, name)) > 1000


def test_the_cli_offers_every_suite():
    code = (
        "import json; from absl import flags; import keras_dpnp.evaluate; "
        "from keras_dpnp.evaluation.robustness import SUITES; "
        "print(json.dumps([flags.FLAGS['suite'].parser.enum_values, list(SUITES)]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    offered, suites = json.loads(done.stdout.strip().splitlines()[-1])
    assert offered == suites
