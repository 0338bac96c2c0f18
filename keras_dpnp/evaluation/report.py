"""The robustness report: `robustness.json`, Markdown tables, and plots (robust accuracy vs ε,
a corruption heat-map, a feature embedding)."""

import json
import os

import numpy as np

from keras_dpnp.files import atomic_path, write_text
from keras_dpnp.training.run_dir import ROBUSTNESS_FILE

JSON_NAME = ROBUSTNESS_FILE
MARKDOWN_NAME = "robustness.md"
PLOT_NAME = "robust_accuracy_vs_epsilon.png"
CORRUPTION_PLOT_NAME = "corruption_accuracy.png"
EMBEDDING_PLOT_NAME = "feature_embedding.png"
NORM_SYMBOLS = {"linf": "L∞", "l2": "L2"}


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
        parts.append(f"`{model['path']}`{method}")
    if data.get("name"):
        parts.append(f"{data['name']} {data.get('split', 'test')} split")
    parts.append(
        f"{results['points']} points, {NORM_SYMBOLS[results['norm']]} "
        f"ε = {results['epsilon']:.4g}, suite {results['suite']}"
    )
    return "## Robustness: " + ", ".join(parts)


def _attack_table(results):
    lines = ["| attack | accuracy % | seconds |", "|---|---:|---:|"]
    lines += [
        f"| {row['label']} | {_percent(row['accuracy'])} | {row['seconds']:.1f} |"
        for row in results["attacks"]
    ]
    worst = results.get("worst_case")
    if worst:
        lines.append(f"| **worst case over all attacks** | **{_percent(worst['accuracy'])}** | |")
    return lines


def _autoattack_table(entry):
    lines = [
        "",
        f"### AutoAttack ({entry['version']}), robust accuracy after each stage",
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


def _sweep_table(entry):
    lines = [
        "",
        f"### Robust accuracy vs ε ({entry['attack']})",
        "",
        "| ε | accuracy % |",
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
        lines.append(f"| {name} | {cells} | {_percent(entry['mean_per_corruption'][name])} |")
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


def format_markdown(results):
    """The report as Markdown: warnings first, then one table per measurement."""
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
        lines += _sweep_table(results["epsilon_sweep"])
    if "corruptions" in results:
        lines += _corruption_table(results["corruptions"])
    if "geometry" in results:
        lines += _geometry_table(results["geometry"])
    if "diagnostics" in results:
        lines += _diagnostics_table(results["diagnostics"])
    return "\n".join(lines) + "\n"


def plot_epsilon_sweep(results, path):
    """Writes robust accuracy vs ε as a PNG, the evaluated ε marked (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    sweep = results["epsilon_sweep"]
    figure, axes = pyplot.subplots(figsize=(5, 3.5))
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
    axes.set_xlabel(f"{NORM_SYMBOLS[results['norm']]} ε")
    axes.set_ylabel("accuracy %")
    axes.set_ylim(0, 100)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=120)
    pyplot.close(figure)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def _save(figure, path):
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=120)


def plot_corruptions(entry, path):
    """Writes the corruption × severity accuracy heat-map (with each corruption's mean) as a
    PNG, its title saying whether the images were generated or official (atomically)."""
    pyplot = _pyplot()
    names = list(entry["accuracy"])
    table = 100 * np.array(
        [entry["accuracy"][name] + [entry["mean_per_corruption"][name]] for name in names]
    )
    columns = [str(s) for s in entry["severities"]] + ["mean"]
    figure, axes = pyplot.subplots(figsize=(1.0 + 0.75 * len(columns), 1.2 + 0.32 * len(names)))
    image = axes.imshow(table, cmap="viridis", vmin=0, vmax=100, aspect="auto")
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
    axes.set_xticks(range(len(columns)), columns)
    axes.set_yticks(range(len(names)), names, fontsize=8)
    axes.set_xlabel("severity")
    source = "generated" if entry["source"] == "generated" else "official CIFAR-10-C"
    axes.set_title(
        f"accuracy % under corruptions ({source})\n"
        f"mean {100 * entry['mean_corruption_accuracy']:.1f} %",
        fontsize=9,
    )
    figure.colorbar(image, ax=axes, fraction=0.05)
    figure.tight_layout()
    _save(figure, path)
    pyplot.close(figure)


def plot_embedding(entry, path):
    """Writes the t-SNE map of clean (and adversarial) features, coloured by class, with the
    prototypes (or class means) marked, as a PNG (atomically)."""
    pyplot = _pyplot()
    embedding = entry["embedding"]
    labels = np.array(embedding["labels"])
    anchors = np.array(embedding["anchors"])
    classes = embedding["anchor_classes"]
    panels = [("clean", np.array(embedding["clean"]))]
    if embedding["adversarial"] is not None:
        panels.append((f"adversarial ({entry['attack']})", np.array(embedding["adversarial"])))
    top = max(max(classes), int(labels.max()))
    colours = pyplot.get_cmap("tab10" if top < 10 else "tab20" if top < 20 else "viridis")

    def colour(k):
        return colours(k) if top < 20 else colours(k / top)

    figure, axes_row = pyplot.subplots(
        1, len(panels), figsize=(4.2 * len(panels), 4.2), squeeze=False
    )
    everything = np.concatenate([points for _, points in panels] + [anchors])
    low, high = everything.min(axis=0), everything.max(axis=0)
    margin = 0.05 * (high - low + 1e-9)
    for axes, (title, points) in zip(axes_row[0], panels):
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
        axes.scatter(
            [], [], s=140, marker="*", c="white", edgecolors="black", label=entry["anchors"]
        )
        for (x, y), k in zip(anchors, classes):
            axes.annotate(
                str(k), (x, y), xytext=(4, 4), textcoords="offset points", fontsize=7, weight="bold"
            )
        axes.set_xlim(low[0] - margin[0], high[0] + margin[0])
        axes.set_ylim(low[1] - margin[1], high[1] + margin[1])
        axes.set_xticks([])
        axes.set_yticks([])
        axes.set_title(title, fontsize=9)
        axes.legend(loc="best", fontsize=7)
    figure.suptitle(f"feature embedding: {embedding['method']}", fontsize=9)
    figure.tight_layout()
    _save(figure, path)
    pyplot.close(figure)


def describe_source(results, model_path, model, splits, epoch=None):
    """Adds to `results` which model file (of which training epoch, when known) and which data
    set (test split) it measured."""
    results["model"] = {
        "path": model_path,
        "epoch": epoch,
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


def write_report(results, folder):
    """Writes robustness.json, robustness.md and the plots its results allow (the ε sweep,
    the corruption heat-map, the feature embedding) into `folder`.

    Returns the Markdown text and the paths written.
    """
    os.makedirs(folder, exist_ok=True)
    paths = {
        "json": os.path.join(folder, JSON_NAME),
        "markdown": os.path.join(folder, MARKDOWN_NAME),
    }
    markdown = format_markdown(results)
    write_text(paths["json"], json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    write_text(paths["markdown"], markdown)
    if "epsilon_sweep" in results:
        paths["plot"] = os.path.join(folder, PLOT_NAME)
        plot_epsilon_sweep(results, paths["plot"])
    if "corruptions" in results:
        paths["corruption_plot"] = os.path.join(folder, CORRUPTION_PLOT_NAME)
        plot_corruptions(results["corruptions"], paths["corruption_plot"])
    if "embedding" in results.get("geometry", {}):
        paths["embedding_plot"] = os.path.join(folder, EMBEDDING_PLOT_NAME)
        plot_embedding(results["geometry"], paths["embedding_plot"])
    return markdown, paths
