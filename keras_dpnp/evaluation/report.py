"""The robustness report: `robustness.json`, Markdown tables, and figures (robust accuracy vs
ε, a corruption heat-map, a feature embedding) in the formats asked for."""

import json
import os

import numpy as np

from keras_dpnp import figures
from keras_dpnp.files import write_text
from keras_dpnp.training.run_dir import ROBUSTNESS_FILE

JSON_NAME = ROBUSTNESS_FILE
MARKDOWN_NAME = "robustness.md"
# Figure file names without their suffix: one file per figure format.
SWEEP_FIGURE = "robust_accuracy_vs_epsilon"
CORRUPTION_FIGURE = "corruption_accuracy"
EMBEDDING_FIGURE = "feature_embedding"
WORST_CASE_NOTE = (
    "Worst case: a point counts as robust only if it is classified correctly clean and every "
    "attack in this table failed on it, so it is at most the lowest row."
)
SUBSET_NOTE = (
    " An attack run on a fixed subset of the points counts in the worst case on that subset, "
    "with every other row on the same points."
)
# The attacks that may run on a subset of the points, as the worst-case rows name them.
_ATTACK_NAMES = {"autoattack_subset": "AutoAttack"}


def _percent(value):
    return "n/a" if value is None else f"{100 * value:.2f}"


def _number(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_number(v) for v in value) + "]"
    return str(value)


def _title(results):
    model = results.get("model", {})
    data = results.get("dataset", {})
    parts = []
    if model.get("path"):
        epoch = f", epoch {model['epoch']}" if model.get("epoch") else ""
        method = f" ({model['method']}{epoch})" if model.get("method") else ""
        path = os.path.join(model["run"], model["path"]) if model.get("run") else model["path"]
        parts.append(f"`{path}`{method}")
    if data.get("name"):
        parts.append(f"{data['name']} {data.get('split', 'test')} split")
    parts.append(
        f"{results['points']} points, {figures.epsilon_label(results['norm'])} = "
        f"{results['epsilon']:.4g}, suite {results['suite']}"
    )
    return "## Robustness: " + ", ".join(parts)


def _attack_table(results):
    lines = ["| attack | accuracy % | seconds |", "|---|---:|---:|"]
    lines += [
        f"| {_row_label(row, results['points'])} | {_percent(row['accuracy'])} | "
        f"{row['seconds']:.1f} |"
        for row in results["attacks"]
    ]
    worst = results.get("worst_case")
    if worst:
        subsets = {name: entry for name, entry in worst.items() if name.endswith("_subset")}
        title = "over the attacks on every point" if subsets else "over all attacks"
        lines.append(f"| **worst case {title}** | **{_percent(worst['accuracy'])}** | |")
        lines += [
            f"| **worst case on the {entry['points']} {_ATTACK_NAMES[name]} points** | "
            f"**{_percent(entry['accuracy'])}** | |"
            for name, entry in subsets.items()
        ]
        lines += ["", WORST_CASE_NOTE + (SUBSET_NOTE if subsets else "")]
    return lines


def _row_label(row, points):
    """An attack's label, with its number of points when it ran on a subset."""
    if row.get("points", points) == points:
        return row["label"]
    return f"{row['label']} on {row['points']} points"


def _autoattack_table(entry):
    subset = ""
    if entry.get("subset"):
        subset = (
            f" on a fixed subset of {entry['points']} points (seed {entry['subset_seed']}, "
            f"the same for every run; test indices in robustness.json; PGD-20 on it: "
            f"{_percent(entry.get('pgd_accuracy_on_subset'))} %)"
        )
    lines = [
        "",
        f"### AutoAttack ({entry['version']}){subset}, robust accuracy after each stage",
        "",
        "| stage | accuracy % |",
        "|---|---:|",
        f"| clean | {_percent(entry['clean_accuracy'])} |",
    ]
    lines += [f"| {name} | {_percent(accuracy)} |" for name, accuracy in entry["stages"]]
    lines.append(f"| **final** | **{_percent(entry['robust_accuracy'])}** |")
    return lines


def _cw_l2_table(entry):
    def distance(value):
        return "n/a" if value is None else f"{value:.4g}"

    lines = [
        "",
        f"### CW-L2 on {entry['points']} points ({entry['clean_correct']} correct)",
        "",
        "| success % (of correct) | median L2 | mean L2 | still correct % |",
        "|---:|---:|---:|---:|",
        f"| {_percent(entry['success_rate'])} | {distance(entry['median_l2'])} | "
        f"{distance(entry['mean_l2'])} | {_percent(entry['accuracy'])} |",
    ]
    return lines


