"""Several training runs that differ in a few flags, summarised over seeds."""

import dataclasses
import json
import os
from typing import NamedTuple

import numpy as np

from keras_dpnp.config import TrainConfig
from keras_dpnp.files import write_text
from keras_dpnp.training import frontier, geometry_table, selection
from keras_dpnp.training.run_dir import recorded_checkpoint

GEOMETRY_COLUMNS = ("proto_max_cos", "align_ratio", "feature_norm")


@dataclasses.dataclass(frozen=True)
class Run:
    label: str
    seed: int
    config: TrainConfig


class Variant(NamedTuple):
    """One row of a comparison: its label, its flag overrides, and its own seeds (None: all)."""

    label: str
    overrides: dict
    seeds: tuple[int, ...] | None = None


def _label_and_seeds(spec, head):
    label, at, seeds = head.partition("@")
    if not label:
        raise ValueError(f"--variant={spec!r} must look like label:flag=value,flag=value")
    if not at:
        return label, None
    try:
        return label, tuple(int(seed) for seed in seeds.split("+"))
    except ValueError:
        raise ValueError(
            f"--variant={spec!r}: seeds after @ must be integers joined by +, e.g. {label}@0+1"
        ) from None


def parse_variants(specs):
    """`['trades:method=trades,beta=6', 'standard@0:method=standard']` -> [Variant] in order.

    `label@0+1:` trains that row with seeds 0 and 1 only, instead of every `--seeds`.
    """
    variants = []
    for spec in specs:
        head, sep, body = spec.partition(":")
        if not sep:
            raise ValueError(f"--variant={spec!r} must look like label:flag=value,flag=value")
        label, seeds = _label_and_seeds(spec, head)
        overrides = {}
        for item in filter(None, body.split(",")):
            key, eq, value = item.partition("=")
            if not eq:
                raise ValueError(f"--variant={spec!r}: {item!r} is not flag=value")
            overrides[key.strip().lstrip("-")] = value.strip()
        variants.append(Variant(label, overrides, seeds))
    labels = [variant.label for variant in variants]
    if len(set(labels)) != len(labels):
        raise ValueError(f"variant labels must be unique, got {labels}")
    return variants


def plan_runs(base, variants, seeds):
    """Every variant at each of its seeds (default `seeds`), each in its own directory."""
    runs = []
    for label, overrides, own_seeds in variants:
        for seed in own_seeds or seeds:
            config = base.with_overrides({**overrides, "seed": str(seed)})
            config = dataclasses.replace(
                config,
                name=f"{base.run_name}/{label}/seed{seed}",
                model_dir=os.path.join(base.run_dir, label, f"seed{seed}"),
            )
            runs.append(Run(label, seed, config))
    return runs


def parse_shard(text):
    """`--shard=I/N` as (I, N), 0 <= I < N; None for an empty value. Raises ValueError."""
    if not text:
        return None
    index, slash, count = text.partition("/")
    try:
        index, count = int(index), int(count)
    except ValueError:
        index = count = None
    if not slash or index is None or not 0 <= index < count:
        raise ValueError(
            f"--shard={text}: give I/N with 0 <= I < N, e.g. --shard=0/2 and --shard=1/2 "
            "for two processes"
        )
    return index, count


def shard_of(runs, shard):
    """The runs one process of a sharded comparison trains: every N-th from the I-th, so
    each shard gets a similar mix of methods; all of them for `shard` None."""
    if shard is None:
        return list(runs)
    index, count = shard
    return list(runs)[index::count]


