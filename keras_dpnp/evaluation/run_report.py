"""The robustness report of a model file or a run directory, at the run's own ε, norm and step
unless told otherwise."""

import os

from keras_dpnp.attacks.autoattack_progress import ProgressFile, file_digest
from keras_dpnp.config import TrainConfig
from keras_dpnp.evaluation import report, robustness
from keras_dpnp.evaluation.corruptions import CorruptionSettings
from keras_dpnp.files import check_writable
from keras_dpnp.training.run_dir import (
    AUTOATTACK_PROGRESS_FILE,
    ROBUSTNESS_FILE,
    ModelLoadError,
    check_fits_data,
    find_model,
    load_model,
)


def attack_settings(trained, epsilon=None, norm=None, step_size=None):
    """(ε, norm, PGD step) of an evaluation: the given values, else the training attack's.

    `trained` is the model's training `PGDConfig` (None: unknown). Its step is scaled to ε
    when the norm is the same; otherwise the step is None (the suite's default, 2.5 ε / 20).
    """
    if epsilon is None:
        epsilon = trained.epsilon if trained else 0.0
    if not epsilon > 0:
        raise ValueError("no attack radius: the run was trained with ε = 0, so pass --epsilon")
    norm = norm or (trained.norm if trained else "linf")
    if step_size is None and trained and trained.epsilon > 0 and norm == trained.norm:
        step_size = trained.step_at(epsilon)
    return epsilon, norm, step_size


def training_attack(source, model):
    """The `PGDConfig` a model was trained with: its run's, else the model's own (None)."""
    return source.config.train_attack() if source.config else getattr(model, "attack_config", None)


def _dataset_of(source, dataset):
    if dataset or source.config:
        return dataset or source.config.dataset
    kind = "a bare .keras file" if os.path.isfile(source.given) else "a folder without config.json"
    raise ValueError(f"{source.given} is {kind}: pass --dataset (the data set it was trained on)")


def evaluate_model(
    path,
    suite="standard",
    *,
    checkpoint="best",
    dataset=None,
    data_flags=None,
    epsilon=None,
    norm=None,
    step_size=None,
    num_points=None,
    seed=0,
    batch_size=256,
    restarts=1,
    autoattack_points=None,
    autoattack_workers=1,
    corruptions=None,
    out=None,
    figure_formats=("png",),
    progress=True,
):
    """Evaluates the model at `path` (a run directory or a `.keras` file) on its test split.

    Data set, data settings and the attack default to the run's config (a bare file needs
    `dataset`; its attack defaults to the model's training attack). `data_flags`: {flag: text}
    overriding the run's data settings (`data_dir`, `manual_dir`, `image_size`, ...).
    `corruptions`: the `CorruptionSettings` fields other than the data set, for the full suite.
    `autoattack_points`: AutoAttack on a fixed subset of this many points (see
    `robustness.evaluate_robustness`), `autoattack_workers` of its batches at once.
    Writes the report into `out` (default: the run directory, or the file's folder), which is
    checked writable before anything is loaded (`UnwritableError` otherwise), each figure in
    each of `figure_formats` (`png`, `pdf`, `svg`). A report already there on the same model
    file, points and attack settings keeps what this suite does not measure
    (`merged_report`): a headline report and a `corruptions_geometry` one make one report.
    AutoAttack keeps its finished stages in `out` (`AUTOATTACK_PROGRESS_FILE`) until the report
    is written, so an interrupted evaluation of the same model and settings resumes after them.

    Returns:
        (results, Markdown text, {kind: path written}).
    """
    from keras_dpnp.data import load_dataset

    source = find_model(path, checkpoint)
    folder = out or source.folder
    check_writable(folder)
    config = source.config
    dataset = _dataset_of(source, dataset)
    data_config = (config or TrainConfig()).with_overrides(
        {"dataset": dataset, **(data_flags or {})}
    )
    data_options = data_config.data_options()
    settings = CorruptionSettings(
        dataset=dataset, data_dir=data_options["data_dir"], **(corruptions or {})
    )
    model = load_model(source.model_path)
    splits = load_dataset(dataset, **data_options)
    check_fits_data(model, splits.info)
    epsilon, norm, step_size = attack_settings(
        training_attack(source, model), epsilon, norm, step_size
    )
    progress_file = ProgressFile(
        os.path.join(folder, AUTOATTACK_PROGRESS_FILE), file_digest(source.model_path)
    )
    results = robustness.evaluate_robustness(
        model,
        *splits.test,
        epsilon=epsilon,
        norm=norm,
        suite=suite,
        num_points=num_points,
        seed=seed,
        batch_size=batch_size,
        step_size=step_size,
        restarts=restarts,
        autoattack_points=autoattack_points,
        autoattack_workers=autoattack_workers,
        autoattack_progress=progress_file,
        corruption_settings=settings,
        progress=progress,
    )
    report.describe_source(results, source, model, splits)
    results = merged_report(report.read_report(folder), results)
    markdown, paths = report.write_report(results, folder, figure_formats)
    if os.path.exists(progress_file.path):
        os.remove(progress_file.path)
    return results, markdown, paths


