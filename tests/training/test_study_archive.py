"""A study's finished runs are kept in git (`studies/`): what `compare` needs to reuse a run and
what a reader needs to check it is tracked; what a run needs only while it trains is not."""

import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = "studies/fashion_mnist/adv_dpnp_b6/seed0"
KEPT = (
    "config.json",
    "best.keras",
    "history.csv",
    "results.json",
    "validation_robustness.json",
    "robustness.json",
    "robustness.md",
    "training_curves.png",
)
LEFT_OUT = (
    "last.keras",
    "backup/epoch-0003/weights.npz",
    "logs/train/events.out",
    "train.lock",
    "autoattack_progress.npz",
)


def _ignored(path):
    done = subprocess.run(
        ["git", "check-ignore", "--quiet", "--no-index", path], cwd=ROOT, check=False
    )
    assert done.returncode in (0, 1), f"git check-ignore failed on {path}"
    return done.returncode == 0


@pytest.mark.skipif(
    shutil.which("git") is None or not os.path.isdir(os.path.join(ROOT, ".git")),
    reason="needs git and a clone of the repository",
)
def test_finished_runs_are_tracked_and_training_state_is_not():
    assert [name for name in KEPT if _ignored(f"{RUN}/{name}")] == []
    assert [name for name in LEFT_OUT if not _ignored(f"{RUN}/{name}")] == []
    assert _ignored("studies/fashion_mnist/tuning-shard0.log")
    assert not _ignored("studies/fashion_mnist/tuning.md")
