"""The trade-off frontier of a comparison: clean against robust test accuracy.

A method's variants that differ only in β form its curve (`trade_off_curves`, `frontier_points`,
drawn by `plot`). `gap_section` asks, for every point of a method's curve, whether it lies
above the frontier of the other methods' points, and whether by more than the seed spread: the
question a claim of a better trade-off has to answer.
"""

import dataclasses
import math
from typing import NamedTuple

import numpy as np

from keras_dpnp import figures


def robust_key(summary):
    """(summary key, attack name) of the robust axis: AutoAttack where every variant has it,
    else the training attack's test accuracy."""
    if all(entry.get("autoattack_accuracy") for entry in summary.values()):
        return "autoattack_accuracy", "AutoAttack"
    return "pgd_accuracy", next(iter(summary.values()))["attack"].split(" ")[0]


# A method's trade-off curve joins its variants that differ in these settings alone.
_ALONG_THE_CURVE = ("beta", "seed", "name", "model_dir")


def trade_off_curves(rows):
    """{variant label: curve key}: variants whose settings differ only in β (and seed) share
    a key, so a method at several β is one curve and an ablation (another setting changed)
    stands apart."""
    return {
        run.label: tuple(
            (field.name, repr(getattr(run.config, field.name)))
            for field in dataclasses.fields(run.config)
            if field.name not in _ALONG_THE_CURVE
        )
        for run, _ in rows
    }


def frontier_points(summary, robust, curves=None):
    """{curve name: [(label, clean stats, robust stats)]}, each curve's points by robustness
    (`robust`: the summary key of the robust axis, as `robust_key` gives it).

    A curve is a method's variants that share a `trade_off_curves` key (all of a method's
    variants when `curves` is None). It is named after the method; where a method has several,
    all but its largest are named after their variants' labels.
    """
    groups = {}
    for label, entry in summary.items():
        clean, robust_stats = entry["clean_accuracy"], entry[robust]
        if clean is not None and robust_stats is not None:
            key = (entry["method"], (curves or {}).get(label))
            groups.setdefault(key, []).append((label, clean, robust_stats))
    largest = {}
    for (method, curve), points in groups.items():
        if method not in largest or len(points) > len(groups[method, largest[method]]):
            largest[method] = curve
    named = {}
    for (method, curve), points in groups.items():
        name = method if largest[method] == curve else ", ".join(label for label, _, _ in points)
        named[name] = sorted(points, key=lambda point: point[2]["mean"])
    return named


def plot(summary, folder, stem="comparison", curves=None):
    """The trade-off frontier as `folder/stem.png`: clean against robust accuracy, one colour
    per curve (`frontier_points`; `curves` from `trade_off_curves`).

    Each variant is a point with its seed spread as error bars, labelled; a curve's points
    (e.g. TRADES at several β) are joined in order of robustness. Returns the path written.
    """
    key, attack = robust_key(summary)
    figure, axes = figures.subplots(figsize=(6.5, 5))
    for curve, points in frontier_points(summary, key, curves).items():
        x = [100 * robust["mean"] for _, _, robust in points]
        y = [100 * clean["mean"] for _, clean, _ in points]
        line = axes.errorbar(
            x,
            y,
            xerr=[100 * robust["std"] for _, _, robust in points],
            yerr=[100 * clean["std"] for _, clean, _ in points],
            fmt="o-" if len(points) > 1 else "o",
            capsize=3,
            label=curve,
        )
        for (label, _, _), px, py in zip(points, x, y, strict=True):
            if label != curve:
                axes.annotate(
                    label,
                    (px, py),
                    textcoords="offset points",
                    xytext=(4, 4),
                    fontsize=7,
                    color=line[0].get_color(),
                )
    axes.set_xlabel(f"{attack} {figures.ACCURACY_LABEL}")
    axes.set_ylabel(f"clean {figures.ACCURACY_LABEL}")
    axes.set_title("clean against robust test accuracy (mean ± std over seeds)", fontsize=9)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    return figures.save_figure(figure, folder, stem)[0]


