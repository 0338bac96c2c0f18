"""Train a model: `python -m keras_dpnp.train --flagfile=configs/digits_adv_dpnp.cfg`.

Every flag is a field of `keras_dpnp.config.TrainConfig`; command-line flags override the
flagfile. The run directory receives config.json, last.keras, history.csv, TensorBoard logs and
results.json.
"""

from absl import flags

from keras_dpnp import cli
from keras_dpnp.config import config_from_flags, define_flags

define_flags()
flags.DEFINE_bool(
    "overwrite",
    False,
    "Replace a run directory that holds a different config (its checkpoints are deleted, once "
    "the data have loaded and the model is built); without it such a directory is refused.",
)


def main(argv):
    if len(argv) > 1:
        cli.fail(f"unexpected arguments {argv[1:]}; every option is a --flag")
    try:
        config = config_from_flags(flags.FLAGS)
    except ValueError as error:
        cli.fail(str(error))
    from keras_dpnp.data import DatasetNotFoundError
    from keras_dpnp.training.loop import format_results, train
    from keras_dpnp.training.run_dir import RunDirectoryError

    try:
        results = train(config, overwrite=flags.FLAGS.overwrite)
    except (DatasetNotFoundError, RunDirectoryError, ValueError) as error:
        cli.fail(str(error))
    print(format_results(results))
    print(f"results written to {config.run_dir}/results.json")


def run():
    """The console entry point (`keras-dpnp-...`)."""
    cli.run(main)


if __name__ == "__main__":
    run()
