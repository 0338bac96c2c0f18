"""Comparisons: variants × seeds, reuse of finished runs, the summary table and plot."""

import dataclasses
import json
import os

import pytest
from comparison_rows import row

from keras_dpnp.config import TrainConfig
from keras_dpnp.training import comparison, selection
from keras_dpnp.training.run_dir import RunDir


def test_variants_parse_and_bad_ones_say_how_to_write_them():
    assert comparison.parse_variants(["a:", "b:beta=3,--seed=2", "c@0+2:method=mart"]) == [
        ("a", {}, None),
        ("b", {"beta": "3", "seed": "2"}, None),
        ("c", {"method": "mart"}, (0, 2)),
    ]
    with pytest.raises(ValueError, match="must look like label:flag=value"):
        comparison.parse_variants(["beta=3"])
    with pytest.raises(ValueError, match="integers joined by \\+, e.g. c@0\\+1"):
        comparison.parse_variants(["c@0,1:"])
    with pytest.raises(ValueError, match="'beta' is not flag=value"):
        comparison.parse_variants(["b:beta"])
    with pytest.raises(ValueError, match="unique"):
        comparison.parse_variants(["a:", "a:beta=1"])


def test_every_variant_runs_at_every_seed_in_its_own_directory(tmp_path):
    base = TrainConfig(name="cmp", model_dir=str(tmp_path))
    variants = [
        comparison.Variant("x", {"beta": "3"}),
        comparison.Variant("y", {}),
        comparison.Variant("z", {}, (5,)),
    ]
    runs = comparison.plan_runs(base, variants, [0, 1])
    assert [(r.label, r.seed, r.config.seed) for r in runs] == [
        ("x", 0, 0),
        ("x", 1, 1),
        ("y", 0, 0),
        ("y", 1, 1),
        ("z", 5, 5),
    ]
    assert runs[1].config.beta == 3.0 and runs[2].config.beta == base.beta
    assert runs[1].config.run_dir == os.path.join(str(tmp_path), "x", "seed1")
    with pytest.raises(ValueError, match="unknown flag --nope"):
        comparison.plan_runs(base, [comparison.Variant("z", {"nope": "1"})], [0])


def test_a_finished_run_is_reused_even_if_written_before_newer_fields(tmp_path):
    run = comparison.plan_runs(
        TrainConfig(model_dir=str(tmp_path)), [comparison.Variant("a", {})], [0]
    )[0]
    folder = run.config.run_dir
    os.makedirs(folder)
    older = json.loads(run.config.to_json())
    del older["deterministic"]
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(older, f)
    assert RunDir(folder).finished_results(run.config) is None  # no results.json yet
    with open(os.path.join(folder, "results.json"), "w") as f:
        json.dump({"clean_accuracy": 0.9}, f)
    assert RunDir(folder).finished_results(run.config) == {"clean_accuracy": 0.9}
    changed = comparison.plan_runs(
        TrainConfig(model_dir=str(tmp_path), beta=1.0), [comparison.Variant("a", {})], [0]
    )[0]
    assert RunDir(folder).finished_results(changed.config) is None


def test_the_summary_takes_the_report_columns_when_every_run_was_evaluated(tmp_path):
    rows = [row("a", 0, 0.96, 0.50), row("a", 1, 0.98, 0.60), row("b", 0, 0.97)]
    summary = comparison.summarise(rows)
    a, b = summary["a"], summary["b"]
    assert a["measured_by"] == "report" and b["measured_by"] == "training"
    assert b["checkpoint"] == "last.keras"  # results.json written before it named the model
    assert a["clean_accuracy"]["mean"] == pytest.approx(0.97)
    assert a["autoattack_accuracy"]["std"] == pytest.approx(0.0707107, rel=1e-5)
    assert b["clean_accuracy"]["mean"] == pytest.approx(0.92)
    table = comparison.markdown_table(summary)
    header = table.splitlines()[0]
    assert "| FGSM % | CW∞ % | AutoAttack % |" in header
    assert (
        "| a | trades | 2 | 97.0 ± 1.4 | 60.0 ± 0.0 | 70.0 ± 0.0 | 65.0 ± 0.0 | 55.0 ± 7.1 |"
        in table
    )


