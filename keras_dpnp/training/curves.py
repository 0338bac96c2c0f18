"""The training curves of a run: its accuracies and geometry logs per epoch, from history.csv."""

import csv
import math
import sys

from keras_dpnp import figures
from keras_dpnp.training.run_dir import TRAINING_CURVES

# history.csv columns drawn, and their names on the figure.
ACCURACY_CURVES = {
    "accuracy": "train clean",
    "adv_accuracy": "train adversarial",
    "val_clean_accuracy": "validation clean",
    "val_pgd_accuracy": "validation PGD",
}
GEOMETRY_CURVES = ("proto_max_cos", "align_ratio", "feature_norm")


def read_history(path):
    """{column: [float per epoch]} of a history.csv; a blank or non-numeric cell reads as NaN."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    columns = rows[0] if rows else {}
    return {column: [_number(row.get(column)) for row in rows] for column in columns}


def _number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def _draw(axes, history, columns, labels):
    epochs = [int(epoch) + 1 for epoch in history["epoch"]]
    for column in columns:
        scale = 100 if column in ACCURACY_CURVES else 1
        values = [scale * value for value in history[column]]
        axes.plot(epochs, values, marker="o", markersize=3, label=labels.get(column, column))
    axes.set_xlabel("epoch")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)


def curves_figure(history):
    """The accuracies (%) and, when logged, the geometry logs of `history` against the epoch.

    Args:
        history: {column: [value per epoch]}, as `read_history` gives it (with `epoch`).
    """
    accuracies = [column for column in ACCURACY_CURVES if column in history]
    geometry = [column for column in GEOMETRY_CURVES if column in history]
    panels = [panel for panel in (accuracies, geometry) if panel]
    figure, axes_row = figures.subplots(
        1, len(panels), figsize=(5 * len(panels), 3.5), squeeze=False
    )
    for axes, columns in zip(axes_row[0], panels):
        _draw(axes, history, columns, ACCURACY_CURVES)
        is_accuracy = columns is accuracies
        axes.set_ylabel(figures.ACCURACY_LABEL if is_accuracy else "value")
        axes.set_title("accuracies" if is_accuracy else "geometry logs", fontsize=9)
    figure.suptitle("Training curves per epoch", fontsize=10)
    figure.tight_layout()
    return figure


def write_training_curves(run, formats=("png",)):
    """Draws the run's history.csv as `training_curves.<format>` in the run directory.

    A figure that cannot be drawn or written only prints a warning: the curves never fail a
    finished training run.

    Args:
        run: the `RunDir` of the run.
        formats: names in `figures.FIGURE_FORMATS`.

    Returns:
        The paths written ([] when nothing was).
    """
    try:
        history = read_history(run.history_path)
        if "epoch" not in history:
            return []
        return figures.save_figure(curves_figure(history), run.path, TRAINING_CURVES, formats)
    # Anything matplotlib raises (a missing backend, a font cache error) is only reported.
    except Exception as error:  # noqa: BLE001
        print(f"[train] warning: training curves not drawn ({error})", file=sys.stderr)
        return []