def run_all(
    runs,
    verbose="auto",
    suite=None,
    autoattack_points=None,
    on_finished=None,
    rule=selection.NO_CHOICE,
):
    """Trains each run (`train` reuses finished ones); returns [(run, results)].

    With a robustness `suite` (e.g. 'headline'), each run's best checkpoint is also evaluated on
    the test split and the report's accuracies are added to its results as `report`;
    `autoattack_points` runs its AutoAttack on that fixed subset of the test points. With a
    `selection.Rule` by `val_apgd` each run is also attacked on validation (`validation_apgd`).
    `on_finished(rows)` is called after each run with the rows so far (e.g. to write the table
    of a long comparison as it grows).
    """
    import keras

    from keras_dpnp.evaluation.run_report import evaluate_run
    from keras_dpnp.evaluation.validation_robustness import validation_robustness
    from keras_dpnp.training.loop import train

    rows = []
    for run in runs:
        keras.backend.clear_session()
        results = train(run.config, verbose=verbose)
        if rule.attacks_validation:
            keras.backend.clear_session()
            measured = validation_robustness(run.config.run_dir, points=rule.points)
            results = {**results, "validation_apgd": measured}
        if suite and run.config.final_test:
            keras.backend.clear_session()
            report = evaluate_run(
                run.config.run_dir, suite, seed=run.seed, autoattack_points=autoattack_points
            )
            results = _with_report(results, report)
        rows.append((run, results))
        if on_finished is not None:
            on_finished(rows)
    return rows


def _with_report(results, report):
    """A run's results with its robustness report's accuracies (the mean corruption accuracy as
    `mca` when the report measured it), point counts and feature geometry added."""
    accuracies = {row["name"]: row["accuracy"] for row in report["attacks"]}
    if "corruptions" in report:
        accuracies["mca"] = report["corruptions"]["mean_corruption_accuracy"]
    return {
        **results,
        "report": accuracies,
        "report_points": {row["name"]: row["points"] for row in report["attacks"]},
        "report_geometry": geometry_table.report_geometry(report.get("geometry")),
    }


def finished_rows(runs, suite=None, autoattack_points=None, rule=selection.NO_CHOICE):
    """[(run, results)] of the runs already finished (and evaluated, with a `suite`), read from
    their run directories without training or evaluating anything: the table of a comparison
    that other processes (shards) are still running. A run's validation AutoAttack is added
    when it is there (the choice waits for its trials')."""
    from keras_dpnp.evaluation.run_report import finished_report
    from keras_dpnp.evaluation.validation_robustness import finished_validation_robustness
    from keras_dpnp.training.run_dir import RunDir

    rows = []
    for run in runs:
        results = RunDir(run.config.run_dir).finished_results(run.config)
        if results is None:
            continue
        if rule.attacks_validation:
            measured = finished_validation_robustness(run.config.run_dir, points=rule.points)
            if measured is not None:
                results = {**results, "validation_apgd": measured}
        if suite and run.config.final_test:
            report = finished_report(
                run.config.run_dir, suite, seed=run.seed, autoattack_points=autoattack_points
            )
            if report is None:
                continue
            results = _with_report(results, report)
        rows.append((run, results))
    return rows


def _stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
        "values": [float(v) for v in values],
    }


REPORT_COLUMNS = (
    ("fgsm", "FGSM"),
    ("cw_linf", "CW∞"),
    ("autoattack", "AutoAttack"),
    ("mca", "mCA"),
)


