"""The robustness report: `robustness.json`, a Markdown table and a robust-accuracy-vs-ε plot."""

import json
import os

from keras_dpnp.files import atomic_path, write_text

JSON_NAME = "robustness.json"
MARKDOWN_NAME = "robustness.md"
PLOT_NAME = "robust_accuracy_vs_epsilon.png"
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
        method = f" ({model['method']})" if model.get("method") else ""
        parts.append(f"`{model['path']}`{method}")
    if data.get("name"):
        parts.append(f"{data['name']} {data.get('split', 'test')} split")
    parts.append(f"{results['points']} points, {NORM_SYMBOLS[results['norm']]} "
                 f"ε = {results['epsilon']:.4g}, suite {results['suite']}")
    return "## Robustness: " + ", ".join(parts)


def _attack_table(results):
    lines = ["| attack | accuracy % | seconds |", "|---|---:|---:|"]
    lines += [f"| {row['label']} | {_percent(row['accuracy'])} | {row['seconds']:.1f} |"
              for row in results["attacks"]]
    worst = results.get("worst_case")
    if worst:
        lines.append(f"| **worst case over all attacks** | **{_percent(worst['accuracy'])}** | |")
    return lines


def _autoattack_table(entry):
    lines = ["", f"### AutoAttack ({entry['version']}), robust accuracy after each stage",
             "", "| stage | accuracy % |", "|---|---:|",
             f"| clean | {_percent(entry['clean_accuracy'])} |"]
    lines += [f"| {name} | {_percent(accuracy)} |" for name, accuracy in entry["stages"]]
    lines.append(f"| **final** | **{_percent(entry['robust_accuracy'])}** |")
    return lines


def _cw_l2_table(entry):
    def distance(value):
        return "n/a" if value is None else f"{value:.4g}"

    lines = ["", f"### CW-L2 on {entry['points']} points ({entry['clean_correct']} correct)", "",
             "| success % (of correct) | median L2 | mean L2 | still correct % |",
             "|---:|---:|---:|---:|",
             f"| {_percent(entry['success_rate'])} | {distance(entry['median_l2'])} | "
             f"{distance(entry['mean_l2'])} | {_percent(entry['accuracy'])} |"]
    return lines


def _sweep_table(entry):
    lines = ["", f"### Robust accuracy vs ε ({entry['attack']})", "", "| ε | accuracy % |",
             "|---:|---:|"]
    lines += [f"| {point['epsilon']:.4g} | {_percent(point['accuracy'])} |"
              for point in entry["points"]]
    return lines


def _diagnostics_table(entry):
    lines = ["", "### Gradient-masking diagnostics", "", "| check | result | numbers | note |",
             "|---|---|---|---|"]
    for check in entry["checks"]:
        verdict = {True: "PASS", False: "**FAIL**", None: "skipped"}[check["passed"]]
        numbers = ", ".join(f"{key} {_number(value)}" for key, value in check["numbers"].items())
        lines.append(f"| {check['name']} | {verdict} | {numbers} | {check['detail']} |")
    return lines


def format_markdown(results):
    """The report as Markdown: warnings first, then one table per measurement."""
    lines = []
    for warning in results.get("diagnostics", {}).get("warnings", []):
        lines.append(f"WARNING: {warning}")
    if lines:
        lines.append("")
    lines += [_title(results), ""] + _attack_table(results)
    if "autoattack" in results:
        lines += _autoattack_table(results["autoattack"])
    if "cw_l2" in results:
        lines += _cw_l2_table(results["cw_l2"])
    square = results.get("square")
    if square:
        lines += ["", f"Square (black-box) on {square['points']} points: "
                      f"{_percent(square['accuracy'])} %, white-box on the same points: "
                      f"{_percent(square['white_box_accuracy'])} %"]
    if "epsilon_sweep" in results:
        lines += _sweep_table(results["epsilon_sweep"])
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
    axes.plot([p["epsilon"] for p in sweep["points"]],
              [100 * p["accuracy"] for p in sweep["points"]], marker="o",
              label=sweep["attack"])
    if "autoattack" in results:
        axes.plot([results["epsilon"]], [100 * results["autoattack"]["robust_accuracy"]],
                  marker="*", markersize=12, linestyle="none", label="AutoAttack")
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


def write_report(results, folder):
    """Writes robustness.json, robustness.md and (with a sweep) the ε plot into `folder`.

    Returns the Markdown text and the paths written.
    """
    os.makedirs(folder, exist_ok=True)
    paths = {"json": os.path.join(folder, JSON_NAME),
             "markdown": os.path.join(folder, MARKDOWN_NAME)}
    markdown = format_markdown(results)
    write_text(paths["json"], json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    write_text(paths["markdown"], markdown)
    if "epsilon_sweep" in results:
        paths["plot"] = os.path.join(folder, PLOT_NAME)
        plot_epsilon_sweep(results, paths["plot"])
    return markdown, paths
