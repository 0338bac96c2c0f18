import json

import numpy as np
import pytest

from conftest import tiny_model
from digits_models import Quantised, Saturated, standard_digits_model
from keras_dpnp.data import make_dataset
from keras_dpnp.evaluation import report, robustness
from keras_dpnp.evaluation.accuracy import NonFiniteLogitsError, accuracy_under_pgd


def _accuracies(results):
    return {row["name"]: row["accuracy"] for row in results["attacks"]}


def _verdicts(results):
    return {check["name"]: check["passed"] for check in results["diagnostics"]["checks"]}


@pytest.fixture(scope="module")
def honest_quick():
    model, images, labels = standard_digits_model()
    return robustness.evaluate_robustness(
        model, images, labels, epsilon=0.2, suite="quick", progress=False
    )


def test_quick_suite_measures_every_attack_on_the_same_points(honest_quick):
    results = honest_quick
    model, images, labels = standard_digits_model()
    accuracy = _accuracies(results)
    assert list(accuracy) == ["clean", "fgsm", "pgd", "cw_linf", "pgd100", "pgd_restarts"]
    clean = np.mean(np.argmax(model(images / 255.0, training=False), axis=1) == labels)
    assert accuracy["clean"] == pytest.approx(clean)
    assert accuracy["clean"] > 0.85
    assert accuracy["pgd"] < 0.1 and accuracy["cw_linf"] < 0.1
    assert results["worst_case"]["accuracy"] <= min(accuracy.values())
    assert results["step_size"] == pytest.approx(2.5 * 0.2 / 20)
    sweep = results["epsilon_sweep"]["points"]
    assert [p["epsilon"] for p in sweep] == pytest.approx([0.0, 0.1, 0.2, 0.4, 0.5])
    assert sweep[0]["accuracy"] == pytest.approx(accuracy["clean"])
    assert results["points"] == 150 and results["subset"] is None
    assert json.loads(json.dumps(results)) == results


def test_diagnostics_pass_an_honest_model(honest_quick):
    verdicts = _verdicts(honest_quick)
    assert honest_quick["diagnostics"]["passed"]
    assert honest_quick["diagnostics"]["warnings"] == []
    assert verdicts.pop("black-box ≥ white-box") is None  # Square is not in the quick suite
    assert all(verdicts.values()), verdicts
    assert honest_quick["gradients"]["zero_gradient_fraction"] == 0.0


def test_diagnostics_flag_a_quantising_model():
    model, images, labels = standard_digits_model()
    results = robustness.evaluate_robustness(
        Quantised(model), images, labels, epsilon=0.2, suite="quick", progress=False
    )
    verdicts = _verdicts(results)
    assert not results["diagnostics"]["passed"]
    assert verdicts["input gradients are not zero"] is False
    assert verdicts["accuracy falls with ε to ≈ 0"] is False
    assert results["gradients"]["zero_gradient_fraction"] == 1.0
    assert results["diagnostics"]["warnings"][0].startswith("possible gradient masking: ")


def test_diagnostics_flag_a_saturated_softmax_that_only_hides_from_cross_entropy():
    model, images, labels = standard_digits_model()
    results = robustness.evaluate_robustness(
        Saturated(model), images, labels, epsilon=0.2, suite="quick", progress=False
    )
    verdicts = _verdicts(results)
    assert verdicts["softmax is not saturated"] is False
    assert verdicts["input gradients are not zero"] is False
    accuracy = _accuracies(results)
    # PGD on cross-entropy is fooled; the margin attack is not, and the worst case shows it.
    assert accuracy["pgd"] > 0.5
    assert accuracy["cw_linf"] < 0.1 and results["worst_case"]["accuracy"] < 0.1


