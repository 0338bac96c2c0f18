"""The choice among tuning trials of a comparison, made on validation only.

The rule, fixed before any trial runs: the trial with the highest validation PGD accuracy
(mean over its seeds); trials within `TIE_POINTS` of the best count as tied, and of those the
one with the higher validation clean accuracy wins.
"""

from typing import NamedTuple

TIE_POINTS = 0.5


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


def choose(trials, summary):
    """The `Choice` among `trials` (labels) by the rule, from a `comparison.summarise` summary;
    `chosen` is None while a trial has no validation accuracies yet (not finished)."""
    missing = tuple(label for label in trials if _validation(summary.get(label)) is None)
    if missing:
        return Choice(tuple(trials), None, missing)
    scores = {label: _validation(summary[label]) for label in trials}
    best_pgd = max(pgd for pgd, _ in scores.values())
    tied = [label for label in trials if scores[label][0] >= best_pgd - TIE_POINTS / 100]
    chosen = max(tied, key=lambda label: scores[label][::-1])
    return Choice(tuple(trials), chosen)


def _validation(entry):
    """(mean validation PGD accuracy, mean validation clean accuracy), or None."""
    if entry is None or not entry.get("val_pgd_accuracy") or not entry.get("val_clean_accuracy"):
        return None
    return entry["val_pgd_accuracy"]["mean"], entry["val_clean_accuracy"]["mean"]


def choices_markdown(groups, summary):
    """The table's "choice on validation" lines for each group of trials; "" without groups."""
    if not groups:
        return ""
    lines = [
        f"Choice on validation (highest val PGD %, trials within {TIE_POINTS} points of it "
        "tied, then the higher val clean %):"
    ]
    for trials in groups:
        choice = choose(trials, summary)
        among = ", ".join(trials)
        if choice.chosen is None:
            lines.append(f"- {among}: not yet, {', '.join(choice.missing)} to finish")
            continue
        pgd, clean = _validation(summary[choice.chosen])
        lines.append(
            f"- {among}: **{choice.chosen}** (val PGD {100 * pgd:.1f} %, "
            f"val clean {100 * clean:.1f} %)"
        )
    return "\n".join(lines)
