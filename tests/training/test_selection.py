"""The choice among tuning trials on validation: the rule, its ties, bad groups, the table."""

import pytest

from keras_dpnp.training import selection


def _summary(**trials):
    """{label: (val PGD, val clean[, val APGD])} as a `comparison.summarise` summary."""
    summary = {}
    for label, (pgd, clean, *apgd) in trials.items():
        summary[label] = {
            "val_pgd_accuracy": {"mean": pgd, "std": 0.0},
            "val_clean_accuracy": {"mean": clean, "std": 0.0},
        }
        if apgd:
            summary[label]["val_apgd_accuracy"] = {"mean": apgd[0], "std": 0.0}
    return summary


def test_the_highest_validation_pgd_accuracy_wins():
    summary = _summary(b1=(0.600, 0.85), b3=(0.640, 0.80), b6=(0.630, 0.79))
    assert selection.choose(("b1", "b3", "b6"), summary).chosen == "b3"


def test_within_half_a_point_the_higher_clean_accuracy_wins():
    summary = _summary(b1=(0.600, 0.85), b3=(0.640, 0.80), b6=(0.6352, 0.82))
    assert selection.choose(("b1", "b3", "b6"), summary).chosen == "b6"
    summary["b6"]["val_pgd_accuracy"]["mean"] = 0.6348  # 0.52 points behind: not tied
    assert selection.choose(("b1", "b3", "b6"), summary).chosen == "b3"


def test_no_choice_while_a_trial_is_unfinished():
    summary = _summary(b1=(0.60, 0.85))
    choice = selection.choose(("b1", "b3"), summary)
    assert choice.chosen is None and choice.missing == ("b3",)
    text = selection.choices_markdown(selection.Rule((("b1", "b3"),)), summary)
    assert "b1, b3: not yet, b3 to finish" in text


def test_the_table_lines_name_the_choice_and_its_numbers():
    summary = _summary(t1=(0.61, 0.84), t3=(0.65, 0.80), a1=(0.7, 0.8), a3=(0.5, 0.9))
    text = selection.choices_markdown(selection.Rule((("t1", "t3"), ("a1", "a3"))), summary)
    assert text.splitlines()[1:] == [
        "- t1, t3: **t3** (val PGD 65.0 %, val clean 80.0 %)",
        "- a1, a3: **a1** (val PGD 70.0 %, val clean 80.0 %)",
    ]
    assert selection.choices_markdown(selection.NO_CHOICE, summary) == ""


def test_by_val_apgd_the_apgd_accuracy_decides_with_the_same_ties():
    summary = _summary(b1=(0.60, 0.85, 0.55), b3=(0.70, 0.80, 0.50), b6=(0.69, 0.79, 0.548))
    assert selection.choose(("b1", "b3", "b6"), summary).chosen == "b3"
    assert selection.choose(("b1", "b3", "b6"), summary, "val_apgd").chosen == "b1"
    summary["b6"]["val_clean_accuracy"]["mean"] = 0.86  # 0.2 points behind b1: tied, cleaner
    assert selection.choose(("b1", "b3", "b6"), summary, "val_apgd").chosen == "b6"
    del summary["b3"]["val_apgd_accuracy"]  # trained, not attacked on validation yet
    assert selection.choose(("b1", "b3"), summary, "val_apgd").missing == ("b3",)


def test_only_a_rule_by_val_apgd_attacks_the_validation_points():
    assert selection.Rule((("b1", "b3"),), "val_apgd").attacks_validation
    assert not selection.Rule((("b1", "b3"),)).attacks_validation
    assert not selection.NO_CHOICE.attacks_validation


def test_groups_parse_and_bad_ones_say_what_is_wrong():
    labels = ["t1", "t3", "t6", "pgd_at"]
    assert selection.parse_trial_groups(["t1+t3+t6"], labels) == [("t1", "t3", "t6")]
    with pytest.raises(ValueError, match="two or more variant labels joined by \\+"):
        selection.parse_trial_groups(["t1"], labels)
    with pytest.raises(ValueError, match="t9 is not a --variant label of this comparison"):
        selection.parse_trial_groups(["t1+t9"], labels)
    with pytest.raises(ValueError, match="each label may be in one group once"):
        selection.parse_trial_groups(["t1+t3", "t3+t6"], labels)
