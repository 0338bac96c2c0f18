"""The trade-off frontier: curves per method, the plot, and the gaps to the others' frontier."""

import math

import pytest
from comparison_rows import row

from keras_dpnp.training import comparison, frontier
from keras_dpnp.training.frontier import Point

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_the_frontier_joins_each_methods_settings_in_order_of_robustness(tmp_path):
    rows = [
        row("trades_b1", 0, 0.95, 0.30),
        row("trades_b6", 0, 0.90, 0.45),
        row("trades_b3", 0, 0.93, 0.38),
        row("pgd_at", 0, 0.91, 0.40, method="pgd_at"),
    ]
    summary = comparison.summarise(rows)
    points = frontier.frontier_points(summary, "autoattack_accuracy")
    assert [label for label, _, _ in points["trades"]] == ["trades_b1", "trades_b3", "trades_b6"]
    assert [label for label, _, _ in points["pgd_at"]] == ["pgd_at"]
    path = frontier.plot(summary, str(tmp_path), "frontier")
    assert path == str(tmp_path / "frontier.png")
    assert (tmp_path / "frontier.png").read_bytes()[:8] == PNG_MAGIC


def test_an_ablation_is_a_point_of_its_own_beside_its_methods_curve():
    rows = [
        row("adv_b3", 0, 0.93, 0.38, method="adv_dpnp", beta=3.0),
        row("adv_b1", 0, 0.95, 0.30, method="adv_dpnp", beta=1.0),
        row("adv_b3", 1, 0.92, 0.40, method="adv_dpnp", beta=3.0),
        row("no_dual", 0, 0.94, 0.33, method="adv_dpnp", beta=3.0, dual_branch=False),
        row("no_align", 0, 0.94, 0.31, method="adv_dpnp", beta=3.0, align_weight=0.0),
    ]
    curves = frontier.trade_off_curves(rows)
    assert curves["adv_b1"] == curves["adv_b3"] != curves["no_dual"] != curves["no_align"]
    points = frontier.frontier_points(comparison.summarise(rows), "autoattack_accuracy", curves)
    assert {name: [label for label, _, _ in p] for name, p in points.items()} == {
        "adv_dpnp": ["adv_b1", "adv_b3"],
        "no_dual": ["no_dual"],
        "no_align": ["no_align"],
    }
    assert points["adv_dpnp"][1][2]["values"] == [0.38, 0.40]


def test_the_pareto_front_keeps_the_points_nothing_beats_in_both():
    points = [
        Point("a", 0.90, 0.40),
        Point("b", 0.85, 0.50),
        Point("c", 0.84, 0.45),  # b is cleaner and more robust
        Point("d", 0.80, 0.50),  # as robust as b, less clean
        Point("e", 0.70, 0.60),
    ]
    assert [p.label for p in frontier.pareto_front(points)] == ["a", "b", "e"]


def test_a_point_above_the_line_has_both_gaps_positive_and_its_spread_combined():
    front = [Point("a", 0.90, 0.40, 0.01, 0.02), Point("b", 0.80, 0.60, 0.03, 0.04)]
    point = Point("p", 0.88, 0.50, 0.04, 0.0, seeds=3)
    gap = frontier.gap_to_front(point, front)
    # on the line, robust 0.50 has clean 0.85; clean 0.88 has robust 0.44
    assert gap.clean == pytest.approx(0.03) and gap.robust == pytest.approx(0.06)
    assert gap.clean_spread == pytest.approx(math.hypot(0.04, 0.02))  # frontier std midway
    assert gap.robust_spread == pytest.approx(0.02 + 0.2 * 0.02)
    # nearest is the segment a-b; in spreads (robust 0.04, clean hypot(0.04, 0.03) = 0.05) the
    # point is (12.5, 17.6) and the line runs through (10, 18) and (15, 16): 3 / √29 from it
    assert gap.spreads == pytest.approx(3 / math.sqrt(29))
    assert frontier.verdict(point, gap) == "above, within the spread"


