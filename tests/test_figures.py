"""What the figures share: formats, labels and names, and one file per format."""

import os

import pytest

from keras_dpnp import figures


def test_figure_formats_are_a_checked_list():
    assert figures.parse_formats("png, PDF,png") == ("png", "pdf")
    for bad in ("", "jpg", "png,tiff"):
        with pytest.raises(ValueError, match="comma-separated list of png, pdf, svg"):
            figures.parse_formats(bad)


def test_labels_and_names_read_as_words():
    assert figures.epsilon_label("linf") == "L∞ ε" and figures.epsilon_label("l2") == "L2 ε"
    assert figures.display_name("elastic_transform") == "elastic transform"


def test_one_file_per_format(tmp_path):
    figure, axes = figures.subplots(figsize=(2, 2))
    axes.plot([0, 1], [1, 0])
    paths = figures.save_figure(figure, str(tmp_path), "line", ("svg", "pdf", "png"))
    assert paths == [str(tmp_path / f"line.{name}") for name in ("svg", "pdf", "png")]
    assert (tmp_path / "line.svg").read_text().lstrip().startswith("<?xml")
    assert (tmp_path / "line.pdf").read_bytes()[:4] == b"%PDF"
    assert (tmp_path / "line.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(os.listdir(tmp_path)) == ["line.pdf", "line.png", "line.svg"]
