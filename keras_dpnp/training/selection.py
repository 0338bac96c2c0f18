"""The choice among tuning trials of a comparison, made on validation only.

The rule, fixed before any trial runs: the trial with the highest validation robust accuracy
(mean over its seeds) by the rule's criterion; trials within `TIE_POINTS` of the best count as
tied, and of those the one with the higher validation clean accuracy wins. The criteria
(`CRITERIA`): `val_pgd`, the PGD accuracy training logs each epoch (PGD-10 by default), or
`val_apgd`, AutoAttack's APGD-CE and APGD-T on a fixed subset of the validation points
(`evaluation/validation_robustness.py`), which a short PGD cannot overstate.
"""

from typing import NamedTuple

TIE_POINTS = 0.5
# --choose_by value: (summary key of the validation robust accuracy, its name in the table).
CRITERIA = {
    "val_pgd": ("val_pgd_accuracy", "val PGD"),
    "val_apgd": ("val_apgd_accuracy", "val APGD"),
}


class Rule(NamedTuple):
    """How a comparison chooses among its tuning trials: the groups of trial labels, the
    criterion (a `CRITERIA` key) and, for `val_apgd`, the validation points it attacks."""

    groups: tuple[tuple[str, ...], ...] = ()
    by: str = "val_pgd"
    points: int = 1000

    @property
    def attacks_validation(self):
        """Whether every run of the comparison gets the validation AutoAttack: by `val_apgd`
        the trials need it for the choice, and the other rows (a baseline, the ablations) get
        it too, so the table's val APGD column compares them all."""
        return self.by == "val_apgd"


# The rule of a comparison without tuning trials: nothing to choose.
NO_CHOICE = Rule()


class Choice(NamedTuple):
    """The outcome for one group of trials: the chosen label, or None with what is missing."""

    trials: tuple[str, ...]
    chosen: str | None
    missing: tuple[str, ...] = ()


def parse_trial_groups(specs, labels):
    """`['trades_b1+trades_b3+trades_b6', ...]` -> [('trades_b1', 'trades_b3', 'trades_b6')].

    Args:
        specs: one `--choose_among` value per group, labels joined by `+`.
        labels: the comparison's variant labels; every trial must be one of them.

    Raises:
        ValueError: a group of fewer than two trials, an unknown label, or a label in two
            groups.
    """
    groups, seen = [], set()
    for spec in specs:
        trials = tuple(filter(None, (label.strip() for label in spec.split("+"))))
        if len(trials) < 2:
            raise ValueError(
                f"--choose_among={spec!r}: give two or more variant labels joined by +, "
                "e.g. --choose_among=trades_b1+trades_b3+trades_b6"
            )
        unknown = [label for label in trials if label not in labels]
        if unknown:
            raise ValueError(
                f"--choose_among={spec!r}: {', '.join(unknown)} is not a --variant label of "
                f"this comparison (labels: {', '.join(labels)})"
            )
        twice = seen.intersection(trials)
        if twice or len(set(trials)) != len(trials):
            raise ValueError(f"--choose_among={spec!r}: each label may be in one group once")
        seen.update(trials)
        groups.append(trials)
    return groups


def choose(trials, summary, by="val_pgd"):
    """The `Choice` among `trials` (labels) by the rule with criterion `by`, from a
    `comparison.summarise` summary; `chosen` is None while a trial has no validation accuracies
    yet (not finished, or not attacked on validation)."""
    missing = tuple(label for label in trials if _validation(summary.get(label), by) is None)
    if missing:
        return Choice(tuple(trials), None, missing)
    scores = {label: _validation(summary[label], by) for label in trials}
    best = max(robust for robust, _ in scores.values())
    tied = [label for label in trials if scores[label][0] >= best - TIE_POINTS / 100]
    chosen = max(tied, key=lambda label: scores[label][::-1])
    return Choice(tuple(trials), chosen)


def _validation(entry, by):
    """(mean validation robust accuracy by criterion `by`, mean validation clean accuracy), or
    None."""
    key = CRITERIA[by][0]
    if entry is None or not entry.get(key) or not entry.get("val_clean_accuracy"):
        return None
    return entry[key]["mean"], entry["val_clean_accuracy"]["mean"]


def choices_markdown(rule, summary):
    """The table's "choice on validation" lines for each group of the `Rule`; "" without
    groups. A rule by `val_apgd` also names what the `val_pgd` rule would have chosen."""
    if not rule.groups:
        return ""
    name = CRITERIA[rule.by][1]
    lines = [
        f"Choice on validation (highest {name} %, trials within {TIE_POINTS} points of it "
        "tied, then the higher val clean %):"
    ]
    for trials in rule.groups:
        choice = choose(trials, summary, rule.by)
        among = ", ".join(trials)
        if choice.chosen is None:
            lines.append(f"- {among}: not yet, {', '.join(choice.missing)} to finish")
            continue
        robust, clean = _validation(summary[choice.chosen], rule.by)
        line = (
            f"- {among}: **{choice.chosen}** ({name} {100 * robust:.1f} %, "
            f"val clean {100 * clean:.1f} %)"
        )
        if rule.by != "val_pgd":
            line += f"; by val PGD: {choose(trials, summary).chosen or 'not yet'}"
        lines.append(line)
    return "\n".join(lines)