def test_beyond_the_front_the_frontier_is_each_end_points_staircase():
    front = [Point("a", 0.90, 0.40), Point("b", 0.80, 0.60)]
    more_robust = frontier.gap_to_front(Point("p", 0.70, 0.65), front)
    assert more_robust.clean == math.inf and more_robust.robust == pytest.approx(0.05)
    cleaner = frontier.gap_to_front(Point("q", 0.95, 0.30), front)
    assert cleaner.robust == math.inf and cleaner.clean == pytest.approx(0.05)
    dominated = frontier.gap_to_front(Point("r", 0.85, 0.35), front)  # a beats it in both
    assert dominated.clean == pytest.approx(-0.05) and dominated.robust < 0
    best = frontier.gap_to_front(Point("s", 0.95, 0.70), front)
    assert frontier.verdict(Point("s", 0.95, 0.70), best) == (
        "above every other point (one seed: no spread to judge by)"
    )


def test_the_verdict_weighs_the_distance_against_the_spread():
    front = [Point("a", 0.90, 0.40), Point("b", 0.80, 0.60)]

    def judged(clean, robust, seeds=3):
        point = Point("p", clean, robust, 0.01, 0.01, seeds)
        gap = frontier.gap_to_front(point, front)
        return gap.spreads, frontier.verdict(point, gap)

    spreads, words = judged(0.95, 0.55)  # (55, 95) against the line through (40, 90), (60, 80)
    assert spreads == pytest.approx(250 / math.sqrt(500)) and words == "above, beyond the spread"
    spreads, words = judged(0.84, 0.45)
    assert spreads == pytest.approx(-70 / math.sqrt(500)) and words == "below, beyond the spread"
    spreads, words = judged(0.95, 0.70)  # nearest: b, 10 and 15 spreads away
    assert spreads == pytest.approx(math.sqrt(325))
    assert words == "above every other point, beyond the spread"
    spreads, words = judged(0.95, 0.55, seeds=1)
    assert math.isnan(spreads) and words == "above (one seed: no spread to judge by)"
    identical_seeds = Point("p", 0.95, 0.55, 0.0, 0.0, seeds=3)
    gap = frontier.gap_to_front(identical_seeds, front)
    words = frontier.verdict(identical_seeds, gap)
    assert words == "above (a spread of zero: no spread to judge by)"


def test_the_table_places_each_methods_curve_against_the_other_methods_points(tmp_path):
    rows = [
        row("pgd_at", 0, 0.80, 0.65, method="pgd_at"),
        row("pgd_at", 1, 0.82, 0.63, method="pgd_at"),
        row("trades_b1", 0, 0.86, 0.55),
        row("adv_b3", 0, 0.84, 0.66, method="adv_dpnp", beta=3.0),
        row("adv_b3", 1, 0.85, 0.67, method="adv_dpnp", beta=3.0),
        row("no_dual", 0, 0.95, 0.70, method="adv_dpnp", beta=3.0, dual_branch=False),
    ]
    table = comparison.write_outputs(str(tmp_path), rows, "frontier")
    section = table[table.index("### Against the other methods' frontier") :].splitlines()
    header = "| variant | method | clean gap | AutoAttack gap | gap / spread | verdict |"
    assert section[2] == header
    body = [line.split(" | ")[0].strip("| ") for line in section[4:] if line.startswith("| ")]
    assert body == ["pgd_at", "trades_b1", "adv_b3"]  # an ablation is neither side
    adv = next(line for line in section if line.startswith("| adv_b3 |"))
    # more robust than every other method's point; at clean 84.5 the line from PGD-AT
    # (81.0, 64.0) to TRADES (86.0, 55.0) reaches 57.7 % AutoAttack
    assert adv.startswith("| adv_b3 | adv_dpnp | – | +8.8 ± ")
    assert adv.endswith("| above, beyond the spread |")
    assert (tmp_path / "frontier.png").read_bytes()[:8] == PNG_MAGIC


def test_a_comparison_of_one_method_has_no_frontier_section(tmp_path):
    table = comparison.write_outputs(str(tmp_path), [row("a", 0, 0.9, 0.5)], "t")
    assert "frontier" not in table
