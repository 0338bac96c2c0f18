"""The training curves: history.csv drawn per epoch, never failing the run that wrote it."""

import os

from keras_dpnp.training import curves
from keras_dpnp.training.run_dir import RunDir

HISTORY = (
    "epoch,accuracy,adv_accuracy,align_ratio,feature_norm,loss,proto_max_cos,"
    "val_clean_accuracy,val_pgd_accuracy\n"
    "0,0.5,0.3,0.9,1.2,2.0,0.4,0.6,0.35\n"
    "1,0.7,0.45,0.6,1.1,1.5,0.2,0.75,0.5\n"
)


def _run(tmp_path, history=HISTORY):
    run = RunDir(str(tmp_path))
    with open(run.history_path, "w", encoding="utf-8") as f:
        f.write(history)
    return run


def _legend(axes):
    return [text.get_text() for text in axes.get_legend().get_texts()]


def test_accuracies_and_geometry_logs_are_drawn_per_epoch(tmp_path):
    history = curves.read_history(_run(tmp_path).history_path)
    accuracy, geometry = curves.curves_figure(history).axes
    assert _legend(accuracy) == [
        "train clean",
        "train adversarial",
        "validation clean",
        "validation PGD",
    ]
    assert list(accuracy.get_lines()[0].get_xdata()) == [1, 2]
    assert list(accuracy.get_lines()[3].get_ydata()) == [35.0, 50.0]
    assert accuracy.get_ylabel() == "accuracy (%)"
    assert _legend(geometry) == ["proto_max_cos", "align_ratio", "feature_norm"]


def test_a_run_without_geometry_logs_gets_one_panel(tmp_path):
    run = _run(tmp_path, "epoch,accuracy,loss\n0,0.5,2.0\n1,0.6,\n")
    figure = curves.curves_figure(curves.read_history(run.history_path))
    assert len(figure.axes) == 1 and _legend(figure.axes[0]) == ["train clean"]


def test_the_figure_lands_in_the_run_directory_in_each_format(tmp_path):
    paths = curves.write_training_curves(_run(tmp_path), formats=("png", "pdf"))
    assert paths == [str(tmp_path / "training_curves.png"), str(tmp_path / "training_curves.pdf")]
    assert all(os.path.getsize(path) > 1000 for path in paths)


def test_a_figure_that_cannot_be_drawn_only_warns(tmp_path, monkeypatch, capsys):
    def broken(history):
        raise RuntimeError("no fonts")

    monkeypatch.setattr(curves, "curves_figure", broken)
    assert curves.write_training_curves(_run(tmp_path)) == []
    assert "warning: training curves not drawn (no fonts)" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "training_curves.png")
