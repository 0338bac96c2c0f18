"""A comparison's feature-geometry table: the numbers of each run's robustness report.

`python -m keras_dpnp.evaluate --suite=corruptions_geometry` adds a `geometry` entry to a run's
report (`keras_dpnp.evaluation.geometry`); a comparison summarises the runs that have one, so
"more compact, better separated features" is read off one table rather than off each report.
"""

import numpy as np

# (key, column title, how to read it from one feature set of a report's geometry entry); each
# is measured on the clean test features (`<key>_clean`) and on their PGD-20 examples'
# (`<key>_adversarial`).
_MEASURES = (
    ("cos_to_class_mean", "cos to own class mean", lambda m: m["to_class_mean"]["cosine"]),
    ("fisher_ratio", "Fisher ratio", lambda m: m["fisher_ratio"]),
    ("silhouette", "silhouette", lambda m: m["silhouette"]),
)


def report_geometry(geometry):
    """The report's geometry entry as flat numbers (None when absent or skipped).

    Args:
        geometry: a robustness report's `geometry` entry, or None.

    Returns:
        {"anchors", "min_angle", "mean_angle", "simplex_angle", "<measure>_clean",
        "<measure>_adversarial", "shift_relative"}; the adversarial ones None when the
        report measured only clean features.
    """
    if not geometry or "skipped" in geometry:
        return None
    separation = geometry["separation"]
    numbers = {
        "anchors": geometry["anchors"],
        "min_angle": separation["min_angle"],
        "mean_angle": separation["mean_angle"],
        "simplex_angle": separation["simplex_angle"],
        "shift_relative": geometry["shift"]["relative"] if "shift" in geometry else None,
    }
    for key, _, read in _MEASURES:
        numbers[f"{key}_clean"] = read(geometry["clean"])
        adversarial = geometry.get("adversarial")
        numbers[f"{key}_adversarial"] = None if adversarial is None else read(adversarial)
    return numbers


def summarise_geometry(per_run):
    """The mean of each number over the runs that have a geometry (None: none has).

    Args:
        per_run: `report_geometry` of each of a variant's runs (None for a run without).
    """
    measured = [numbers for numbers in per_run if numbers is not None]
    if not measured:
        return None
    summary = {"seeds": len(measured), "anchors": measured[0]["anchors"]}
    for key in [key for key in measured[0] if key != "anchors"]:
        values = [numbers[key] for numbers in measured if numbers[key] is not None]
        summary[key] = float(np.mean(values)) if values else None
    return summary


def _number(value):
    return "n/a" if value is None else f"{value:.3g}"


def _paired(geometry, key):
    clean, adversarial = geometry[f"{key}_clean"], geometry[f"{key}_adversarial"]
    if adversarial is None:
        return _number(clean)
    return f"{_number(clean)} → {_number(adversarial)}"


def geometry_section(summary):
    """Markdown lines of the geometry table (empty if no variant has a geometry).

    Args:
        summary: `comparison.summarise`'s entries, each with its `geometry` (or None).
    """
    measured = {label: e["geometry"] for label, e in summary.items() if e.get("geometry")}
    if not measured:
        return []
    simplex = next(iter(measured.values()))["simplex_angle"]
    lines = [
        "",
        "Feature geometry of the test features, clean → PGD-20 (the reports' `geometry`, "
        "added by python -m keras_dpnp.evaluate --suite=corruptions_geometry; mean over the "
        "seeds measured; anchor angles: between the prototypes of a prototype head, else "
        f"between the centred clean class means; a regular simplex has {simplex:.1f}°):",
        "",
        "| variant | seeds | anchors | anchor angle min / mean (°) | "
        + " | ".join(title for _, title, _ in _MEASURES)
        + " | shift ‖z′−z‖ / ‖z‖ |",
        "|---|---|---|---|" + "---|" * len(_MEASURES) + "---:|",
    ]
    for label, geometry in measured.items():
        cells = [
            label,
            str(geometry["seeds"]),
            geometry["anchors"],
            f"{geometry['min_angle']:.1f} / {geometry['mean_angle']:.1f}",
            *(_paired(geometry, key) for key, _, _ in _MEASURES),
            _number(geometry["shift_relative"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines
