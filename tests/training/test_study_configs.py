"""The Fashion-MNIST study's three configs share their runs: a run directory that two of them
plan holds one run, trained once and reused by the other."""

import json
import os
import subprocess
import sys

from keras_dpnp.config import TrainConfig

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STUDY = ("tuning", "compare", "frontier")
PLANNER = r"""
import json, sys
from absl import flags
import keras_dpnp.compare  # noqa: F401  (defines the comparison's flags)
from keras_dpnp.config import config_from_flags
from keras_dpnp.training import comparison

plans = {}
for path in sys.argv[1:]:
    flags.FLAGS.unparse_flags()
    argv = ["compare", f"--flagfile={path}"]
    flags.FLAGS(argv)
    base = config_from_flags(flags.FLAGS, argv=argv)
    variants = comparison.parse_variants(flags.FLAGS.variant)
    runs = comparison.plan_runs(base, variants, [int(seed) for seed in flags.FLAGS.seeds])
    plans[path] = {
        "table": flags.FLAGS.table_name,
        "suite": flags.FLAGS.suite,
        "points": flags.FLAGS.autoattack_points,
        "runs": {run.config.model_dir: run.config.to_json() for run in runs},
    }
print(json.dumps(plans))
"""


def _plans(names=STUDY):
    paths = [f"configs/fashion_mnist_{name}.cfg" for name in names]
    done = subprocess.run(
        [sys.executable, "-c", PLANNER, *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    plans = json.loads(done.stdout.strip().splitlines()[-1])
    return dict(zip(names, (plans[path] for path in paths), strict=True))


def test_each_shared_run_directory_is_one_run_and_the_frontier_holds_the_whole_study():
    plans = _plans()
    tuning, compare, frontier = (plans[name] for name in STUDY)
    assert (tuning["suite"], frontier["suite"], compare["suite"]) == (None, "headline", "headline")
    assert (frontier["points"], compare["points"]) == (500, 1000)
    assert (tuning["table"], frontier["table"]) == ("tuning", "frontier")
    shared = compare["runs"].keys() & tuning["runs"].keys()
    assert "studies/fashion_mnist/pgd_at/seed0" in shared
    assert len(shared) == 4  # seed 0 of pgd_at and of the three chosen β settings
    defences = {run_dir for run_dir in compare["runs"] if "/standard/" not in run_dir}
    defences -= {run_dir for run_dir in compare["runs"] if "/dpnp/" in run_dir}
    assert len(defences) == 12  # four defences × three seeds
    assert frontier["runs"].keys() == tuning["runs"].keys() | defences
    for first, second in ((tuning, frontier), (tuning, compare), (compare, frontier)):
        for run_dir in first["runs"].keys() & second["runs"].keys():
            saved = first["runs"][run_dir]
            assert TrainConfig.from_json(second["runs"][run_dir]).matches_saved(saved), run_dir


def test_the_attack_check_shares_its_ce_rows_with_the_tuning_and_changes_only_the_attack():
    plans = _plans(("tuning", "attack_check"))
    tuning, check = plans["tuning"]["runs"], plans["attack_check"]["runs"]
    study = "studies/fashion_mnist"
    assert plans["attack_check"]["suite"] is None and len(check) == 4
    shared = {f"{study}/trades_b6/seed0", f"{study}/adv_dpnp_b6/seed0"}
    assert check.keys() & tuning.keys() == shared
    for run_dir in shared:
        assert TrainConfig.from_json(check[run_dir]).matches_saved(tuning[run_dir]), run_dir
    for label, control in (("trades_b6", "trades_b6"), ("adv_dpnp_b6", "adv_dpnp_b6")):
        run, same = (
            json.loads(check[f"{study}/{label}_small_start/seed0"]),
            json.loads(tuning[f"{study}/{control}/seed0"]),
        )
        assert (run["attack_objective"], same["attack_objective"]) == ("auto", "ce")
        assert (run["attack_start"], same["attack_start"]) == ("small_normal", "uniform")
        different = {key for key in run if run[key] != same.get(key)}
        assert different == {"model_dir", "name", "attack_objective", "attack_start"}, different


def test_the_tuning_reads_no_test_set_and_every_method_trains_against_the_ce_attack():
    tuning = _plans(("tuning",))["tuning"]["runs"]
    configs = [json.loads(text) for text in tuning.values()]
    assert len(configs) == 13
    assert all(config["final_test"] is False for config in configs)
    assert {config["attack_objective"] for config in configs} == {"ce"}


def test_the_ablations_change_only_their_part_of_the_chosen_adv_dpnp_row():
    plans = _plans(("tuning", "compare"))
    tuning, compare = plans["tuning"]["runs"], plans["compare"]["runs"]
    study = "studies/fashion_mnist"
    (chosen,) = [
        json.loads(text)
        for run_dir, text in compare.items()
        if run_dir.endswith("/seed0") and json.loads(text)["method"] == "adv_dpnp"
    ]
    ablated = {
        "no_dual_branch": {"dual_branch"},
        "no_alignment": {"align_weight"},
        "no_consistency": {"beta"},
    }
    for name, fields in ablated.items():
        run = json.loads(tuning[f"{study}/{name}/seed0"])
        different = {key for key in run if run[key] != chosen.get(key)}
        assert different == {"model_dir", "name", "final_test", *fields}, (name, different)


def test_no_flagfile_includes_itself():
    """absl only warns about a flagfile that names itself, and then drops the line."""
    for name in sorted(os.listdir(os.path.join(ROOT, "configs"))):
        with open(os.path.join(ROOT, "configs", name), encoding="utf-8") as f:
            lines = [line.strip() for line in f if not line.lstrip().startswith("#")]
        assert f"--flagfile=configs/{name}" not in lines, name