# What makes two reports measurements of one evaluation (their parts may differ).
_SAME_EVALUATION_KEYS = ("norm", "epsilon", "step_size", "points", "seed", "subset", "dataset")


def _one_evaluation(previous, results):
    same_model = all(
        previous.get("model", {}).get(key) == results["model"][key] for key in ("path", "epoch")
    )
    return same_model and all(
        previous.get(key) == results.get(key) for key in _SAME_EVALUATION_KEYS
    )


def merged_report(previous, results):
    """`results` with what `previous` measured and `results` did not, when both measured the same
    model file on the same points with the same attack settings; else `results` alone.

    The newer value wins for every part both ran (attack rows by name); `suite` names both
    suites, `parts` lists the parts of both, `seconds` adds up.
    """
    if not isinstance(previous, dict) or not _one_evaluation(previous, results):
        return results
    merged = {**previous, **results}
    rows = {row["name"]: row for row in previous.get("attacks", [])}
    rows.update({row["name"]: row for row in results["attacks"]})
    merged["attacks"] = list(rows.values())
    merged["parts"] = list(
        dict.fromkeys(robustness.report_parts(previous) + tuple(results["parts"]))
    )
    suites = dict.fromkeys([*robustness.report_suites(previous), results["suite"]])
    merged["suite"] = " + ".join(suites)
    merged["seconds"] = round(previous.get("seconds", 0.0) + results["seconds"], 1)
    return merged


def evaluate_run(
    run_dir,
    suite="headline",
    *,
    checkpoint="best",
    seed=0,
    batch_size=256,
    autoattack_points=None,
    progress=True,
):
    """Evaluates a run's checkpoint on its test split; writes and returns the report dict.

    A report already in the run directory that holds every part of `suite`, for the same seed
    and checkpoint file, with AutoAttack on at least `autoattack_points` points, is returned as
    it is, so a comparison rerun reads each test set once.
    """
    previous = finished_report(
        run_dir, suite, checkpoint=checkpoint, seed=seed, autoattack_points=autoattack_points
    )
    if previous is not None:
        return previous
    results, _, _ = evaluate_model(
        run_dir,
        suite,
        checkpoint=checkpoint,
        seed=seed,
        batch_size=batch_size,
        autoattack_points=autoattack_points,
        progress=progress,
    )
    return results


def finished_report(
    run_dir, suite="headline", *, checkpoint="best", seed=0, autoattack_points=None
):
    """The report `evaluate_run` would reuse for these settings, or None (also for a folder
    without the checkpoint): reads, never runs."""
    try:
        source = find_model(run_dir, checkpoint)
    except ModelLoadError:
        return None
    previous = source.run.read_json(ROBUSTNESS_FILE) if source.run else None
    if previous and _same_evaluation(
        previous, suite, seed, source.recorded_path, autoattack_points
    ):
        return previous
    return None


def _same_evaluation(previous, suite, seed, model_path, autoattack_points):
    found = (previous.get("seed"), previous.get("model", {}).get("path"))
    if found != (seed, model_path) or not robustness.report_answers(previous, suite):
        return False
    if "autoattack" not in robustness.SUITES[suite].parts:
        return True
    # AutoAttack's subsets are nested, so a report on at least as many points answers.
    attacked = previous.get("autoattack", {}).get("points")
    evaluated = previous.get("points")
    wanted_points = evaluated if autoattack_points is None else min(autoattack_points, evaluated)
    return attacked is None or attacked >= wanted_points