def _sweep_table(entry, norm):
    lines = [
        "",
        f"### Robust accuracy vs ε ({entry['attack']}, the PGD-20 row's attack)",
        "",
        f"| {figures.epsilon_label(norm)} | accuracy % |",
        "|---:|---:|",
    ]
    lines += [
        f"| {point['epsilon']:.4g} | {_percent(point['accuracy'])} |" for point in entry["points"]
    ]
    return lines


def _diagnostics_table(entry):
    lines = [
        "",
        "### Gradient-masking diagnostics",
        "",
        "| check | result | numbers | note |",
        "|---|---|---|---|",
    ]
    for check in entry["checks"]:
        verdict = {True: "PASS", False: "**FAIL**", None: "skipped"}[check["passed"]]
        numbers = ", ".join(f"{key} {_number(value)}" for key, value in check["numbers"].items())
        lines.append(f"| {check['name']} | {verdict} | {numbers} | {check['detail']} |")
    return lines


def _corruption_table(entry):
    severities = entry["severities"]
    clean = entry.get("clean_accuracy")
    clean_text = "" if clean is None else f"; clean accuracy on the same points {_percent(clean)} %"
    lines = [
        "",
        f"### Common corruptions ({entry['source']}): {entry['label']}",
        "",
        f"**Mean corruption accuracy: {_percent(entry['mean_corruption_accuracy'])} %** "
        f"({len(entry['corruptions'])} corruptions × {len(severities)} severities, "
        f"{entry['points']} points{clean_text})",
        "",
        "| corruption | " + " | ".join(f"severity {s}" for s in severities) + " | mean |",
        "|---|" + "---:|" * (len(severities) + 1),
    ]
    for name, row in entry["accuracy"].items():
        cells = " | ".join(_percent(value) for value in row)
        mean = _percent(entry["mean_per_corruption"][name])
        lines.append(f"| {figures.display_name(name)} | {cells} | {mean} |")
    cells = " | ".join(f"**{_percent(value)}**" for value in entry["mean_per_severity"])
    lines.append(f"| **mean** | {cells} | **{_percent(entry['mean_corruption_accuracy'])}** |")
    return lines


def _statistic(value, digits=3):
    return "n/a" if value is None else f"{value:.{digits}g}"


def _geometry_table(entry):
    if "skipped" in entry:
        return ["", f"### Feature geometry: skipped ({entry['skipped']})"]
    separation = entry["separation"]
    sets = [name for name in ("clean", "adversarial") if name in entry]
    lines = [
        "",
        f"### Feature geometry: {entry['points']} points, {entry['classes']} classes, "
        f"{entry['feature_dim']}-d features; adversarial: {entry['attack']}",
        "",
        f"Separation between {separation['between']}: min angle "
        f"{separation['min_angle']:.1f}°, mean {separation['mean_angle']:.1f}° "
        f"(regular simplex: {separation['simplex_angle']:.1f}°)",
        "",
        "| measure | " + " | ".join(sets) + " |",
        "|---|" + "---:|" * len(sets),
    ]

    def row(label, read):
        lines.append(f"| {label} | " + " | ".join(read(entry[name]) for name in sets) + " |")

    row("mean feature norm ‖z‖", lambda m: _statistic(m["feature_norm"]))
    if entry["clean"]["to_prototype"] is not None:
        row("distance to own prototype", lambda m: _statistic(m["to_prototype"]["distance"]))
        row("cosine to own prototype", lambda m: _statistic(m["to_prototype"]["cosine"]))
    row("distance to own clean class mean", lambda m: _statistic(m["to_class_mean"]["distance"]))
    row("cosine to own clean class mean", lambda m: _statistic(m["to_class_mean"]["cosine"]))
    row(
        "class-mean angle, min / mean (°)",
        lambda m: (
            "n/a"
            if m["class_mean_angles"] is None
            else f"{m['class_mean_angles']['min_angle']:.1f} / "
            f"{m['class_mean_angles']['mean_angle']:.1f}"
        ),
    )
    row("Fisher ratio tr(S_B) / tr(S_W)", lambda m: _statistic(m["fisher_ratio"]))
    row("silhouette", lambda m: _statistic(m["silhouette"]))
    shift = entry.get("shift")
    if shift:
        lines += [
            "",
            f"Clean → adversarial feature shift: mean ‖z′ − z‖ = "
            f"{shift['mean_distance']:.3g} ({shift['relative']:.3g} × ‖z‖ on "
            f"average), mean cos(z, z′) = {shift['cosine']:.3g}",
        ]
    return lines