def test_standard_suite_adds_autoattack_cw_l2_and_square():
    model, images, labels = standard_digits_model()
    results = robustness.evaluate_robustness(
        model, images, labels, epsilon=0.2, suite="standard", num_points=40, progress=False
    )
    auto = results["autoattack"]
    assert [name for name, _ in auto["stages"]] == ["apgd-ce", "apgd-t", "fab-t", "square"]
    accuracy = _accuracies(results)
    assert auto["clean_accuracy"] == pytest.approx(accuracy["clean"])
    assert auto["robust_accuracy"] == accuracy["autoattack"] <= accuracy["pgd"] + 0.05
    assert "autoattack" in results["worst_case"]["attacks"]
    assert results["cw_l2"]["points"] == 40 and results["cw_l2"]["success_rate"] > 0.9
    assert results["square"]["points"] == 40
    check = next(
        check
        for check in results["diagnostics"]["checks"]
        if check["name"] == "black-box ≥ white-box"
    )
    square = results["square"]
    assert check["numbers"]["square"] == square["accuracy"]
    assert check["numbers"]["white_box"] == square["white_box_accuracy"]
    # The verdict follows from the two measured accuracies and the noise tolerance.
    assert check["passed"] is (
        square["accuracy"] >= square["white_box_accuracy"] - check["numbers"]["tolerance"]
    )
    assert len(results["subset"]) == 40 and results["subset"] == sorted(results["subset"])


def test_quick_suite_in_l2():
    model, images, labels = standard_digits_model()
    results = robustness.evaluate_robustness(
        model, images, labels, epsilon=1.0, norm="l2", suite="quick", num_points=40, progress=False
    )
    sweep = results["epsilon_sweep"]
    assert sweep["large_epsilon"] == pytest.approx(0.5 * 8)  # 0.5 · √(8·8·1)
    assert sweep["large_epsilon_accuracy"] <= 0.05
    accuracy = _accuracies(results)
    assert accuracy["pgd"] < accuracy["clean"] - 0.3
    assert results["diagnostics"]["passed"]


def test_bad_arguments_are_rejected_with_their_fix():
    model, images, labels = standard_digits_model()
    with pytest.raises(ValueError, match="suite must be one of"):
        robustness.evaluate_robustness(model, images, labels, epsilon=0.2, suite="huge")
    with pytest.raises(ValueError, match="epsilon must be > 0"):
        robustness.evaluate_robustness(model, images, labels, epsilon=0.0)
    with pytest.raises(ValueError, match="epsilon must be > 0 and finite, got inf"):
        robustness.evaluate_robustness(model, images, labels, epsilon=float("inf"))
    with pytest.raises(ValueError, match="step_size must be > 0 and finite, got nan"):
        robustness.evaluate_robustness(model, images, labels, epsilon=0.2, step_size=float("nan"))
    with pytest.raises(ValueError, match="divide by 255"):
        robustness.evaluate_robustness(model, images.astype(np.float32), labels, epsilon=0.2)
    with pytest.raises(ValueError, match="one per image"):
        robustness.evaluate_robustness(model, images, labels[:5], epsilon=0.2)
    with pytest.raises(ValueError, match="num_points must be >= 1"):
        robustness.evaluate_robustness(model, images, labels, epsilon=0.2, num_points=0)


