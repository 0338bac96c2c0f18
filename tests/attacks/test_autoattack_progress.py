"""AutoAttack's finished stages on disk: an interrupted run resumes and ends as one that never
stopped; the state of another evaluation, or an unreadable file, is never used."""

import sys

import numpy as np
import pytest

from keras_dpnp.attacks import autoattack_progress
from keras_dpnp.attacks.autoattack import autoattack
from keras_dpnp.attacks.autoattack_progress import ProgressFile, StagesDone

autoattack_module = sys.modules[autoattack.__module__]

EPSILON = 0.12  # where the model is partly robust, so that the later stages have work


class Interrupted(Exception):
    pass


@pytest.fixture
def small_budgets(monkeypatch):
    monkeypatch.setattr(autoattack_module, "STEPS", 20)
    monkeypatch.setattr(autoattack_module, "SQUARE_QUERIES", 300)


def _stages_run(monkeypatch, stop_at=None):
    """Records the name of every stage that runs; raises `Interrupted` on entering `stop_at`."""
    names, real = [], autoattack_module._stage

    def stage(name, *args, **kwargs):
        if name == stop_at:
            raise Interrupted(name)
        names.append(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(autoattack_module, "_stage", stage)
    return names


def _attack(model, progress_file=None, epsilon=EPSILON, version="standard"):
    logits_fn, x, y = model
    return autoattack(
        logits_fn,
        x,
        y,
        epsilon=epsilon,
        version=version,
        batch_size=8,
        verbose=False,
        progress_file=progress_file,
    )


def test_an_interrupted_run_resumes_after_its_last_stage_with_the_same_result(
    standard_model, small_budgets, monkeypatch, tmp_path
):
    uninterrupted = _attack(standard_model)
    progress_file = ProgressFile(str(tmp_path / "progress.npz"), "model-a")
    with monkeypatch.context() as patch:
        _stages_run(patch, stop_at="fab-t")
        with pytest.raises(Interrupted):
            _attack(standard_model, progress_file)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["progress.npz"]  # no temporary left
    ran = _stages_run(monkeypatch)
    resumed = _attack(standard_model, progress_file)
    assert ran == ["fab-t", "square"] and resumed.resumed_stages == 2
    assert resumed.stages == uninterrupted.stages
    np.testing.assert_array_equal(resumed.robust, uninterrupted.robust)
    np.testing.assert_array_equal(resumed.x_adv, uninterrupted.x_adv)
    assert resumed.seconds > sum(resumed.stage_seconds)


@pytest.mark.parametrize(
    "change", [{"model_digest": "model-b"}, {"epsilon": 0.1}, {"version": "standard"}]
)
def test_the_stages_of_another_evaluation_are_not_used(
    standard_model, small_budgets, monkeypatch, tmp_path, change
):
    path = str(tmp_path / "progress.npz")
    _attack(standard_model, ProgressFile(path, "model-a"), version="fast")
    ran = _stages_run(monkeypatch)
    result = _attack(
        standard_model,
        ProgressFile(path, change.get("model_digest", "model-a")),
        epsilon=change.get("epsilon", EPSILON),
        version=change.get("version", "fast"),
    )
    assert result.resumed_stages == 0 and ran[:2] == ["apgd-ce", "apgd-t"]


def test_an_unreadable_progress_file_is_ignored_and_replaced(
    standard_model, small_budgets, monkeypatch, tmp_path
):
    progress_file = ProgressFile(str(tmp_path / "progress.npz"), "model-a")
    (tmp_path / "progress.npz").write_bytes(b"not an npz file")
    result = _attack(standard_model, progress_file, version="fast")
    assert result.resumed_stages == 0
    ran = _stages_run(monkeypatch)
    again = _attack(standard_model, progress_file, version="fast")
    assert ran == [] and again.resumed_stages == 2
    np.testing.assert_array_equal(again.robust, result.robust)


def test_saved_stages_load_back_as_written(tmp_path):
    progress_file = ProgressFile(str(tmp_path / "p.npz"), "digest")
    done = StagesDone(
        robust=np.array([True, False, True]),
        x_adv=np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 2, 2, 1),
        stages=(("apgd-ce", 2 / 3),),
        stage_seconds=(1.25,),
    )
    autoattack_progress.save(progress_file, "key-1", done)
    loaded = autoattack_progress.load(progress_file, "key-1")
    np.testing.assert_array_equal(loaded.robust, done.robust)
    np.testing.assert_array_equal(loaded.x_adv, done.x_adv)
    assert (loaded.stages, loaded.stage_seconds) == (done.stages, done.stage_seconds)
    assert autoattack_progress.load(progress_file, "key-2") is None
    assert autoattack_progress.load(ProgressFile(str(tmp_path / "none.npz"), "d"), "key-1") is None