def summarise(rows):
    """One entry per variant label: mean and std over seeds of every reported number.

    Test accuracies come from the robustness report of the best checkpoint when the runs were
    evaluated (`run_all(..., suite=...)`), else from the end of training.
    """
    summary = {}
    for run, results in rows:
        entry = summary.setdefault(run.label, {"seeds": [], "results": []})
        entry["seeds"].append(run.seed)
        entry["results"].append(results)
    for entry in summary.values():
        results = entry.pop("results")
        reports = [r.get("report") for r in results]
        evaluated = all(reports)
        entry["measured_by"] = "report" if evaluated else "training"
        entry["checkpoint"] = ", ".join(sorted({recorded_checkpoint(r)["file"] for r in results}))
        if evaluated:
            entry["clean_accuracy"] = _stats([r["clean"] for r in reports])
            entry["pgd_accuracy"] = _stats([r["pgd"] for r in reports])
            for name, _ in REPORT_COLUMNS:
                entry[f"{name}_accuracy"] = _stats([r.get(name) for r in reports])
        else:
            entry["clean_accuracy"] = _stats([r["clean_accuracy"] for r in results])
            entry["pgd_accuracy"] = _stats([r["pgd_accuracy"] for r in results])
        entry["val_pgd_accuracy"] = _stats([r["validation"].get("pgd_accuracy") for r in results])
        entry["val_clean_accuracy"] = _stats(
            [r["validation"].get("clean_accuracy") for r in results]
        )
        apgd = [r.get("validation_apgd") for r in results]
        entry["val_apgd_accuracy"] = (
            _stats([m["robust_accuracy"] for m in apgd]) if all(apgd) else None
        )
        entry["val_apgd_points"] = max(m["images"] for m in apgd) if all(apgd) else None
        for column in GEOMETRY_COLUMNS:
            entry[column] = _stats([r["final_train_logs"].get(column) for r in results])
        entry["seconds_per_epoch"] = _stats([_seconds_per_epoch(r) for r in results])
        entry["autoattack_points"] = _autoattack_points(results)
        entry["geometry"] = geometry_table.summarise_geometry(
            [r.get("report_geometry") for r in results]
        )
        entry["method"] = results[0]["method"]
        entry["attack"] = results[0]["attack"]
    return summary


def _seconds_per_epoch(results):
    """Training wall time per epoch (validation included); older runs: total over epochs."""
    if "seconds_per_epoch" in results:
        return results["seconds_per_epoch"]
    if results.get("train_seconds") and results.get("epochs"):
        return results["train_seconds"] / results["epochs"]
    return None


def _autoattack_points(results):
    """The AutoAttack column's points when they are a subset of the test points, else None."""
    points = {
        (r["report_points"]["autoattack"], r["report_points"]["clean"])
        for r in results
        if "autoattack" in r.get("report_points", {})
    }
    subsets = {attacked for attacked, evaluated in points if attacked < evaluated}
    return max(subsets) if subsets else None


def _cell(stats, percent=True):
    if stats is None:
        return "–"
    scale, digits = (100, 1) if percent else (1, 2)
    if len(stats["values"]) == 1:  # one seed has no spread to show
        return f"{scale * stats['mean']:.{digits}f}"
    return f"{scale * stats['mean']:.{digits}f} ± {scale * stats['std']:.{digits}f}"