class Point(NamedTuple):
    """A variant's mean clean and robust accuracy (fractions) and their spreads over seeds."""

    label: str
    clean: float
    robust: float
    clean_std: float = 0.0
    robust_std: float = 0.0
    seeds: int = 1


class Gap(NamedTuple):
    """How far a point lies above a frontier (negative: below), in accuracy (fractions).

    `clean`: its clean accuracy minus the frontier's at its robustness (inf: it is more robust
    than every frontier point); `robust`: its robust accuracy minus the frontier's at its clean
    accuracy (inf: it is cleaner than every frontier point); each spread combines the point's
    standard deviation with the frontier's there. `spreads`: the signed distance to the
    frontier counted in spreads (`distance_in_spreads`); nan for a point of one seed.
    """

    clean: float
    robust: float
    clean_spread: float
    robust_spread: float
    spreads: float


def pareto_front(points):
    """The points that no other point matches in both clean and robust accuracy while beating
    it in one, in order of rising robustness (and so of falling clean accuracy)."""
    front = []
    for point in sorted(points, key=lambda p: (-p.robust, -p.clean)):
        if not front or point.clean > front[-1].clean:
            front.append(point)
    return front[::-1]


def gap_to_front(point, front):
    """`point`'s `Gap` to the frontier through `front` (a non-empty `pareto_front`).

    The frontier joins the front's points by straight lines; left of its least robust point it
    stays at that point's clean accuracy, below its most robust point at that point's
    robustness: the edge of the region that a model of the front matches or beats in both.
    """
    robust = [p.robust for p in front]
    clean = [p.clean for p in front]
    if point.robust > robust[-1]:
        clean_gap, clean_spread = math.inf, point.clean_std
    else:
        clean_gap = point.clean - np.interp(point.robust, robust, clean)
        frontier_std = np.interp(point.robust, robust, [p.clean_std for p in front])
        clean_spread = math.hypot(point.clean_std, frontier_std)
    if point.clean > clean[0]:
        robust_gap, robust_spread = math.inf, point.robust_std
    else:
        robust_gap = point.robust - np.interp(point.clean, clean[::-1], robust[::-1])
        frontier_std = np.interp(point.clean, clean[::-1], [p.robust_std for p in front][::-1])
        robust_spread = math.hypot(point.robust_std, frontier_std)
    spreads = math.copysign(distance_in_spreads(point, front), clean_gap)
    return Gap(
        float(clean_gap), float(robust_gap), float(clean_spread), float(robust_spread), spreads
    )


# Farther than any accuracy: where the frontier's two end rays are cut off.
_BEYOND = 2.0


def _frontier_pieces(front):
    """The frontier's straight pieces as (start, end, (robust std, clean std)) in (robust,
    clean) coordinates: the ray left of the least robust point, the segments between points,
    the ray below the most robust one; a piece's spread is the largest of its points'."""
    first, last = front[0], front[-1]
    pieces = [
        ((first.robust - _BEYOND, first.clean), (first.robust, first.clean), first),
        *(((a.robust, a.clean), (b.robust, b.clean), a, b) for a, b in zip(front, front[1:])),
        ((last.robust, last.clean), (last.robust, last.clean - _BEYOND), last),
    ]
    return [
        (start, end, (max(p.robust_std for p in ends), max(p.clean_std for p in ends)))
        for start, end, *ends in pieces
    ]


