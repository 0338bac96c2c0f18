"""Train several methods or variants on the same data, backbone and seeds; one table and plot.

    python -m keras_dpnp.compare --flagfile=configs/digits_compare.cfg

Every `TrainConfig` flag sets the shared base; each `--variant=label:flag=value,flag=value`
overrides it for one row; `--seeds=0,1` repeats every row (`--variant=label@0+1:...` gives one
row its own seeds). Runs land in `<model_dir>/<label>/seed<k>` (a finished run with the same
config is reused), and the table in `<model_dir>/comparison.{md,json,png}` (`--table_name`
renames them). `--suite=headline` (or another robustness suite) also evaluates each run's best
checkpoint on the test split (clean, FGSM, PGD-20, CW∞, AutoAttack) and puts those columns in
the table (`--autoattack_points=1000`: AutoAttack on a fixed subset of the test points);
`--nofinal_test` trains for a choice made on validation only, and `--choose_among=a+b+c` names
the choice among tuning trials by the validation rule of `training/selection.py`
(`--choose_by=val_apgd`: by AutoAttack's APGD stages on validation points, not the logged PGD).
The table is rewritten after every run, so a long comparison that is interrupted keeps the rows
it finished (marked partial).
`--shard=0/2 --threads=1` and `--shard=1/2 --threads=1`, started side by side, split the runs
between two processes (on a 2-core CPU two one-thread processes get more done than one with two
threads); each writes the table of every run finished so far, whichever shard ran it.
"""

import os

from absl import flags

from keras_dpnp import cli
from keras_dpnp.config import FLAG_TOPICS, config_from_flags, define_flags

define_flags()
flags.DEFINE_multi_string("variant", [], "label:flag=value,flag=value; repeat for each row.")
flags.DEFINE_list("seeds", ["0"], "Seeds every variant is trained with.")
flags.DEFINE_enum(
    "suite",
    None,
    ["headline", "quick", "standard", "full"],
    "Robustness suite run on each run's best checkpoint (test split); default: "
    "none, the table shows the test accuracy measured at the end of training.",
)
flags.DEFINE_string(
    "table_name",
    "comparison",
    "Base name of the table files in --model_dir (<name>.md, .json, .png); two comparisons "
    "sharing runs in one --model_dir keep their own tables.",
)
flags.DEFINE_integer(
    "autoattack_points",
    None,
    "With --suite: AutoAttack on a fixed, seeded subset of this many test points (the same "
    "points for every run), the other attacks on all; default: all points.",
    lower_bound=1,
)
flags.DEFINE_string(
    "shard",
    None,
    "I/N: train and evaluate only every N-th run from the I-th, so N processes started with "
    "0/N ... N-1/N share one comparison (with --threads); each rewrites the table of every "
    "finished run, its own and the other shards', after each of its runs.",
)
flags.DEFINE_multi_string(
    "choose_among",
    [],
    "label+label+...: tuning trials (e.g. one method at several β) to choose among on "
    "validation only; the table names the choice (highest val PGD %, ties within 0.5 points: "
    "higher val clean %). Repeat for each group.",
)
flags.DEFINE_enum(
    "choose_by",
    "val_pgd",
    ["val_pgd", "val_apgd"],
    "The validation robust accuracy the --choose_among choice maximises: val_pgd, the PGD "
    "training logs each epoch (PGD-10 by default), or val_apgd, AutoAttack's APGD-CE and "
    "APGD-T on --choose_points validation points of each run (a short PGD can overstate "
    "a model; APGD cannot be tuned to it), a column for every row. The table names the "
    "val_pgd choice too. val_apgd without --choose_among measures the column and chooses "
    "nothing (a side check read on validation, not on the test set).",
)
flags.DEFINE_integer(
    "choose_points",
    1000,
    "With --choose_by=val_apgd: validation points attacked per run (a fixed, seeded subset).",
    lower_bound=1,
)
flags.DEFINE_bool(
    "table_only",
    False,
    "Rewrite the table from the runs already finished (and evaluated, with --suite) in "
    "--model_dir, training and evaluating nothing: e.g. after evaluate "
    "--suite=corruptions_geometry added mCA and geometry to some runs' reports.",
)
cli.define_verbose_flag()
cli.define_threads_flag()
HELP_GROUPS = (
    (
        "comparison",
        (
            "variant",
            "seeds",
            "suite",
            "autoattack_points",
            "choose_among",
            "choose_by",
            "choose_points",
            "table_name",
            "table_only",
            "verbose",
        ),
    ),
    ("sharing the machine", ("shard", "threads")),
    *FLAG_TOPICS,
)


def main(argv):
    if len(argv) > 1:
        cli.fail(f"unexpected arguments {argv[1:]}; every option is a --flag")
    from keras_dpnp.training import comparison, selection

    try:
        base = config_from_flags(flags.FLAGS)
        variants = comparison.parse_variants(flags.FLAGS.variant or [f"{base.method}:"])
        seeds = [int(seed) for seed in flags.FLAGS.seeds]
        runs = comparison.plan_runs(base, variants, seeds)
        shard = comparison.parse_shard(flags.FLAGS.shard)
        rule = selection.Rule(
            tuple(
                selection.parse_trial_groups(
                    flags.FLAGS.choose_among, [variant.label for variant in variants]
                )
            ),
            flags.FLAGS.choose_by,
            flags.FLAGS.choose_points,
        )
    except ValueError as error:
        cli.fail(str(error))
    if flags.FLAGS.suite and not base.final_test:
        cli.fail(
            "--suite evaluates on the test split, which --nofinal_test keeps unread; "
            "drop one of them"
        )
    if flags.FLAGS.autoattack_points and not flags.FLAGS.suite:
        cli.fail("--autoattack_points sets the AutoAttack of a --suite; add --suite=headline")
    cli.apply_threads(flags.FLAGS.threads)
    folder = base.run_dir

    suite, points = flags.FLAGS.suite, flags.FLAGS.autoattack_points

    def write_table(rows):
        if shard:  # the other shards' finished runs belong in the table too
            rows = comparison.finished_rows(runs, suite, points, rule)
        done = {run.config.name for run, _ in rows}
        pending = [run.config.name for run in runs if run.config.name not in done]
        return comparison.write_outputs(folder, rows, flags.FLAGS.table_name, pending, rule)

    if flags.FLAGS.table_only:
        rows = comparison.finished_rows(runs, suite, points, rule)
        if not rows:
            cli.fail(
                f"--table_only: no run of this comparison has finished in {folder} yet; "
                "run it without --table_only first"
            )
    else:
        rows = comparison.run_all(
            comparison.shard_of(runs, shard),
            verbose=cli.verbose_value(),
            suite=suite,
            autoattack_points=points,
            on_finished=write_table,
            rule=rule,
        )
    table = write_table(rows)
    print(table)
    print(f"comparison written to {os.path.join(folder, flags.FLAGS.table_name + '.md')}")


def run():
    """The console entry point (`keras-dpnp-...`)."""
    cli.run(main, HELP_GROUPS)


if __name__ == "__main__":
    run()