def markdown_table(summary):
    attack = next(iter(summary.values()))["attack"].split(" ")[0]
    extra = [
        (name, title)
        for name, title in REPORT_COLUMNS
        if any(entry.get(f"{name}_accuracy") is not None for entry in summary.values())
    ]
    sizes = {entry.get("autoattack_points") for entry in summary.values()}
    mixed = len(sizes) > 1
    val_apgd = any(entry.get("val_apgd_accuracy") for entry in summary.values())
    lines = [
        f"| variant | method | seeds | clean % | {attack} % | "
        + "".join(f"{title} % | " for _, title in extra)
        + "val clean % | val PGD % | "
        + ("val APGD % | " if val_apgd else "")
        + "max proto cos | ‖z−c_y‖/r | s/epoch |",
        "|---|---|---|---|---|" + "---|" * (len(extra) + val_apgd) + "---|---|---|---|---|",
    ]
    for label, entry in summary.items():
        lines.append(
            f"| {label} | {entry['method']} | {len(entry['seeds'])} | "
            f"{_cell(entry['clean_accuracy'])} | {_cell(entry['pgd_accuracy'])} | "
            + "".join(f"{_report_cell(entry, name, mixed)} | " for name, _ in extra)
            + f"{_cell(entry['val_clean_accuracy'])} | {_cell(entry['val_pgd_accuracy'])} | "
            + (f"{_cell(entry.get('val_apgd_accuracy'))} | " if val_apgd else "")
            + f"{_cell(entry['proto_max_cos'], False)} | {_cell(entry['align_ratio'], False)} | "
            f"{_seconds_cell(entry.get('seconds_per_epoch'))} |"
        )
    lines.append("")
    files = sorted({entry["checkpoint"] for entry in summary.values()})
    measured = {entry["measured_by"] for entry in summary.values()}
    how = "the robustness report" if measured == {"report"} else "the test at the end of training"
    lines.append(
        "mean ± standard deviation over seeds (the value alone for one seed); test columns: "
        f"each run's model ({', '.join(files)}; best.keras is the epoch of best validation "
        "accuracy, under attack for the adversarial methods, clean for the others) measured by "
        f"{how}; "
        "– : test set not read (--nofinal_test) or no prototypes; s/epoch: the median of the "
        "run's epochs' wall times (training and validation) on the machine that trained it."
    )
    subsets = {e["autoattack_points"] for e in summary.values() if e.get("autoattack_points")}
    if subsets:
        lines.append(
            "AutoAttack on a fixed, seeded subset of "
            + " / ".join(str(points) for points in sorted(subsets))
            + " test points (the same points for every run; their indices in each run's "
            "robustness.json); the other test columns on every test point."
        )
    if val_apgd:
        points = {e["val_apgd_points"] for e in summary.values() if e.get("val_apgd_points")}
        lines.append(
            "val APGD: AutoAttack's APGD-CE and APGD-T on a fixed, seeded subset of "
            + " / ".join(f"{count:,}" for count in sorted(points))
            + " validation points (validation_robustness.json in each run); "
            "val PGD: the run's validation attack on every validation point."
        )
    if any(entry.get("mca_accuracy") is not None for entry in summary.values()):
        lines.append(
            "mCA: mean accuracy over the common corruptions and severities of the run's report "
            "(python -m keras_dpnp.evaluate --suite=corruptions_geometry adds them to it)."
        )
    lines += geometry_table.geometry_section(summary)
    return "\n".join(lines)


def _report_cell(entry, name, mixed_subsets):
    """A test column's cell; AutoAttack's names its subset size when the rows' sizes differ,
    and a cell measured on fewer of the row's seeds than the others (mCA) says on how many."""
    stats = entry.get(f"{name}_accuracy")
    cell = _cell(stats)
    if stats is not None and len(stats["values"]) < len(entry["seeds"]):
        count = len(stats["values"])
        cell += f" ({count} seed{'s' if count > 1 else ''})"
    if name == "autoattack" and mixed_subsets:
        points = entry.get("autoattack_points")
        cell += f" ({points} pts)" if points else " (all pts)"
    return cell


def _seconds_cell(stats):
    return "–" if stats is None else f"{stats['mean']:.0f}"


def pending_note(pending, finished):
    """The line a partial table ends with: how many runs are finished and which are still to
    run (names), or "" when none is pending."""
    if not pending:
        return ""
    return (
        f"Partial: {finished} of {finished + len(pending)} runs finished; still to run: "
        + ", ".join(pending)
        + ". Rerun the same command to go on."
    )


def write_outputs(folder, rows, table_name="comparison", pending=(), rule=selection.NO_CHOICE):
    """`<table_name>.{json,md,png}` in `folder`; returns the Markdown table.

    `pending` names the runs not finished yet; the Markdown table then says it is partial.
    The groups of trials of the `selection.Rule` get the choice among them on validation
    (`selection.choose`) below the table.
    """
    summary = summarise(rows)
    curves = frontier.trade_off_curves(rows)
    table = markdown_table(summary)
    gaps = frontier.gap_section(summary, curves)
    if gaps:
        table += "\n\n" + "\n".join(gaps)
    choices = selection.choices_markdown(rule, summary)
    if choices:
        table += "\n\n" + choices
    note = pending_note(list(pending), len(rows))
    if note:
        table += "\n\n" + note
    path = os.path.join(folder, table_name)
    write_text(path + ".json", json.dumps(summary, indent=2) + "\n")
    write_text(path + ".md", table + "\n")
    frontier.plot(summary, folder, table_name, curves)
    return table
