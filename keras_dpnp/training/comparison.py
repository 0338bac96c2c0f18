"""Several training runs that differ in a few flags, summarised over seeds."""

import dataclasses
import json
import os

import numpy as np

from keras_dpnp.config import TrainConfig
from keras_dpnp.files import atomic_path, write_text
from keras_dpnp.training.run_dir import recorded_checkpoint

GEOMETRY_COLUMNS = ("proto_max_cos", "align_ratio", "feature_norm")


@dataclasses.dataclass(frozen=True)
class Run:
    label: str
    seed: int
    config: TrainConfig


def parse_variants(specs):
    """`['trades:method=trades,beta=6', ...]` -> [(label, {flag: text})] in order."""
    variants = []
    for spec in specs:
        label, sep, body = spec.partition(":")
        if not sep or not label:
            raise ValueError(f"--variant={spec!r} must look like label:flag=value,flag=value")
        overrides = {}
        for item in filter(None, body.split(",")):
            key, eq, value = item.partition("=")
            if not eq:
                raise ValueError(f"--variant={spec!r}: {item!r} is not flag=value")
            overrides[key.strip().lstrip("-")] = value.strip()
        variants.append((label, overrides))
    labels = [label for label, _ in variants]
    if len(set(labels)) != len(labels):
        raise ValueError(f"variant labels must be unique, got {labels}")
    return variants


def plan_runs(base, variants, seeds):
    """Every variant at every seed, each with its own run directory under the base's."""
    runs = []
    for label, overrides in variants:
        for seed in seeds:
            config = base.with_overrides({**overrides, "seed": str(seed)})
            config = dataclasses.replace(
                config,
                name=f"{base.run_name}/{label}/seed{seed}",
                model_dir=os.path.join(base.run_dir, label, f"seed{seed}"),
            )
            runs.append(Run(label, seed, config))
    return runs


def run_all(runs, verbose="auto", suite=None):
    """Trains each run (`train` reuses finished ones); returns [(run, results)].

    With a robustness `suite` (e.g. 'headline'), each run's best checkpoint is also evaluated on
    the test split and the report's accuracies are added to its results as `report`.
    """
    import keras

    from keras_dpnp.evaluation.run_report import evaluate_run
    from keras_dpnp.training.loop import train

    rows = []
    for run in runs:
        keras.backend.clear_session()
        results = train(run.config, verbose=verbose)
        if suite and run.config.final_test:
            keras.backend.clear_session()
            report = evaluate_run(run.config.run_dir, suite, seed=run.seed)
            results = {
                **results,
                "report": {row["name"]: row["accuracy"] for row in report["attacks"]},
            }
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


REPORT_COLUMNS = (("fgsm", "FGSM"), ("cw_linf", "CW∞"), ("autoattack", "AutoAttack"))


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
        for column in GEOMETRY_COLUMNS:
            entry[column] = _stats([r["final_train_logs"].get(column) for r in results])
        entry["method"] = results[0]["method"]
        entry["attack"] = results[0]["attack"]
    return summary


def _cell(stats, percent=True):
    if stats is None:
        return "–"
    scale, digits = (100, 1) if percent else (1, 2)
    return f"{scale * stats['mean']:.{digits}f} ± {scale * stats['std']:.{digits}f}"


def markdown_table(summary):
    attack = next(iter(summary.values()))["attack"].split(" ")[0]
    extra = [
        (name, title)
        for name, title in REPORT_COLUMNS
        if any(f"{name}_accuracy" in entry for entry in summary.values())
    ]
    lines = [
        f"| variant | method | seeds | clean % | {attack} % | "
        + "".join(f"{title} % | " for _, title in extra)
        + "val clean % | val PGD % | max proto cos | ‖z−c_y‖/r |",
        "|---|---|---|---|---|" + "---|" * len(extra) + "---|---|---|---|",
    ]
    for label, entry in summary.items():
        lines.append(
            f"| {label} | {entry['method']} | {len(entry['seeds'])} | "
            f"{_cell(entry['clean_accuracy'])} | {_cell(entry['pgd_accuracy'])} | "
            + "".join(f"{_cell(entry.get(f'{name}_accuracy'))} | " for name, _ in extra)
            + f"{_cell(entry['val_clean_accuracy'])} | {_cell(entry['val_pgd_accuracy'])} | "
            f"{_cell(entry['proto_max_cos'], False)} | {_cell(entry['align_ratio'], False)} |"
        )
    lines.append("")
    files = sorted({entry["checkpoint"] for entry in summary.values()})
    measured = {entry["measured_by"] for entry in summary.values()}
    how = "the robustness report" if measured == {"report"} else "the test at the end of training"
    lines.append(
        f"mean ± standard deviation over seeds; test columns: each run's model ({', '.join(files)}"
        "; best.keras is the epoch of best validation accuracy, under attack for the adversarial "
        f"methods, clean for the others) measured by {how}; "
        "– : test set not read (--nofinal_test) or no prototypes."
    )
    return "\n".join(lines)


def plot(summary, path):
    """Clean versus robust accuracy, one point (with seed spread) per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    robust_key = (
        "autoattack_accuracy"
        if all(entry.get("autoattack_accuracy") for entry in summary.values())
        else "pgd_accuracy"
    )
    for label, entry in summary.items():
        clean, robust = entry["clean_accuracy"], entry[robust_key]
        if robust is None or clean is None:
            continue
        ax.errorbar(
            100 * robust["mean"],
            100 * clean["mean"],
            xerr=100 * robust["std"],
            yerr=100 * clean["std"],
            fmt="o",
            capsize=3,
            label=label,
        )
    attack = (
        "AutoAttack"
        if robust_key == "autoattack_accuracy"
        else next(iter(summary.values()))["attack"].split(" ")[0]
    )
    ax.set_xlabel(f"{attack} accuracy (%)")
    ax.set_ylabel("clean accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as temporary:
        fig.savefig(temporary, format="png", dpi=120)
    plt.close(fig)


def write_outputs(folder, rows):
    """comparison.json, comparison.md and comparison.png in `folder`; returns the table."""
    summary = summarise(rows)
    table = markdown_table(summary)
    write_text(os.path.join(folder, "comparison.json"), json.dumps(summary, indent=2) + "\n")
    write_text(os.path.join(folder, "comparison.md"), table + "\n")
    plot(summary, os.path.join(folder, "comparison.png"))
    return table
