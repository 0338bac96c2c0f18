"""What the figures share: figures built outside pyplot, the file formats, and the words on
their axes.

Figures are `matplotlib.figure.Figure` objects, never pyplot's: drawing one neither switches the
caller's backend (a notebook keeps its inline plots) nor leaves a figure open.
"""

import os

from keras_dpnp.files import atomic_path

FIGURE_FORMATS = ("png", "pdf", "svg")
PNG_DPI = 200
NORM_SYMBOLS = {"linf": "L∞", "l2": "L2"}
ACCURACY_LABEL = "accuracy (%)"


def subplots(rows=1, columns=1, **options):
    """A new figure and its axes, as `Figure.subplots(rows, columns, ...)` gives them.

    Args:
        rows, columns: the grid of axes.
        **options: `figsize` for the figure; the rest for `Figure.subplots` (e.g. `squeeze`).
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=options.pop("figsize", None))
    return figure, figure.subplots(rows, columns, **options)


def colormap(name):
    """The matplotlib colour map called `name`."""
    import matplotlib

    return matplotlib.colormaps[name]


def epsilon_label(norm):
    """The name of an attack radius in `norm` (`linf` or `l2`): `L∞ ε` or `L2 ε`."""
    return f"{NORM_SYMBOLS[norm]} ε"


def display_name(name):
    """A snake_case name (a corruption, a log) as words: `gaussian_noise` → `gaussian noise`."""
    return name.replace("_", " ")


def parse_formats(text):
    """The figure formats in `text`, a comma-separated list such as `png,pdf`.

    Raises:
        ValueError: for an empty list or a format outside `FIGURE_FORMATS`.
    """
    formats = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    unknown = [name for name in formats if name not in FIGURE_FORMATS]
    if unknown or not formats:
        raise ValueError(
            f"figure format {text!r} is not a comma-separated list of {', '.join(FIGURE_FORMATS)}"
        )
    return formats


def save_figure(figure, folder, stem, formats=("png",)):
    """Writes `figure` as `folder/stem.<format>` for each of `formats` (atomically).

    Args:
        figure: a matplotlib figure.
        folder: the folder written into; stem: the file name without its suffix.
        formats: names in `FIGURE_FORMATS`; PNG is rendered at `PNG_DPI`.

    Returns:
        The paths written, in the order of `formats`.
    """
    paths = []
    for name in formats:
        path = os.path.join(folder, f"{stem}.{name}")
        with atomic_path(path) as temporary:
            figure.savefig(temporary, format=name, dpi=PNG_DPI)
        paths.append(path)
    return paths