def distance_in_spreads(point, front):
    """The smallest move that puts `point` on the frontier through `front`, each coordinate
    counted in its spread (√((Δrobust / σ_robust)² + (Δclean / σ_clean)²), σ the point's and
    the nearest piece's standard deviations combined); nan for a point of one seed, or where a
    coordinate has no spread at all."""
    if point.seeds < 2:
        return math.nan
    distances = []
    for start, end, (robust_std, clean_std) in _frontier_pieces(front):
        spread = np.array(
            [math.hypot(point.robust_std, robust_std), math.hypot(point.clean_std, clean_std)]
        )
        if not spread.all():
            return math.nan
        p, a, b = (np.array(xy) / spread for xy in ((point.robust, point.clean), start, end))
        along = np.clip(np.dot(p - a, b - a) / np.dot(b - a, b - a), 0.0, 1.0)
        distances.append(float(np.linalg.norm(p - (a + along * (b - a)))))
    return min(distances)


def verdict(point, gap):
    """Where `point` lies against a frontier, in words, from its `Gap`: above (or above every
    other point) or below, and beyond or within the spread."""
    if gap.clean == 0:
        return "on the frontier"
    if math.isinf(gap.clean) and math.isinf(gap.robust):
        side = "above every other point"
    else:
        side = "above" if gap.clean > 0 else "below"
    if math.isnan(gap.spreads):
        why = "one seed" if point.seeds < 2 else "a spread of zero"
        return f"{side} ({why}: no spread to judge by)"
    return f"{side}, {'beyond' if abs(gap.spreads) > 1 else 'within'} the spread"


def method_gaps(summary, key, curves=None):
    """[(method, `Point`, `Gap`)]: each point of each method's own curve (the one
    `frontier_points` names after the method) against the `pareto_front` of every other
    method's points; empty with fewer than two methods."""
    named = frontier_points(summary, key, curves)
    points = {
        label: Point(
            label,
            clean["mean"],
            robust["mean"],
            clean["std"],
            robust["std"],
            min(len(clean["values"]), len(robust["values"])),
        )
        for curve in named.values()
        for label, clean, robust in curve
    }
    method_of = {label: summary[label]["method"] for label in points}
    rows = []
    for name, curve in named.items():
        method = method_of[curve[0][0]]
        others = [point for label, point in points.items() if method_of[label] != method]
        if name != method or not others:
            continue
        front = pareto_front(others)
        for label, _, _ in curve:
            rows.append((method, points[label], gap_to_front(points[label], front)))
    return rows


def _gap_cell(distance, spread):
    return "–" if math.isinf(distance) else f"{100 * distance:+.1f} ± {100 * spread:.1f}"


def _spreads_cell(distance):
    return "–" if math.isnan(distance) else f"{distance:+.1f}"


def gap_section(summary, curves=None):
    """The Markdown section that places each point of each method's curve against the other
    methods' frontier (`method_gaps`), as lines; [] with fewer than two methods."""
    key, attack = robust_key(summary)
    rows = method_gaps(summary, key, curves)
    if not rows:
        return []
    lines = [
        "### Against the other methods' frontier",
        "",
        f"| variant | method | clean gap | {attack} gap | gap / spread | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for method, point, gap in rows:
        lines.append(
            f"| {point.label} | {method} | {_gap_cell(gap.clean, gap.clean_spread)} | "
            f"{_gap_cell(gap.robust, gap.robust_spread)} | {_spreads_cell(gap.spreads)} "
            f"| {verdict(point, gap)} |"
        )
    lines += [
        "",
        "The frontier: the other methods' points (every variant of theirs) that none of them "
        "beats in both accuracies, joined by straight lines. clean gap: the variant's clean "
        f"accuracy minus the frontier's at its {attack} accuracy, in points; {attack} gap: the "
        "same at its clean accuracy; – : no other method's point is as robust (clean gap) or as "
        "clean (robust gap). ± : the standard deviations over seeds of the variant and of the "
        "frontier there, combined. gap / spread: the smallest move that would put the variant on "
        "the frontier, each coordinate counted in its spread (the variant's and the nearest "
        "piece's standard deviations combined), + above, - below; a better trade-off than the "
        "others' is shown where it exceeds +1, not where the spread covers the gap; – : one "
        "seed, no spread.",
    ]
    return lines
