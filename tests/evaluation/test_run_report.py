"""`evaluate_run`: a run directory's headline report at its own ε, written once and reused."""

import json
import os

import pytest

from conftest import tiny_model
from keras_dpnp.attacks.pgd import PGDConfig
from keras_dpnp.config import TrainConfig
from keras_dpnp.evaluation import robustness, run_report
from keras_dpnp.evaluation.run_report import attack_settings, evaluate_model, evaluate_run
from keras_dpnp.files import UnwritableError
from keras_dpnp.training.loop import train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("run"))
    train(
        TrainConfig(
            dataset="digits",
            method="pgd_at",
            width=0.25,
            epochs=1,
            epsilon=0.3,
            attack_step_size=0.1,
            attack_steps=2,
            batch_size=128,
            model_dir=folder,
        ),
        verbose=0,
    )
    return folder


def test_headline_report_uses_the_runs_attack_and_is_reused(run_dir):
    results = evaluate_run(run_dir, "headline", progress=False)
    assert (results["suite"], results["epsilon"], results["step_size"]) == ("headline", 0.3, 0.1)
    names = [row["name"] for row in results["attacks"]]
    assert names == ["clean", "fgsm", "pgd", "cw_linf", "autoattack"]
    accuracy = {row["name"]: row["accuracy"] for row in results["attacks"]}
    assert accuracy["autoattack"] <= min(accuracy["pgd"], accuracy["clean"])
    assert results["model"]["path"] == os.path.join(run_dir, "best.keras")
    saved = os.path.join(run_dir, "robustness.json")
    with open(saved, encoding="utf-8") as f:
        assert json.load(f)["attacks"] == results["attacks"]
    before = os.stat(saved).st_mtime_ns
    again = evaluate_run(run_dir, "headline", progress=False)
    assert again["attacks"] == results["attacks"] and os.stat(saved).st_mtime_ns == before
    # AutoAttack's subsets are nested: a report on more points answers for fewer.
    fewer = evaluate_run(run_dir, "headline", autoattack_points=30, progress=False)
    assert fewer["autoattack"]["points"] == 450 and os.stat(saved).st_mtime_ns == before
    os.remove(saved)
    subset = evaluate_run(run_dir, "headline", autoattack_points=30, progress=False)
    assert subset["autoattack"]["points"] == 30
    assert evaluate_run(run_dir, "headline", autoattack_points=20, progress=False) == subset
    more = evaluate_run(run_dir, "headline", autoattack_points=60, progress=False)
    assert more["autoattack"]["points"] == 60


def test_the_attack_defaults_to_the_training_attack_scaled_to_the_given_epsilon():
    trained = PGDConfig(epsilon=0.2, step_size=0.05, norm="linf")
    assert attack_settings(trained) == (0.2, "linf", 0.05)
    epsilon, norm, step = attack_settings(trained, epsilon=0.1)
    assert (epsilon, norm, step) == (0.1, "linf", pytest.approx(0.025))
    assert attack_settings(trained, epsilon=0.1, norm="l2") == (0.1, "l2", None)
    assert attack_settings(trained, step_size=0.01) == (0.2, "linf", 0.01)
    assert attack_settings(None, epsilon=0.3) == (0.3, "linf", None)
    with pytest.raises(ValueError, match="no attack radius"):
        attack_settings(PGDConfig(epsilon=0.0))


def _counting(monkeypatch, module, name):
    """Wraps the real `module.name` with a call counter; returns the list of calls."""
    calls, real = [], getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def test_an_unwritable_report_folder_stops_the_evaluation_before_any_work(tmp_path, monkeypatch):
    model_file = tmp_path / "model.keras"
    tiny_model("standard").save(model_file)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    suites, loads = (
        _counting(monkeypatch, robustness, "evaluate_robustness"),
        _counting(monkeypatch, run_report, "load_model"),
    )
    with pytest.raises(UnwritableError, match=rf"cannot write to {blocker}/report: .*not a folder"):
        evaluate_model(str(model_file), "quick", dataset="digits", out=str(blocker / "report"))
    assert suites == [] and loads == []
    assert sorted(os.listdir(tmp_path)) == ["a_file", "model.keras"]
