"""Train a model: `python -m keras_dpnp.train --flagfile=configs/digits_adv_dpnp.cfg`.

Every flag is a field of `keras_dpnp.config.TrainConfig`; command-line flags override the
flagfile, and such a run gets its own run directory, runs/<flagfile name>+flag=value. The run
directory receives config.json, last.keras, best.keras, history.csv, TensorBoard logs and
results.json; rerunning a finished run prints its results without training.
"""

from absl import flags

from keras_dpnp import cli
from keras_dpnp.config import FLAG_TOPICS, config_from_flags, define_flags

define_flags()
flags.DEFINE_bool(
    "overwrite",
    False,
    "Replace a run directory that holds a different config (its checkpoints are deleted, once "
    "the data have loaded and the model is built); without it such a directory is refused.",
)
cli.define_verbose_flag()
HELP_GROUPS = (*FLAG_TOPICS, ("console and run directory", ("verbose", "overwrite")))


def main(argv):
    if len(argv) > 1:
        cli.fail(f"unexpected arguments {argv[1:]}; every option is a --flag")
    try:
        config = config_from_flags(flags.FLAGS)
    except ValueError as error:
        cli.fail(str(error))
    from keras_dpnp.data import DatasetNotFoundError
    from keras_dpnp.training.console import end_summary
    from keras_dpnp.training.loop import format_results, train
    from keras_dpnp.training.run_dir import RunDirectoryError

    try:
        results = train(config, verbose=cli.verbose_value(), overwrite=flags.FLAGS.overwrite)
    except (DatasetNotFoundError, RunDirectoryError, ValueError) as error:
        cli.fail(str(error))
    print(format_results(results))
    print(end_summary(results, config.run_dir))


def run():
    """The console entry point (`keras-dpnp-...`)."""
    cli.run(main, HELP_GROUPS)


if __name__ == "__main__":
    run()
