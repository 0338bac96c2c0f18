"""Train several methods or variants on the same data, backbone and seeds; one table and plot.

    python -m keras_dpnp.compare --flagfile=configs/digits_compare.cfg

Every `TrainConfig` flag sets the shared base; each `--variant=label:flag=value,flag=value`
overrides it for one row; `--seeds=0,1` repeats every row. Runs land in
`<model_dir>/<label>/seed<k>` (a finished run with the same config is reused), and the table in
`<model_dir>/comparison.{md,json,png}`. `--suite=headline` (or another robustness suite) also
evaluates each run's best checkpoint on the test split (clean, FGSM, PGD-20, CW∞, AutoAttack) and
puts those columns in the table; `--nofinal_test` trains for a choice made on validation only.
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
cli.define_verbose_flag()
HELP_GROUPS = (("comparison", ("variant", "seeds", "suite", "verbose")), *FLAG_TOPICS)


def main(argv):
    if len(argv) > 1:
        cli.fail(f"unexpected arguments {argv[1:]}; every option is a --flag")
    from keras_dpnp.training import comparison

    try:
        base = config_from_flags(flags.FLAGS)
        variants = comparison.parse_variants(flags.FLAGS.variant or [f"{base.method}:"])
        seeds = [int(seed) for seed in flags.FLAGS.seeds]
        runs = comparison.plan_runs(base, variants, seeds)
    except ValueError as error:
        cli.fail(str(error))
    if flags.FLAGS.suite and not base.final_test:
        cli.fail(
            "--suite evaluates on the test split, which --nofinal_test keeps unread; "
            "drop one of them"
        )
    rows = comparison.run_all(runs, verbose=cli.verbose_value(), suite=flags.FLAGS.suite)
    folder = base.run_dir
    table = comparison.write_outputs(folder, rows)
    print(table)
    print(f"comparison written to {os.path.join(folder, 'comparison.md')}")


def run():
    """The console entry point (`keras-dpnp-...`)."""
    cli.run(main, HELP_GROUPS)


if __name__ == "__main__":
    run()
