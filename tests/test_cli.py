"""The entry points' --help pages: the project's own flags, grouped by topic, exit status 0."""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
    assert page.count("\n  --") == 55


@pytest.mark.slow
@pytest.mark.parametrize(
    "module,groups",
    [
        ("keras_dpnp.compare", ["comparison", *TRAIN_GROUPS]),
        (
            "keras_dpnp.evaluate",
            ["model", "attack", "data", "corruptions (--suite=full)", "output"],
        ),
        ("export", ["model", "output"]),
    ],
)
def test_every_command_has_a_grouped_help_page(module, groups):
    page = _help(module)
    assert _groups(page) == groups
    assert "--model" in page or "--variant" in page