def _compare(*args):
    """`python -m keras_dpnp.compare *args`, finished."""
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return subprocess.run(
        [sys.executable, "-m", "keras_dpnp.compare", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": root},
    )


def _compare_error(*args):
    """The one error line `python -m keras_dpnp.compare *args` fails with."""
    result = _compare(*args)
    errors = [line for line in result.stderr.splitlines() if ": error:" in line]
    assert result.returncode != 0 and len(errors) == 1, result.stderr[-2000:]
    return errors[0]


@pytest.mark.slow
def test_cli_refuses_a_test_suite_on_runs_that_keep_the_test_set_unread(tmp_path):
    error = _compare_error("--suite=headline", "--nofinal_test", f"--model_dir={tmp_path / 'cmp'}")
    assert "--nofinal_test keeps unread" in error
    assert not (tmp_path / "cmp").exists()


def test_the_table_names_an_autoattack_subset_and_the_cost_per_epoch():
    rows = [row("a", 0, 0.96, 0.50, autoattack_points=100), row("b", 1, 0.95, 0.40)]
    summary = comparison.summarise(rows)
    assert summary["a"]["autoattack_points"] == 100 and summary["b"]["autoattack_points"] is None
    assert summary["b"]["seconds_per_epoch"]["mean"] == 11.0
    table = comparison.markdown_table(summary)
    assert table.splitlines()[0].endswith("| s/epoch |")
    assert "| 50.0 (100 pts) |" in table and "| 40.0 (all pts) |" in table
    assert "| 11 |" in table.splitlines()[3]
    assert "AutoAttack on a fixed, seeded subset of 100 test points" in table


def test_a_partial_table_names_the_runs_still_to_run(tmp_path):
    rows = [row("a", 0, 0.96, 0.50)]
    table = comparison.write_outputs(str(tmp_path), rows, "t", pending=["cmp/a/seed1"])
    assert table.endswith(
        "Partial: 1 of 2 runs finished; still to run: cmp/a/seed1. Rerun the same command to go on."
    )
    assert (tmp_path / "t.md").read_text() == table + "\n"
    assert "Partial" not in comparison.write_outputs(str(tmp_path), rows, "t")


def test_run_all_hands_over_the_rows_after_every_run(tmp_path, monkeypatch):
    from keras_dpnp.training import loop

    runs = comparison.plan_runs(
        TrainConfig(model_dir=str(tmp_path)), [comparison.Variant("a", {})], [0, 1]
    )
    monkeypatch.setattr(loop, "train", lambda config, verbose: {"seed": config.seed})
    seen = []
    rows = comparison.run_all(runs, on_finished=lambda so_far: seen.append(len(so_far)))
    assert seen == [1, 2] and [results["seed"] for _, results in rows] == [0, 1]


def test_shards_split_the_runs_between_processes_and_bad_ones_say_how():
    assert comparison.parse_shard("1/3") == (1, 3) and comparison.parse_shard(None) is None
    runs = list(range(7))
    shards = [comparison.shard_of(runs, (index, 3)) for index in range(3)]
    assert shards == [[0, 3, 6], [1, 4], [2, 5]]
    assert comparison.shard_of(runs, None) == runs
    for text in ("2/2", "1", "a/b", "-1/2", "0/0"):
        with pytest.raises(ValueError, match=f"--shard={text}: give I/N with 0 <= I < N"):
            comparison.parse_shard(text)


def test_finished_rows_read_the_runs_on_disk_and_skip_unfinished_ones(tmp_path):
    runs = comparison.plan_runs(
        TrainConfig(model_dir=str(tmp_path)), [comparison.Variant("a", {})], [0, 1]
    )
    folder = runs[1].config.run_dir
    os.makedirs(folder)
    with open(os.path.join(folder, "config.json"), "w") as f:
        f.write(runs[1].config.to_json())
    with open(os.path.join(folder, "results.json"), "w") as f:
        json.dump({"clean_accuracy": 0.9}, f)
    rows = comparison.finished_rows(runs)
    assert [(run.seed, results) for run, results in rows] == [(1, {"clean_accuracy": 0.9})]
    # With a suite, a finished run counts only once its report is written.
    assert comparison.finished_rows(runs, suite="headline") == []


def test_the_table_ends_with_the_choice_among_trials(tmp_path):
    rows = [row("t1", 0, 0.96, 0.50), row("t3", 0, 0.95, 0.55)]
    rows[0][1]["validation"]["pgd_accuracy"] = 0.62
    rows[1][1]["validation"] = {"clean_accuracy": 0.88, "pgd_accuracy": 0.64}
    rule = selection.Rule((("t1", "t3"),))
    table = comparison.write_outputs(str(tmp_path), rows, "t", rule=rule)
    assert table.endswith("- t1, t3: **t3** (val PGD 64.0 %, val clean 88.0 %)")
    assert "val APGD" not in table


def _validation_apgd(robust, images=1000):
    return {"robust_accuracy": robust, "clean_accuracy": 0.9, "images": images}


def test_a_choice_by_val_apgd_shows_its_column_and_names_the_val_pgd_choice(tmp_path):
    rows = [row("t1", 0, 0.96, 0.50), row("t3", 0, 0.95, 0.55), row("pgd_at", 0, 0.9, 0.5)]
    rows[0][1]["validation"]["pgd_accuracy"] = 0.62
    rows[1][1]["validation"] = {"clean_accuracy": 0.88, "pgd_accuracy": 0.70}
    rows[2][1]["validation"]["pgd_accuracy"] = 0.60
    rule = selection.Rule((("t1", "t3"),), "val_apgd")
    table = comparison.write_outputs(str(tmp_path), rows, "t", rule=rule)
    assert table.endswith("- t1, t3: not yet, t1, t3 to finish")
    rows[0][1]["validation_apgd"] = _validation_apgd(0.58)
    rows[1][1]["validation_apgd"] = _validation_apgd(0.51)
    table = comparison.write_outputs(str(tmp_path), rows, "t", rule=rule)
    assert "| val clean % | val PGD % | val APGD % |" in table.splitlines()[0]
    assert "| 90.0 | 62.0 | 58.0 |" in table  # t1
    assert "| 90.0 | 60.0 | – |" in table  # pgd_at: not attacked on validation yet
    assert "subset of 1,000 validation points" in table
    assert table.endswith("- t1, t3: **t1** (val APGD 58.0 %, val clean 90.0 %); by val PGD: t3")


def test_run_all_attacks_the_validation_of_every_run_by_val_apgd(tmp_path, monkeypatch):
    from keras_dpnp.evaluation import validation_robustness
    from keras_dpnp.training import loop

    runs = comparison.plan_runs(
        TrainConfig(model_dir=str(tmp_path)),
        [comparison.Variant("t1", {}), comparison.Variant("t3", {}), comparison.Variant("x", {})],
        [0],
    )
    monkeypatch.setattr(loop, "train", lambda config, verbose: {"seed": config.seed})
    attacked = []

    def measure(run_dir, points):
        attacked.append((os.path.basename(os.path.dirname(run_dir)), points))
        return _validation_apgd(0.5, points)

    monkeypatch.setattr(validation_robustness, "validation_robustness", measure)
    rule = selection.Rule((("t1", "t3"),), "val_apgd", points=200)
    rows = comparison.run_all(runs, rule=rule)
    assert attacked == [("t1", 200), ("t3", 200), ("x", 200)]
    assert all(results["validation_apgd"]["images"] == 200 for _, results in rows)
    assert comparison.run_all(runs[:1], rule=selection.Rule((("t1", "t3"),))) and len(attacked) == 3
    # Without a group to choose among, val_apgd still measures every run and chooses nothing.
    rows = comparison.run_all(runs[2:], rule=selection.Rule((), "val_apgd", points=100))
    assert attacked[3:] == [("x", 100)] and rows[0][1]["validation_apgd"]["images"] == 100
    assert selection.choices_markdown(selection.Rule((), "val_apgd"), {}) == ""


def test_the_mca_column_comes_from_the_reports_that_measured_corruptions():
    report = {
        "attacks": [{"name": "clean", "accuracy": 0.9, "points": 450}],
        "corruptions": {"mean_corruption_accuracy": 0.75},
    }
    assert comparison._with_report({}, report)["report"] == {"clean": 0.9, "mca": 0.75}
    rows = [row("a", 0, 0.96, 0.50), row("a", 1, 0.98, 0.60), row("b", 0, 0.97, 0.40)]
    assert "mCA" not in comparison.markdown_table(comparison.summarise(rows))
    rows[0][1]["report"]["mca"] = 0.81
    table = comparison.markdown_table(comparison.summarise(rows))
    assert "| AutoAttack % | mCA % |" in table.splitlines()[0]
    assert "| 55.0 ± 7.1 | 81.0 (1 seed) |" in table  # row a: one of its two seeds
    assert "| 40.0 | – |" in table
    assert "mCA: mean accuracy over the common corruptions" in table


def test_table_only_rewrites_the_table_from_finished_runs_and_trains_nothing(tmp_path):
    folder = tmp_path / "cmp"
    flags = ["--dataset=digits", "--method=standard", "--epochs=1", "--width=0.25"]
    flags += [f"--model_dir={folder}", "--variant=a:", "--variant=b:learning_rate=0.01"]
    assert "no run of this comparison has finished" in _compare_error(*flags, "--table_only")
    base = TrainConfig(dataset="digits", method="standard", epochs=1, width=0.25)
    base = dataclasses.replace(base, model_dir=str(folder))
    comparison.run_all(comparison.plan_runs(base, [comparison.Variant("a", {})], [0]), verbose=0)
    done = _compare(*flags, "--table_only")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "[train]" not in done.stdout + done.stderr
    table = (folder / "comparison.md").read_text()
    assert "| a | standard | 1 |" in table
    assert "still to run: " in table and "/b/seed0" in table
    assert not (folder / "b").exists()