def test_autoattack_on_a_fixed_subset_names_it_and_keeps_it_across_seeds():
    model, images, labels = standard_digits_model()
    runs = [
        robustness.evaluate_robustness(
            model,
            images,
            labels,
            epsilon=0.2,
            suite="headline",
            seed=seed,
            autoattack_points=20,
            progress=False,
        )
        for seed in (0, 1)
    ]
    for results in runs:
        rows = {row["name"]: row for row in results["attacks"]}
        assert rows["autoattack"]["points"] == 20 and rows["pgd"]["points"] == len(labels)
        auto = results["autoattack"]
        assert auto["points"] == 20 and auto["subset_seed"] == robustness.AUTOATTACK_SUBSET_SEED
        assert auto["robust_accuracy"] <= auto["pgd_accuracy_on_subset"] + 0.1
        worst = results["worst_case"]["autoattack_subset"]
        assert worst["points"] == 20 and worst["accuracy"] <= auto["robust_accuracy"]
    assert runs[0]["autoattack"]["subset"] == runs[1]["autoattack"]["subset"]
    assert runs[0]["autoattack"]["subset"] == robustness.autoattack_subset(len(labels), 20).tolist()
    assert set(runs[0]["autoattack"]["subset"]) < set(robustness.autoattack_subset(len(labels), 50))
    markdown = report.format_markdown(runs[0])
    assert "| AutoAttack (standard) on 20 points |" in markdown
    assert "on a fixed subset of 20 points (seed 0, the same for every run" in markdown
    assert "| **worst case on the 20 AutoAttack points** |" in markdown
    with pytest.raises(ValueError, match="autoattack_points must be >= 1"):
        robustness.evaluate_robustness(model, images, labels, epsilon=0.2, autoattack_points=0)


# A radius at which PGD breaks some points and not others: there, random starts change rows.
EPSILON = 0.1


def _run_suite(monkeypatch, parts, sweep_multiples, **options):
    monkeypatch.setitem(
        robustness.SUITES, "under_test", robustness.SuiteSpec(parts, sweep_multiples)
    )
    model, images, labels = standard_digits_model()
    return robustness.evaluate_robustness(
        model,
        images,
        labels,
        epsilon=EPSILON,
        suite="under_test",
        progress=False,
        **options,
    )


def _sweep_at(results, epsilon):
    return next(
        p["accuracy"] for p in results["epsilon_sweep"]["points"] if p["epsilon"] == epsilon
    )


def test_one_attack_and_seed_give_one_number_in_any_suite(monkeypatch):
    # A short suite, and a longer one whose extra parts and sweep points draw random starts
    # before the strength rows: the PGD-20 row, the sweep at ε and the strength rows agree.
    short = _run_suite(
        monkeypatch, ("clean", "pgd", "epsilon_sweep", "pgd_strength"), (1.0,), restarts=2
    )
    long = _run_suite(
        monkeypatch,
        ("clean", "fgsm", "cw_linf", "epsilon_sweep", "pgd", "pgd_strength"),
        (0.5, 1.0, 2.0, 3.0),
        restarts=2,
    )
    short_rows, long_rows = _accuracies(short), _accuracies(long)
    assert 0.1 < short_rows["pgd"] < short_rows["clean"] - 0.1  # the random starts matter here
    assert _sweep_at(short, EPSILON) == short_rows["pgd"]
    # The long suite sweeps before its PGD row runs, so its sweep point is computed afresh.
    assert _sweep_at(long, EPSILON) == long_rows["pgd"] == short_rows["pgd"]
    for name in ("pgd100", "pgd_restarts"):
        assert long_rows[name] == short_rows[name], name


def _model_with_a_nan_weight():
    model, images, labels = standard_digits_model()
    broken = tiny_model("standard")
    broken.set_weights(model.get_weights())
    kernel = broken.head.kernel.numpy()
    kernel[0, 0] = np.nan
    broken.head.kernel.assign(kernel)
    return broken, images, labels


def test_nan_logits_fail_the_report_instead_of_being_scored():
    model, images, labels = _model_with_a_nan_weight()
    with pytest.raises(NonFiniteLogitsError, match="NaN or infinite on 40 of 40 images"):
        robustness.evaluate_robustness(
            model, images, labels, epsilon=0.2, suite="headline", num_points=40, progress=False
        )


def test_nan_logits_fail_the_accuracy_of_a_training_run():
    model, images, labels = _model_with_a_nan_weight()
    dataset = make_dataset(images, labels, batch_size=64, training=False)
    with pytest.raises(NonFiniteLogitsError, match="on 150 of 150 images"):
        accuracy_under_pgd(model, dataset)
