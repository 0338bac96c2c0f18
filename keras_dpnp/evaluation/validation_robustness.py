"""AutoAttack's APGD stages on a fixed subset of a run's validation split: a robustness figure a
choice among tuning trials can rest on without reading the test set (`--choose_by=val_apgd`).

The validation PGD-10 that training logs is cheap but can overstate a model whose loss surface
defeats a short PGD; APGD-CE and APGD-T (AutoAttack's `fast` version, 100 steps each) are the
parameter-free check. The result lives in the run directory (`VALIDATION_ROBUSTNESS_FILE`) and
is measured once per model file.
"""

from keras_dpnp.attacks.autoattack import VERSIONS, autoattack
from keras_dpnp.data import load_dataset
from keras_dpnp.data.image_files import ImageFiles
from keras_dpnp.evaluation.robustness import (
    as_float_images,
    attack_logits_fn,
    autoattack_subset,
)
from keras_dpnp.training.run_dir import (
    VALIDATION_ROBUSTNESS_FILE,
    ModelLoadError,
    check_fits_data,
    find_model,
    load_model,
)

VERSION = "fast"
DEFAULT_POINTS = 1000
# What makes a stored measurement one of the model file at hand with the wanted settings.
_SAME_MEASUREMENT_KEYS = ("version", "epsilon", "norm", "points", "seed")


def validation_robustness(run_dir, *, points=DEFAULT_POINTS, batch_size=256, progress=True):
    """APGD-CE and APGD-T on `points` validation images of the run in `run_dir` (its model,
    `RunDir.checkpoint()`), at the run's ε and norm; written to the run and returned.

    The points are a fixed, seeded subset of the run's validation split (the same positions for
    every run with that split: same data, fraction and seed); the attacks are seeded with the
    run's seed. A measurement already in the run for the same model file and settings is
    returned as it is.

    Returns:
        {"version", "epsilon", "norm", "points" (asked for), "seed", "images" (attacked: fewer
        than `points` when the split is smaller), "model": {path, epoch}, "clean_accuracy",
        "robust_accuracy", "stages": [[name, accuracy], ...], "seconds"}.

    Raises:
        ValueError: the run has no validation split or was trained without an attack radius.
        ModelLoadError: no run or no model in `run_dir`.
    """
    source = _run_source(run_dir)
    settings = _settings(source.config, points)
    previous = _stored(source, settings)
    if previous is not None:
        return previous
    model = load_model(source.model_path)
    images, labels = _validation_points(source.config, model, settings["points"])
    if progress:
        print(f"validation AutoAttack ({', '.join(VERSIONS[VERSION])}) of {source.run.path}")
    result = autoattack(
        attack_logits_fn(model),
        images,
        labels,
        epsilon=settings["epsilon"],
        norm=settings["norm"],
        version=VERSION,
        seed=settings["seed"],
        batch_size=batch_size,
        verbose=progress,
    )
    measured = {
        **settings,
        "images": len(labels),
        "model": _model_entry(source),
        "clean_accuracy": result.clean_accuracy,
        "robust_accuracy": result.robust_accuracy,
        "stages": [[name, accuracy] for name, accuracy in result.stages],
        "seconds": round(result.seconds, 1),
    }
    source.run.write_validation_robustness(measured)
    return measured


def finished_validation_robustness(run_dir, *, points=DEFAULT_POINTS):
    """The measurement `validation_robustness` would return without attacking, or None (also
    for a folder without a finished run's model): reads, never runs."""
    try:
        source = _run_source(run_dir)
        return _stored(source, _settings(source.config, points))
    except (ModelLoadError, ValueError):
        return None


def _run_source(run_dir):
    source = find_model(run_dir)
    if source.config is None:
        raise ModelLoadError(
            f"{run_dir} holds no config.json: the validation AutoAttack needs a run directory "
            "written by keras_dpnp.train (its data split and attack)"
        )
    return source


def _settings(config, points):
    if not config.validation_fraction > 0:
        raise ValueError(
            f"{config.run_dir} was trained without a validation split (--validation_fraction=0); "
            "a choice on validation needs one: retrain with --validation_fraction=0.1"
        )
    attack = config.eval_attack(steps=1)
    if not attack.epsilon > 0:
        raise ValueError(
            f"{config.run_dir} was trained with ε = 0: there is no attack radius to validate at"
        )
    return {
        "version": VERSION,
        "epsilon": attack.epsilon,
        "norm": attack.norm,
        "points": points,
        "seed": config.seed,
    }


def _stored(source, settings):
    stored = source.run.read_json(VALIDATION_ROBUSTNESS_FILE)
    if not isinstance(stored, dict) or stored.get("model") != _model_entry(source):
        return None
    same = all(stored.get(key) == settings[key] for key in _SAME_MEASUREMENT_KEYS)
    return stored if same else None


def _model_entry(source):
    return {"path": source.recorded_path, "epoch": source.epoch()}


def _validation_points(config, model, points):
    splits = load_dataset(
        config.dataset,
        **config.data_options(),
        validation_fraction=config.validation_fraction,
        seed=config.seed,
    )
    check_fits_data(model, splits.info)
    images, labels = splits.validation
    chosen = autoattack_subset(len(labels), points)
    images = images[chosen]
    if isinstance(images, ImageFiles):
        images = images.decode()
    return as_float_images(images), labels[chosen]
