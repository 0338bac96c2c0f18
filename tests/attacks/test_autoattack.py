import dataclasses
import re
import sys

import numpy as np
import pytest

from keras_dpnp.attacks.autoattack import autoattack, perturbation_sizes

# The module itself (the package may re-export the function under the same name).
autoattack_module = sys.modules[autoattack.__module__]

EPSILON = 0.12  # where this model is partly robust, so that the later stages have work


@pytest.fixture(scope="module")
def standard_result(standard_model):
    logits_fn, x, y = standard_model
    # One point given a wrong label: misclassified clean, it must count as non-robust.
    y = y.copy()
    y[0] = (y[0] + 1) % 10
    with pytest.MonkeyPatch.context() as patch:  # smaller budgets: this checks the plumbing
        patch.setattr(autoattack_module, "STEPS", 20)
        patch.setattr(autoattack_module, "SQUARE_QUERIES", 300)
        result = autoattack(logits_fn, x, y, epsilon=EPSILON, batch_size=8, verbose=False)
    return result, y


def test_stage_accuracies_never_increase_and_the_last_is_final(standard_model, standard_result):
    result, _ = standard_result
    names = [name for name, _ in result.stages]
    accuracies = [accuracy for _, accuracy in result.stages]
    assert names == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert result.clean_accuracy == pytest.approx(19 / 20)
    assert all(a >= b for a, b in zip([result.clean_accuracy] + accuracies, accuracies))
    assert result.robust_accuracy == accuracies[-1]
    assert result.robust_accuracy == pytest.approx(result.robust.mean())
    assert 0.0 < result.robust_accuracy < accuracies[0] < result.clean_accuracy
    assert len(result.stage_seconds) == 4 and min(result.stage_seconds) > 0
    assert result.seconds > sum(result.stage_seconds)


def test_adversarial_points_are_valid_and_reevaluate_as_reported(standard_model, standard_result):
    logits_fn, x, _ = standard_model
    result, y = standard_result
    assert perturbation_sizes(x, result.x_adv, "linf").max() <= EPSILON + 1e-6
    assert result.x_adv.min() >= 0.0 and result.x_adv.max() <= 1.0
    predicted = np.argmax(logits_fn(result.x_adv), 1)
    np.testing.assert_array_equal(result.robust, predicted == y)
    assert not result.robust[0]
    np.testing.assert_array_equal(result.x_adv[result.robust], x[result.robust])


def test_result_is_frozen(standard_result):
    result, _ = standard_result
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.robust_accuracy = 1.0


def test_fast_version_l2_runs_the_apgd_stages_with_progress(standard_model, capsys):
    logits_fn, x, y = standard_model
    result = autoattack(logits_fn, x[:6], y[:6], epsilon=3.0, norm="l2", version="fast")
    assert [name for name, _ in result.stages] == ["apgd-ce", "apgd-t"]
    assert result.robust_accuracy == 0.0
    assert perturbation_sizes(x[:6], result.x_adv, "l2").max() <= 3.0 + 1e-6
    printed = capsys.readouterr().out
    assert "clean accuracy 100.00%" in printed
    assert "robust accuracy after apgd-ce: 0.00%" in printed


def test_quiet_run_prints_nothing(standard_model, capsys):
    logits_fn, x, y = standard_model
    autoattack(logits_fn, x[:2], y[:2], epsilon=0.3, version="fast", verbose=False)
    assert capsys.readouterr().out == ""


def test_batches_attacked_at_once_give_the_same_result(standard_model, standard_result):
    logits_fn, x, _ = standard_model
    result, y = standard_result
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(autoattack_module, "STEPS", 20)
        patch.setattr(autoattack_module, "SQUARE_QUERIES", 300)
        again = autoattack(logits_fn, x, y, epsilon=EPSILON, batch_size=8, verbose=False, workers=3)
    assert again.stages == result.stages
    np.testing.assert_array_equal(again.robust, result.robust)
    np.testing.assert_array_equal(again.x_adv, result.x_adv)


def test_bad_requests_are_rejected(standard_model):
    logits_fn, x, y = standard_model
    with pytest.raises(ValueError, match="version must be one of"):
        autoattack(logits_fn, x, y, epsilon=0.1, version="plus")
    with pytest.raises(ValueError, match="norm must be one of"):
        autoattack(logits_fn, x, y, epsilon=0.1, norm="Linf")
    with pytest.raises(ValueError, match="workers must be >= 1, got 0"):
        autoattack(logits_fn, x, y, epsilon=0.1, workers=0)
    with pytest.raises(ValueError, match="x is empty"):
        autoattack(logits_fn, x[:0], y[:0], epsilon=0.1)
    with pytest.raises(ValueError, match="at least 4 classes"):
        autoattack(lambda t: logits_fn(t)[:, :3], x, y % 3, epsilon=0.1)


def test_each_stage_bar_counts_its_points_once(standard_model, capsys, monkeypatch):
    logits_fn, x, y = standard_model
    monkeypatch.setattr(autoattack_module, "STEPS", 5)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    result = autoattack(logits_fn, x, y, epsilon=EPSILON, version="fast", batch_size=8)
    printed = capsys.readouterr().out
    robust_after_ce = round(result.stages[0][1] * len(x))
    assert 0 < robust_after_ce < len(x)  # APGD-T attacks the survivors, target by target
    totals = {int(total) for total in re.findall(r"\d+/(\d+)", printed)}
    assert totals == {round(result.clean_accuracy * len(x)), robust_after_ce}, printed


def test_output_that_is_no_terminal_gets_the_stage_lines_without_bars(standard_model, capsys):
    logits_fn, x, y = standard_model
    autoattack(logits_fn, x[:4], y[:4], epsilon=EPSILON, version="fast", batch_size=8)
    printed = capsys.readouterr().out
    assert "robust accuracy after apgd-t" in printed
    assert "/point" not in printed and not re.search(r"\d+/\d+", printed), printed