def format_markdown(results, written=None):
    """The report as Markdown: warnings first, then one table per measurement, then links to
    the figures `written` ({title: [paths]}, as `write_report` writes them)."""
    lines = []
    for warning in results.get("diagnostics", {}).get("warnings", []):
        lines.append(f"WARNING: {warning}")
    if lines:
        lines.append("")
    lines.append(_title(results))
    if results["attacks"]:
        lines += [""] + _attack_table(results)
    if "autoattack" in results:
        lines += _autoattack_table(results["autoattack"])
    if "cw_l2" in results:
        lines += _cw_l2_table(results["cw_l2"])
    square = results.get("square")
    if square:
        lines += [
            "",
            f"Square (black-box) on {square['points']} points: "
            f"{_percent(square['accuracy'])} %, white-box on the same points: "
            f"{_percent(square['white_box_accuracy'])} %",
        ]
    if "epsilon_sweep" in results:
        lines += _sweep_table(results["epsilon_sweep"], results["norm"])
    if "corruptions" in results:
        lines += _corruption_table(results["corruptions"])
    if "geometry" in results:
        lines += _geometry_table(results["geometry"])
    if "diagnostics" in results:
        lines += _diagnostics_table(results["diagnostics"])
    lines += figure_links(written or {})
    return "\n".join(lines) + "\n"


def sweep_figure(results):
    """Robust accuracy vs ε, the evaluated ε marked (with AutoAttack's accuracy there)."""
    sweep = results["epsilon_sweep"]
    figure, axes = figures.subplots(figsize=(5, 3.5))
    axes.plot(
        [p["epsilon"] for p in sweep["points"]],
        [100 * p["accuracy"] for p in sweep["points"]],
        marker="o",
        label=sweep["attack"],
    )
    if "autoattack" in results:
        axes.plot(
            [results["epsilon"]],
            [100 * results["autoattack"]["robust_accuracy"]],
            marker="*",
            markersize=12,
            linestyle="none",
            label="AutoAttack",
        )
    axes.axvline(results["epsilon"], color="grey", linestyle="--", linewidth=1)
    axes.set_xlabel(figures.epsilon_label(results["norm"]))
    axes.set_ylabel(figures.ACCURACY_LABEL)
    axes.set_ylim(0, 100)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    return figure


def _annotate_cells(axes, table):
    for (row, column), value in np.ndenumerate(table):
        axes.text(
            column,
            row,
            f"{value:.0f}",
            ha="center",
            va="center",
            fontsize=7,
            color="white" if value < 60 else "black",
        )


