"""Robustness report of a trained model on its test split (SPEC §5).

    python -m keras_dpnp.evaluate --model=runs/adv_dpnp [--suite=headline|quick|standard|full]
    python -m keras_dpnp.evaluate --model=runs/adv_dpnp --suite=corruptions_geometry
    python -m keras_dpnp.evaluate --model=model.keras --dataset=digits --epsilon=0.2

A run directory gives the data set, ε, norm and PGD step from its config.json and the model
from best.keras (else last.keras; --checkpoint=last picks last.keras); a bare .keras file needs
--dataset, and takes ε, norm and step from the model's training attack unless flagged. Writes
robustness.json, robustness.md and robust_accuracy_vs_epsilon.png into --out (default: the run
directory, or the .keras file's folder) and prints the table; `--suite=full` adds the CIFAR-10-C
corruptions (corruption_accuracy.png) and the feature geometry (feature_embedding.png);
--figure_format=png,pdf writes each figure in each format. The library call is
`keras_dpnp.evaluation.run_report.evaluate_model`.
"""

import os

from absl import flags

from keras_dpnp import cli
from keras_dpnp.figures import parse_formats

flags.DEFINE_string(
    "model",
    None,
    "Run directory or .keras file to evaluate; a run directory gives the run's model (best.keras "
    "with validation, else last.keras), the one its results.json names.",
)
flags.DEFINE_enum(
    "checkpoint",
    "best",
    ["best", "last"],
    "Checkpoint of a run directory: best (best validation accuracy under attack; "
    "last.keras if there is none) or last.",
)
flags.DEFINE_enum(
    "suite",
    "standard",
    ["headline", "quick", "standard", "full", "corruptions_geometry"],
    "headline: clean, FGSM, PGD-20, CW∞, AutoAttack (a comparison's columns); "
    "quick: clean, FGSM, PGD-20, CW∞, ε sweep, diagnostics; standard: + AutoAttack, "
    "CW-L2, Square; full: + CW-L2 on every point, a finer sweep, the CIFAR-10-C "
    "corruptions and the feature geometry; corruptions_geometry: clean, the corruptions and "
    "the geometry alone. A report already in the folder on the same model, points and "
    "attack settings keeps what this suite does not measure, so corruptions_geometry "
    "after headline gives one report with both.",
)
cli.define_number(
    "epsilon",
    None,
    "Attack radius in pixel scale [0, 1] (fractions such as "
    "8/255 work); default: the run's training ε.",
)
flags.DEFINE_enum("norm", None, ["linf", "l2"], "Attack norm; default: the run's.")
cli.define_number(
    "step_size",
    None,
    "PGD step at ε; default: the run's training step scaled to ε, else 2.5 ε / 20.",
)
flags.DEFINE_integer(
    "num_points",
    None,
    "Evaluate a seeded random subset of this many test points; default: all.",
    lower_bound=1,
)
flags.DEFINE_integer(
    "autoattack_points",
    None,
    "Run AutoAttack on a fixed subset of this many of the evaluated points (the same points "
    "for every run and --seed); default: all of them.",
    lower_bound=1,
)
flags.DEFINE_integer("restarts", 1, "Random restarts of the PGD-20 row.", lower_bound=1)
flags.DEFINE_string(
    "out", None, "Report folder; default: the run directory or the .keras file's folder."
)
flags.DEFINE_list(
    "figure_format",
    ["png"],
    "Comma-separated formats of the figures (png, pdf, svg), e.g. png,pdf; each figure is "
    "written once per format.",
)
flags.DEFINE_string("dataset", None, "Data set (needed for a bare .keras file; overrides a run's).")
flags.DEFINE_string("data_dir", None, "Prepared TFDS data folder; default: the run's.")
flags.DEFINE_string("manual_dir", None, "Folder of original archives; default: the run's.")
flags.DEFINE_string(
    "tfds_split_test",
    None,
    "TFDS split of a --dataset=tfds:<name> to evaluate on; default: the run's, else test.",
)
flags.DEFINE_string(
    "tfds_split_train",
    None,
    "TFDS training split of a tfds: data set (its images' statistics); default: the run's, "
    "else train.",
)
flags.DEFINE_string(
    "image_size",
    None,
    "Resize tfds: or folder: images to SIDE or HEIGHT,WIDTH; default: the run's.",
)
flags.DEFINE_string(
    "folder_test_fraction",
    None,
    "Held-out test share of a folder: data set without test/; default: the run's, else 0.2.",
)
flags.DEFINE_string(
    "max_in_memory_mb",
    None,
    "Stream folder: splits larger than this from disk; default: the run's, else 4096.",
)
flags.DEFINE_integer("seed", 0, "Seed of the subset and the attacks' random starts.", lower_bound=0)
flags.DEFINE_integer("batch_size", 256, "Attack batch size.", lower_bound=1)
flags.DEFINE_enum(
    "corruption_source",
    "auto",
    ["auto", "tfds", "generated"],
    "Corrupted images of the full suite: tfds (official CIFAR-10-C prepared in "
    "--data_dir), generated (from the test points with CIFAR-10-C's parameters), "
    "or auto (tfds for cifar10 when prepared, else generated).",
)
flags.DEFINE_string(
    "corruption_cache",
    os.path.join("~", ".cache", "keras_dpnp", "corruptions"),
    "Folder caching generated corrupted sets; empty: no cache.",
)
flags.DEFINE_list(
    "corruptions",
    None,
    "Comma-separated subset of the 15 corruptions (e.g. gaussian_noise,fog); default: all.",
)
flags.DEFINE_list("severities", None, "Comma-separated subset of severities 1..5; default: all.")
flags.mark_flag_as_required("model")
cli.define_threads_flag()
cli.define_autoattack_workers_flag()
HELP_GROUPS = (
    ("model", ("model", "checkpoint")),
    (
        "attack",
        (
            "suite",
            "epsilon",
            "norm",
            "step_size",
            "num_points",
            "autoattack_points",
            "restarts",
            "seed",
            "batch_size",
        ),
    ),
    (
        "data",
        (
            "dataset",
            "data_dir",
            "manual_dir",
            "tfds_split_test",
            "tfds_split_train",
            "image_size",
            "folder_test_fraction",
            "max_in_memory_mb",
        ),
    ),
    (
        "corruptions (--suite=full)",
        ("corruption_source", "corruption_cache", "corruptions", "severities"),
    ),
    ("output", ("out", "figure_format")),
    ("sharing the machine", ("threads", "autoattack_workers")),
)


