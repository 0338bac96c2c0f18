"""What a training run prints and names: the log, the banner, the end summary, the model of the
run, and a rerun of a finished run."""

import contextlib
import io
import os
import pathlib

import numpy as np
import pytest

from conftest import tiny_config
from keras_dpnp.data import load_dataset, make_dataset
from keras_dpnp.evaluation.accuracy import accuracy_under_pgd
from keras_dpnp.evaluation.run_report import evaluate_model
from keras_dpnp.training import console, loop
from keras_dpnp.training.run_dir import RunDir, load_model


def _train_printing(config):
    """(results, what `train` printed) of a run logged as into a file (verbose 2)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        results = loop.train(config, verbose=2)
    return results, printed.getvalue()


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """(config, results, printed log) of a finished two-epoch tiny run."""
    config = tiny_config(tmp_path_factory.mktemp("console"), epochs=2)
    results, log = _train_printing(config)
    return config, results, log


def test_a_log_into_a_file_is_one_short_line_per_epoch(finished):
    _, _, log = finished
    assert "\b" not in log and "\r" not in log
    epochs = [line for line in log.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in epochs] == ["epoch 1/2", "epoch 2/2"]
    for line in epochs:
        assert len(line) < 110 and "val PGD" in line and line.endswith(" s")
    assert len(log) < 1500


def test_the_banner_says_what_is_trained_on_what_where_and_into_which_folder(finished):
    config, _, log = finished
    banner = log.split("epoch 1/2")[0]
    assert banner.startswith(f"[train] {config.run_name}: adv_dpnp, small_cnn (")
    assert "parameters), 2 epochs" in banner
    assert "digits: 1,212 train / 135 validation / 450 test (scikit-learn" in banner
    assert "L∞ ε = 0.2, training PGD-1 (kl, step 0.1)" in banner
    precision = config.with_resolved_precision().precision  # mixed_bfloat16 on an AMX CPU
    assert "replica" in banner and "oneDNN o" in banner and f"precision  {precision} (" in banner
    assert f"run dir    {config.run_dir} (new run)" in banner


def test_a_resumed_run_says_from_which_epoch():
    facts = console.RunFacts(1, {"train": 9, "test": 3}, "here", "CPU", "why", "on", 3)
    banner = console.start_banner(tiny_config(pathlib.Path("x")), facts)
    assert "(resumed after epoch 3 of 1)" in banner and "9 train / 3 test (here)" in banner


def test_the_banner_names_a_start_other_than_uniform_and_an_unread_test_set():
    facts = console.RunFacts(1, {"train": 9}, "here", "CPU", "why", "on", 0)
    config = tiny_config(pathlib.Path("x"), attack_start="small_normal", final_test=False)
    banner = console.start_banner(config, facts)
    expected = (
        "training PGD-1 (kl, step 0.1, small-normal start); validation PGD-1, test set unread"
    )
    assert expected in banner


def test_the_test_numbers_are_of_the_checkpoint_results_json_names(finished):
    config, results, _ = finished
    run = RunDir(config.run_dir)
    validation_pgd = [logs["val_pgd_accuracy"] for logs in run.logged_epochs().values()]
    best_epoch = int(np.argmax(validation_pgd)) + 1
    assert results["checkpoint"] == {
        "file": "best.keras",
        "epoch": best_epoch,
        "chosen_by": "val_pgd_accuracy",
    }
    assert results["validation"]["pgd_accuracy"] == validation_pgd[best_epoch - 1]
    splits = load_dataset("digits", validation_fraction=config.validation_fraction)
    test = make_dataset(*splits.test, batch_size=256, training=False)
    measured = accuracy_under_pgd(load_model(run.file("best.keras")), test, None)
    assert measured["clean_accuracy"] == results["clean_accuracy"]


def test_the_end_summary_names_the_model_and_the_next_commands(finished):
    config, results, _ = finished
    summary = console.end_summary(results, config.run_dir)
    epoch = results["checkpoint"]["epoch"]
    assert f"model of the run: best.keras (epoch {epoch}) of 2, best val_pgd_accuracy" in summary
    assert f"python -m keras_dpnp.evaluate --model={config.run_dir}" in summary
    assert f"python -m keras_dpnp.export --model={config.run_dir} --out=exports/" in summary
    assert f"best.keras (epoch {epoch})" in loop.format_results(results)


def test_the_evaluation_report_names_the_same_checkpoint(finished, tmp_path):
    config, results, _ = finished
    report, markdown, _ = evaluate_model(
        config.run_dir, "quick", num_points=8, out=str(tmp_path), progress=False
    )
    assert os.path.basename(report["model"]["path"]) == results["checkpoint"]["file"]
    assert report["model"]["epoch"] == results["checkpoint"]["epoch"]
    assert f"epoch {results['checkpoint']['epoch']})" in markdown.splitlines()[0]


def test_a_finished_run_rerun_prints_its_results_without_training(finished):
    config, results, _ = finished
    run = RunDir(config.run_dir)
    history, model_time = open(run.history_path).read(), os.path.getmtime(run.file("last.keras"))
    again, log = _train_printing(config)
    assert again == results
    assert "holds this run, finished: nothing trained" in log and "epoch 1/2" not in log
    assert open(run.history_path).read() == history
    assert os.path.getmtime(run.file("last.keras")) == model_time


class _Stream:
    def __init__(self, terminal):
        self.terminal = terminal

    def isatty(self):
        return self.terminal


def test_verbose_auto_is_a_bar_on_a_terminal_and_lines_elsewhere():
    assert console.resolve_verbose("auto", _Stream(True)) == 1
    assert console.resolve_verbose(None, _Stream(False)) == 2
    assert console.resolve_verbose(0) == 0
    with pytest.raises(ValueError, match="--verbose must be one of"):
        console.resolve_verbose(3)


def test_an_epoch_line_shows_the_short_set_only():
    logs = {"loss": 1.23456, "accuracy": 0.5, "align": 9.0, "val_pgd_accuracy": 0.25}
    line = console.epoch_line(6, 40, logs, 3.21)
    assert line == "epoch  7/40: loss 1.235, acc 50.0 %, val PGD 25.0 %, 3.2 s"
