"""The entry points' shared plumbing: number flags refuse inf and nan on one line; the --help
pages list the project's own flags, grouped by topic, with exit status 0."""

import json
import os
import re
import subprocess
import sys

import pytest
from absl import flags

from keras_dpnp import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HELPER = os.path.join(ROOT, "tests", "number_flags.py")

# Each entry point, the flags it needs to parse at all, and float flags it must have.
ENTRY_POINTS = {
    "keras_dpnp.train": ([], {"epsilon", "learning_rate", "radius", "logit_scale"}),
    "keras_dpnp.compare": ([], {"epsilon", "validation_fraction"}),
    "keras_dpnp.evaluate": (["--model=runs/x"], {"epsilon", "step_size"}),
    "keras_dpnp.bench": ([], {"width"}),
    "keras_dpnp.bench_attacks": ([], {"epsilon"}),
    "export.bench": (["--model=exports/x"], {"seconds"}),
}


@pytest.mark.parametrize("text,value", [("0.2", 0.2), ("8/255", 8 / 255), (" 1e-3 ", 1e-3)])
def test_numbers_take_fractions(text, value):
    assert cli.parse_number(text) == pytest.approx(value)


@pytest.mark.parametrize(
    "text,message",
    [
        ("inf", "'inf' is not a finite number"),
        ("nan", "'nan' is not a finite number"),
        ("-Infinity", "not a finite number"),
        ("1/0", "'1/0' divides by zero"),
        ("1e999", "not a finite number"),
        ("8/nan", "not a finite number"),
        ("eight", "could not convert"),
    ],
)
def test_numbers_must_be_finite(text, message):
    with pytest.raises(ValueError, match=message):
        cli.parse_number(text)


def test_a_number_flag_names_itself_and_keeps_its_module():
    values = flags.FlagValues()
    cli.define_number("rate", 0.5, "A rate.", lower_bound=0.0, flag_values=values)
    with pytest.raises(flags.IllegalFlagValueError, match=r"--rate=nan: 'nan' is not a finite"):
        values(["prog", "--rate=nan"])
    assert [flag.name for flag in values.flags_by_module_dict()[__name__]] == ["rate"]


# The benchmarks' float flags go through the same `define_number`; their runs are the slow ones.
SLOW_ENTRY_POINTS = (
    "keras_dpnp.bench",
    "keras_dpnp.bench_attacks",
    "export.bench",
    "keras_dpnp.compare",
)


@pytest.mark.parametrize(
    "module",
    [
        pytest.param(module, marks=pytest.mark.slow) if module in SLOW_ENTRY_POINTS else module
        for module in sorted(ENTRY_POINTS)
    ],
)
def test_every_float_flag_of_every_entry_point_refuses_inf_and_nan(module):
    required, expected = ENTRY_POINTS[module]
    done = subprocess.run(
        [sys.executable, HELPER, module, *required],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    outcomes = json.loads(done.stdout.strip().splitlines()[-1])
    assert expected <= {outcome["flag"] for outcome in outcomes}
    for outcome in outcomes:
        flag, value = outcome["flag"], outcome["value"]
        assert outcome["status"] == 2, outcome
        assert outcome["stderr"].endswith(
            f": error: flag --{flag}={value}: '{value}' is not a finite number\n"
        ), outcome
        assert outcome["stderr"].count("\n") == 1


TRAIN_GROUPS = ["data", "model", "method and loss", "attack", "optimisation", "run", "hardware"]


def _help(module):
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def _groups(page):
    return [line[:-1] for line in page.splitlines() if re.fullmatch(r"[a-z][^ ].*:", line)]


def test_train_help_groups_its_flags_with_defaults_as_a_person_writes_them():
    page = _help("keras_dpnp.train")
    assert _groups(page)[: len(TRAIN_GROUPS)] == TRAIN_GROUPS
    assert "other:" not in page  # every flag of the program is in a topic
    for entry in ("--epsilon=8/255", "--attack_step_size=2/255", "--align_weight=10/r²"):
        assert f"\n  {entry}\n" in page
    assert "--[no]dual_branch  (default: true)" in page and "--verbose=auto" in page
    assert "0.0313725" not in page and "tt_check_filter" not in page
    assert page.count("\n  --") == 56


@pytest.mark.slow
@pytest.mark.parametrize(
    "module,groups",
    [
        ("keras_dpnp.compare", ["comparison", "sharing the machine", *TRAIN_GROUPS]),
        (
            "keras_dpnp.evaluate",
            [
                "model",
                "attack",
                "data",
                "corruptions (--suite=full)",
                "output",
                "sharing the machine",
            ],
        ),
        ("export", ["model", "output"]),
    ],
)
def test_every_command_has_a_grouped_help_page(module, groups):
    page = _help(module)
    assert _groups(page) == groups
    assert "--model" in page or "--variant" in page


@pytest.mark.slow
@pytest.mark.parametrize("threads,workers,pools", [(1, 1, ["1", "1"]), (2, 2, ["1", "2"])])
def test_threads_are_set_in_the_process_before_tensorflow_runs(threads, workers, pools):
    """Concurrent AutoAttack batches share the cores: intra-op threads divided among them."""
    script = (
        f"from keras_dpnp import cli; cli.apply_threads({threads}, {workers}); "
        "import tensorflow as tf; tf.constant(1.0) + 1.0; "
        "print(tf.config.threading.get_intra_op_parallelism_threads(), "
        "tf.config.threading.get_inter_op_parallelism_threads())"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == pools