# The data flags that override a run's own data settings.
_DATA_FLAGS = (
    "data_dir",
    "manual_dir",
    "tfds_split_train",
    "tfds_split_test",
    "image_size",
    "folder_test_fraction",
    "max_in_memory_mb",
)


def _corruption_options():
    """The `CorruptionSettings` fields the flags give (the data set comes from the run)."""
    f = flags.FLAGS
    try:
        severities = [int(s) for s in f.severities] if f.severities else None
    except ValueError:
        cli.fail(f"--severities={','.join(f.severities)} must list integers from 1 to 5")
    chosen = {"corruptions": f.corruptions, "severities": severities}
    return {
        "source": f.corruption_source,
        "cache_dir": os.path.expanduser(f.corruption_cache) if f.corruption_cache else None,
        **{key: value for key, value in chosen.items() if value},
    }


def _figure_formats():
    try:
        return parse_formats(",".join(flags.FLAGS.figure_format))
    except ValueError as error:
        cli.fail(f"--figure_format: {error}")


def main(argv):
    if len(argv) > 1:
        cli.fail(f"unexpected arguments {argv[1:]}; every option is a --flag")
    from keras_dpnp.data import DatasetNotFoundError
    from keras_dpnp.evaluation.run_report import evaluate_model
    from keras_dpnp.files import UnwritableError
    from keras_dpnp.training.run_dir import ModelLoadError

    f = flags.FLAGS
    cli.apply_threads(f.threads, f.autoattack_workers)
    try:
        _, markdown, paths = evaluate_model(
            f.model,
            f.suite,
            checkpoint=f.checkpoint,
            dataset=f.dataset,
            data_flags={name: f[name].value for name in _DATA_FLAGS if f[name].value is not None},
            epsilon=f.epsilon,
            norm=f.norm,
            step_size=f.step_size,
            num_points=f.num_points,
            seed=f.seed,
            batch_size=f.batch_size,
            restarts=f.restarts,
            autoattack_points=f.autoattack_points,
            autoattack_workers=f.autoattack_workers,
            corruptions=_corruption_options(),
            out=f.out,
            figure_formats=_figure_formats(),
        )
    except (ModelLoadError, DatasetNotFoundError, UnwritableError, ValueError) as error:
        cli.fail(str(error))
    print(markdown)
    print(f"report written to {os.path.abspath(paths['json'])}")


def run():
    """The console entry point (`keras-dpnp-...`)."""
    cli.run(main, HELP_GROUPS)


if __name__ == "__main__":
    run()
