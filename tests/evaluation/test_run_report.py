"""`evaluate_run`: a run directory's headline report at its own ε, written once and reused."""

import json
import os
import shutil
import sys

import pytest

from conftest import tiny_model
from keras_dpnp.attacks.autoattack import autoattack
from keras_dpnp.attacks.pgd import PGDConfig
from keras_dpnp.config import TrainConfig
from keras_dpnp.evaluation import robustness, run_report
from keras_dpnp.evaluation.run_report import (
    attack_settings,
    evaluate_model,
    evaluate_run,
    finished_report,
)
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
    assert (results["model"]["path"], results["model"]["run"]) == ("best.keras", run_dir)
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


def test_a_run_directory_moved_elsewhere_keeps_its_report(run_dir, tmp_path):
    results = evaluate_run(run_dir, "headline", autoattack_points=20, progress=False)
    moved = shutil.copytree(run_dir, tmp_path / "cloned" / "run")
    assert finished_report(str(moved), "headline", autoattack_points=20) == results


def test_corruptions_and_geometry_join_the_runs_headline_report(run_dir):
    headline = evaluate_run(run_dir, "headline", autoattack_points=20, progress=False)
    results, markdown, _ = evaluate_model(
        run_dir,
        "corruptions_geometry",
        corruptions={"corruptions": ("fog", "contrast"), "severities": (1,)},
        progress=False,
    )
    assert results["suite"] == "headline + corruptions_geometry"
    assert results["autoattack"] == headline["autoattack"]  # kept, not measured again
    assert 0.0 <= results["corruptions"]["mean_corruption_accuracy"] <= 1.0
    assert "points" in results["geometry"] and "Common corruptions" in markdown
    saved = os.path.join(run_dir, "robustness.json")
    before = os.stat(saved).st_mtime_ns
    again = evaluate_run(run_dir, "headline", autoattack_points=20, progress=False)
    assert again["corruptions"] == results["corruptions"] and os.stat(saved).st_mtime_ns == before
    os.remove(saved)


def test_an_interrupted_autoattack_resumes_after_its_finished_stages(run_dir, tmp_path):
    autoattack_module = sys.modules[autoattack.__module__]
    real_stage, ran, stopped = autoattack_module._stage, [], []

    def stage(name, *args, **kwargs):
        if name == "fab-t" and not stopped:
            stopped.append(name)
            raise KeyboardInterrupt
        ran.append(name)
        return real_stage(name, *args, **kwargs)

    def report_into(folder):
        # At a small ε, where points survive into the later stages.
        return evaluate_model(
            run_dir, "headline", epsilon=0.05, autoattack_points=20, out=str(folder), progress=False
        )[0]

    uninterrupted = report_into(tmp_path / "whole")
    assert os.listdir(tmp_path / "whole").count("autoattack_progress.npz") == 0
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(autoattack_module, "_stage", stage)
        with pytest.raises(KeyboardInterrupt):
            report_into(tmp_path / "cut")
        assert os.listdir(tmp_path / "cut") == ["autoattack_progress.npz"]
        ran.clear()
        resumed = report_into(tmp_path / "cut")
    assert ran == ["fab-t", "square"]
    assert resumed["autoattack"]["stages"] == uninterrupted["autoattack"]["stages"]
    assert "autoattack_progress.npz" not in os.listdir(tmp_path / "cut")


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


def _report(suite, epoch=3, **entries):
    return {
        "suite": suite,
        "parts": list(robustness.SUITES[suite].parts),
        "norm": "linf",
        "epsilon": 0.1,
        "step_size": 0.025,
        "points": 100,
        "seed": 0,
        "subset": None,
        "dataset": {"name": "digits"},
        "model": {"path": "run/best.keras", "epoch": epoch},
        "seconds": 10.0,
        **entries,
    }


def test_a_corruptions_report_joins_the_headline_report_of_the_same_evaluation():
    clean, pgd = {"name": "clean", "accuracy": 0.9}, {"name": "pgd", "accuracy": 0.6}
    headline = _report("headline", attacks=[clean, pgd], autoattack={"points": 50})
    newer_clean = {"name": "clean", "accuracy": 0.91}
    shift = _report(
        "corruptions_geometry", attacks=[newer_clean], corruptions={"mean_corruption_accuracy": 0.7}
    )
    merged = run_report.merged_report(headline, shift)
    assert merged["suite"] == "headline + corruptions_geometry" and merged["seconds"] == 20.0
    assert merged["attacks"] == [newer_clean, pgd]  # the newer row wins, by name
    assert merged["autoattack"] == {"points": 50} and "corruptions" in merged
    assert {"autoattack", "corruptions", "geometry"} <= set(merged["parts"])
    assert run_report.merged_report(merged, shift)["suite"] == "headline + corruptions_geometry"
    other_epoch = _report("corruptions_geometry", epoch=4, attacks=[newer_clean])
    assert run_report.merged_report(headline, other_epoch) is other_epoch
    assert run_report.merged_report(None, shift) is shift


def test_a_report_answers_for_every_suite_whose_parts_it_holds():
    merged = run_report.merged_report(
        _report("headline", attacks=[], autoattack={"points": 50}),
        _report("corruptions_geometry", attacks=[]),
    )
    same = run_report._same_evaluation
    assert same(merged, "headline", 0, "run/best.keras", 50)
    assert same(merged, "corruptions_geometry", 0, "run/best.keras", None)
    assert not same(merged, "headline", 0, "run/best.keras", 60)  # AutoAttack on 50 points
    assert not same(merged, "standard", 0, "run/best.keras", None)  # no Square, CW-L2, sweep
    full = _report("full", attacks=[])
    assert same(full, "headline", 0, "run/best.keras", None)  # its parts are inside full
    standard = _report("standard", attacks=[])  # CW-L2 on 100 points, a coarser sweep
    assert not same(run_report.merged_report(standard, merged), "full", 0, "run/best.keras", None)
    alone = _report("corruptions_geometry", attacks=[])
    assert not same(alone, "headline", 0, "run/best.keras", None)
    older = {**_report("headline", attacks=[], autoattack={"points": 50})}
    del older["parts"]  # a report written before reports named their parts
    assert same(older, "headline", 0, "run/best.keras", 50)
