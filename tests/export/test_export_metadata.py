"""metadata.json from a run directory: checkpoint choice, class names, robustness figures."""

import json
import os

import pytest

from export_helpers import tiny_model
from keras_dpnp.config import TrainConfig
from keras_dpnp.exporting import ExportError, export_model

RESULTS = {
    "dataset": "digits",
    "test_examples": 450,
    "attack": "PGD-20 (CE)",
    "epsilon": 0.2,
    "clean_accuracy": 0.97,
    "pgd_accuracy": 0.67,
    "train_seconds": 42.0,
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    (folder / "config.json").write_text(TrainConfig(dataset="digits", epsilon=0.2).to_json())
    (folder / "results.json").write_text(json.dumps(RESULTS))
    report = {"model": {"path": str(folder / "best.keras")}, "attacks": [], "epsilon": 0.2}
    (folder / "robustness.json").write_text(json.dumps(report))
    tiny_model().save(str(folder / "last.keras"))
    tiny_model(head="linear").save(str(folder / "best.keras"))
    return folder


def test_best_checkpoint_with_its_robustness_report(run_dir, tmp_path):
    metadata = export_model(str(run_dir), str(tmp_path / "export"), "keras")
    assert metadata["checkpoint"] == str(run_dir / "best.keras")
    assert metadata["model"]["head"]["kind"] == "linear"
    assert metadata["class_names"] == [str(digit) for digit in range(10)]
    assert metadata["class_names_source"] == "dataset digits"
    assert metadata["training"]["config"]["dataset"] == "digits"
    robustness = metadata["robustness"]
    assert robustness["report"]["model"]["path"].endswith("best.keras")
    assert "test" not in robustness
    assert robustness["notes"] == [
        "results.json describes last.keras, not the exported best.keras; left out"
    ]


def test_last_checkpoint_with_its_test_accuracy(run_dir, tmp_path):
    metadata = export_model(str(run_dir), str(tmp_path / "export"), "keras", checkpoint="last")
    assert metadata["checkpoint"] == str(run_dir / "last.keras")
    assert metadata["model"]["head"] == {"kind": "prototype", "logits": "dot", "radius": 4.0}
    test = metadata["robustness"]["test"]
    assert test == {key: value for key, value in RESULTS.items() if key != "train_seconds"}
    assert "report" not in metadata["robustness"]
    assert metadata["robustness"]["notes"][0].startswith("robustness.json describes ")
    written = json.loads((tmp_path / "export" / "metadata.json").read_text())
    assert written["robustness"] == metadata["robustness"]


def test_the_test_accuracy_of_the_checkpoint_results_json_names_is_kept(run_dir, tmp_path):
    named = {**RESULTS, "checkpoint": {"file": "best.keras", "epoch": 3, "chosen_by": "val"}}
    (run_dir / "results.json").write_text(json.dumps(named))
    try:
        metadata = export_model(str(run_dir), str(tmp_path / "export"), "keras")
    finally:
        (run_dir / "results.json").write_text(json.dumps(RESULTS))
    assert metadata["checkpoint_epoch"] == 3
    assert metadata["robustness"]["test"]["clean_accuracy"] == RESULTS["clean_accuracy"]
    assert "notes" not in metadata["robustness"]


def test_bare_model_has_index_names_and_no_robustness(tmp_path):
    path = str(tmp_path / "model.keras")
    tiny_model().save(path)
    metadata = export_model(path, str(tmp_path / "export"), "keras")
    assert metadata["class_names"] == [str(index) for index in range(10)]
    assert metadata["class_names_source"] == "class indices (names unknown)"
    assert metadata["robustness"] is None and metadata["training"]["config"] is None


def test_unknown_checkpoint_and_corrupt_run_file(run_dir, tmp_path):
    with pytest.raises(ExportError, match=r"checkpoint must be one of \['best', 'last'\]"):
        export_model(str(run_dir), str(tmp_path / "export"), checkpoint="first")
    broken = tmp_path / "run"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    os.link(run_dir / "last.keras", broken / "last.keras")
    with pytest.raises(ExportError, match=r"could not read .*config\.json: .*; repair or remove"):
        export_model(str(broken), str(tmp_path / "export"))


def test_a_nan_in_the_run_files_never_reaches_metadata_json(run_dir, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.json", "last.keras"):
        os.link(run_dir / name, run / name)
    (run / "results.json").write_text(json.dumps({**RESULTS, "pgd_accuracy": float("nan")}))
    with pytest.raises(
        ExportError, match=r"metadata\.json would hold a NaN .* at robustness\..*pgd_accuracy"
    ):
        export_model(str(run), str(tmp_path / "export"), "keras", checkpoint="last")
    assert not (tmp_path / "export").exists()
    assert [name for name in os.listdir(tmp_path) if name.startswith(".")] == []
