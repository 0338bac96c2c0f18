import dataclasses
import json
import math

import pytest
from absl import flags

from keras_dpnp.attacks.pgd import PGDConfig
from keras_dpnp.config import (
    TrainConfig,
    config_from_flags,
    default_run_name,
    define_flags,
    flagfile_name,
    readable_number,
)
from keras_dpnp.methods import LossForm, LossWeights


def _parse(*args):
    values = flags.FlagValues()
    define_flags(values)
    values(["prog", *args])
    return values


def test_flags_become_a_typed_frozen_config():
    config = config_from_flags(
        _parse("--epsilon=8/255", "--attack_steps=7", "--method=dpnp", "--nodual_branch"),
        argv=["prog"],
    )
    assert config.epsilon == pytest.approx(8 / 255)
    assert config.attack_steps == 7 and config.method == "dpnp" and not config.dual_branch
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epsilon = 0.1


def test_name_defaults_to_the_flagfile_and_run_dir_to_runs_name():
    config = config_from_flags(_parse(), argv=["prog", "--flagfile=configs/digits_dpnp.cfg"])
    assert config.name == "digits_dpnp"
    assert config.run_dir.replace("\\", "/") == "runs/digits_dpnp"
    assert flagfile_name(["prog"]) == ""


@pytest.mark.parametrize(
    "args,message",
    [
        (["--epsilon=-0.1"], "epsilon"),
        (["--method=foo"], "method"),
        (["--backbone=vgg"], "backbone"),
        (["--attack_steps=0"], "attack_steps"),
        (["--epochs=many"], "epochs"),
        (["--no_such_flag=1"], "no_such_flag"),
    ],
)
def test_bad_flags_name_the_flag(args, message):
    with pytest.raises(flags.Error, match=message):
        _parse(*args)


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("epsilon", -1.0, "--epsilon must be >= 0"),
        ("radius", 0.0, "--radius must be > 0"),
        ("method", "foo", "--method='foo' is not one of"),
        ("validation_fraction", 1.0, "--validation_fraction must be < 1"),
        ("learning_rate", float("nan"), "--learning_rate must be a finite number"),
    ],
)
def test_config_validates_itself(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})


def test_prototype_methods_refuse_the_linear_head():
    with pytest.raises(ValueError, match="needs the prototype head"):
        TrainConfig(method="adv_dpnp", head="linear")


def test_json_round_trip_and_overrides():
    config = TrainConfig(epsilon=0.2, beta=3.0)
    assert TrainConfig.from_json(config.to_json()) == config
    changed = config.with_overrides({"beta": "1", "align_weight": "10/16", "dual_branch": "false"})
    assert (changed.beta, changed.align_weight, changed.dual_branch) == (1.0, 0.625, False)
    with pytest.raises(ValueError, match="unknown flag --nope"):
        config.with_overrides({"nope": "1"})
    with pytest.raises(ValueError, match="unknown config keys"):
        TrainConfig.from_json(json.dumps({"nope": 1}))


@pytest.mark.parametrize(
    "method,objective", [("adv_dpnp", "kl"), ("pgd_at", "ce"), ("standard", "ce")]
)
def test_the_training_attack_is_one_pgd_config_with_the_method_objective(method, objective):
    config = TrainConfig(method=method, epsilon=0.2, attack_step_size=0.05, attack_steps=7)
    assert config.train_attack() == PGDConfig(
        epsilon=0.2, step_size=0.05, steps=7, norm="linf", objective=objective
    )
    assert TrainConfig(method=method, attack_objective="kl").train_attack().objective == "kl"
    start = TrainConfig(method=method, attack_start="small_normal").train_attack().start
    assert start == "small_normal"
    assert TrainConfig(method=method).eval_attack(steps=20).start == "uniform"


def test_loss_weights_and_form_come_from_their_flags():
    config = TrainConfig(
        beta=3.0, margin=2.0, separation="hinge", align_target="both", dual_branch=False
    )
    assert config.loss_weights() == LossWeights(beta=3.0, margin=2.0)
    assert config.loss_form() == LossForm(
        separation="hinge", align_target="both", dual_branch=False
    )


def test_a_flat_config_json_without_newer_fields_is_the_same_config():
    config = TrainConfig(epsilon=0.2, method="trades")
    flat = config.to_dict()
    assert json.loads(config.to_json()) == flat
    del flat["final_test"], flat["deterministic"]
    assert TrainConfig.from_dict(flat) == config


def test_flags_on_top_of_a_flagfile_name_their_own_run_directory():
    argv = ["prog", "--flagfile=configs/digits_adv_dpnp.cfg", "--beta=3", "--nodual_branch"]
    config = config_from_flags(_parse("--beta=3", "--nodual_branch"), argv=argv)
    assert config.run_dir.replace("\\", "/") == "runs/digits_adv_dpnp+beta=3+dual_branch=false"
    given_folder = [*argv, "--model_dir=elsewhere"]
    assert default_run_name(given_folder, _parse("--model_dir=elsewhere")) == "digits_adv_dpnp"
    assert default_run_name(["prog", "--beta=3"], _parse("--beta=3")) == ""


def test_the_align_weight_is_ten_over_r_squared_unless_given():
    assert TrainConfig().align_weight == 0.625 and TrainConfig(radius=2.0).align_weight == 2.5
    assert config_from_flags(_parse("--radius=2"), argv=["prog"]).align_weight == 2.5
    halved = config_from_flags(_parse("--radius=2", "--align_weight=5/r²"), argv=["prog"])
    assert halved.align_weight == 1.25
    assert config_from_flags(_parse("--align_weight=0.3"), argv=["prog"]).align_weight == 0.3
    assert TrainConfig().with_overrides({"radius": "2"}).align_weight == 2.5
    assert TrainConfig().with_overrides({"align_weight": "20/r2"}).align_weight == 1.25
    with pytest.raises(ValueError, match="--align_weight=ten/r2"):
        config_from_flags(_parse("--align_weight=ten/r2"), argv=["prog"])


def test_a_config_json_of_the_old_literal_align_weight_still_matches():
    saved = TrainConfig().to_dict()
    assert saved["align_weight"] == 0.625
    assert TrainConfig().matches_saved(json.dumps(saved))
    assert not TrainConfig(radius=2.0).matches_saved(json.dumps({**saved, "radius": 2.0}))


def test_a_run_is_the_same_run_whatever_its_name_folder_or_test_check():
    saved = TrainConfig(name="a", model_dir="runs/a", final_test=False).to_json()
    assert TrainConfig(name="b", model_dir="studies/b", final_test=True).matches_saved(saved)
    assert not TrainConfig(final_test=True, beta=1.0).matches_saved(saved)


@pytest.mark.parametrize(
    "value,text",
    [(8 / 255, "8/255"), (0.1, "0.1"), (5e-4, "0.0005"), (4.0, "4"), (math.pi / 100, "0.03142")],
)
def test_numbers_read_as_a_person_writes_them(value, text):
    assert readable_number(value) == text