def corruption_figure(entry):
    """The corruption × severity accuracy heat-map (with each corruption's mean), its title
    saying whether the images were generated or official."""
    names = list(entry["accuracy"])
    table = 100 * np.array(
        [entry["accuracy"][name] + [entry["mean_per_corruption"][name]] for name in names]
    )
    columns = [str(s) for s in entry["severities"]] + ["mean"]
    figure, axes = figures.subplots(figsize=(1.6 + 0.75 * len(columns), 1.2 + 0.32 * len(names)))
    image = axes.imshow(table, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    _annotate_cells(axes, table)
    axes.set_xticks(range(len(columns)), columns)
    axes.set_yticks(range(len(names)), [figures.display_name(n) for n in names], fontsize=8)
    axes.set_xlabel("severity")
    source = "generated" if entry["source"] == "generated" else "official CIFAR-10-C"
    axes.set_title(
        f"Accuracy under common corruptions ({source})\n"
        f"mean {100 * entry['mean_corruption_accuracy']:.1f} %",
        fontsize=9,
    )
    figure.colorbar(image, ax=axes, fraction=0.05).set_label(figures.ACCURACY_LABEL, fontsize=8)
    figure.tight_layout()
    return figure


def _embedding_panel(axes, title, points, labels, anchors, classes, colour, anchor_name):
    axes.scatter(
        points[:, 0], points[:, 1], s=6, c=[colour(k) for k in labels], alpha=0.7, linewidths=0
    )
    axes.scatter(
        anchors[:, 0],
        anchors[:, 1],
        s=140,
        marker="*",
        c=[colour(k) for k in classes],
        edgecolors="black",
        linewidths=0.8,
    )
    axes.scatter([], [], s=140, marker="*", c="white", edgecolors="black", label=anchor_name)
    for (x, y), k in zip(anchors, classes):
        axes.annotate(
            str(k), (x, y), xytext=(4, 4), textcoords="offset points", fontsize=7, weight="bold"
        )
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_title(title, fontsize=9)
    axes.legend(loc="best", fontsize=7)


def _class_colours(top):
    colours = figures.colormap("tab10" if top < 10 else "tab20" if top < 20 else "viridis")
    return colours if top < 20 else lambda k: colours(k / top)


def embedding_figure(entry):
    """The t-SNE map of clean (and adversarial) features, coloured by class, with the
    prototypes (or class means) marked."""
    embedding = entry["embedding"]
    labels = np.array(embedding["labels"])
    anchors = np.array(embedding["anchors"])
    classes = embedding["anchor_classes"]
    panels = [("clean images", np.array(embedding["clean"]))]
    if embedding["adversarial"] is not None:
        panels.append((f"attacked: {entry['attack']}", np.array(embedding["adversarial"])))
    colour = _class_colours(max(max(classes), int(labels.max())))
    figure, axes_row = figures.subplots(
        1, len(panels), figsize=(4.2 * len(panels), 4.4), squeeze=False
    )
    everything = np.concatenate([points for _, points in panels] + [anchors])
    low, high = everything.min(axis=0), everything.max(axis=0)
    margin = 0.05 * (high - low + 1e-9)
    for axes, (title, points) in zip(axes_row[0], panels):
        _embedding_panel(axes, title, points, labels, anchors, classes, colour, entry["anchors"])
        axes.set_xlim(low[0] - margin[0], high[0] + margin[0])
        axes.set_ylim(low[1] - margin[1], high[1] + margin[1])
    figure.suptitle(
        f"Features of {len(labels)} test points mapped to 2-D by {embedding['method']}; "
        f"stars mark the {entry['anchors']}",
        fontsize=9,
    )
    figure.tight_layout()
    return figure


def _figures(results):
    """(paths key, file stem, title, figure maker) of each figure `results` allow."""
    wanted = []
    if "epsilon_sweep" in results:
        wanted.append(("plot", SWEEP_FIGURE, "Robust accuracy vs ε", lambda: sweep_figure(results)))
    if "corruptions" in results:
        entry = results["corruptions"]
        wanted.append(
            (
                "corruption_plot",
                CORRUPTION_FIGURE,
                "Accuracy under common corruptions",
                lambda: corruption_figure(entry),
            )
        )
    geometry = results.get("geometry", {})
    if "embedding" in geometry:
        wanted.append(
            (
                "embedding_plot",
                EMBEDDING_FIGURE,
                "Feature embedding",
                lambda: embedding_figure(geometry),
            )
        )
    return wanted


def figure_links(written):
    """Markdown lines linking each figure's files, relative to the report's folder.

    Args:
        written: {title: [paths of the figure, one per format]}.
    """
    if not written:
        return []
    lines = ["", "### Figures", ""]
    for title, paths in written.items():
        links = ", ".join(
            f"[{os.path.splitext(path)[1][1:]}]({os.path.basename(path)})" for path in paths
        )
        lines.append(f"- {title}: {links}")
    return lines


def describe_source(results, source, model, splits):
    """Adds to `results` which model file (a `ModelSource`: its path inside its run, the run's
    folder as training named it, the training epoch when known) and which data set (test split)
    it measured. No absolute path is recorded, so a report travels with its run directory."""
    results["model"] = {
        "path": source.recorded_path,
        "run": source.config.run_dir if source.config else None,
        "epoch": source.epoch(),
        "method": getattr(model, "method_name", None),
        "head": getattr(model, "head_kind", None),
    }
    results["dataset"] = {
        "name": splits.info.name,
        "split": "test",
        "source": splits.info.source,
        "test_points": int(len(splits.test[1])),
    }
    return results


def read_report(folder):
    """The robustness.json in `folder` as a dict, or None when there is none or it is not JSON
    (a new report then replaces it)."""
    try:
        with open(os.path.join(folder, JSON_NAME), encoding="utf-8") as f:
            report = json.load(f)
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) else None


def write_report(results, folder, figure_formats=("png",)):
    """Writes robustness.json, the figures its results allow (the ε sweep, the corruption
    heat-map, the feature embedding) and robustness.md, which links them, into `folder`.

    Args:
        results: an `evaluate_robustness` result.
        folder: the report's folder (created if missing).
        figure_formats: formats in `figures.FIGURE_FORMATS`; each figure is written in each.

    Returns:
        The Markdown text and the paths written: `json`, `markdown`, each figure's file in
        the first format (`plot`, `corruption_plot`, `embedding_plot`) and `figures`, every
        figure file.
    """
    os.makedirs(folder, exist_ok=True)
    paths = {
        "json": os.path.join(folder, JSON_NAME),
        "markdown": os.path.join(folder, MARKDOWN_NAME),
        "figures": [],
    }
    write_text(paths["json"], json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    written = {}
    for key, stem, title, make in _figures(results):
        written[title] = figures.save_figure(make(), folder, stem, figure_formats)
        paths[key] = written[title][0]
        paths["figures"] += written[title]
    markdown = format_markdown(results, written)
    write_text(paths["markdown"], markdown)
    return markdown, paths
