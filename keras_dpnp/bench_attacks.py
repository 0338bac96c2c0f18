"""Attack speed: our in-graph PGD-20 against cleverhans's PGD-20, and AutoAttack's wall time.

    python -m keras_dpnp.bench_attacks [--batch_size=256] [--repeats=3] [--model=runs/adv_dpnp]

Setups: an untrained small CNN on random 32×32×3 images, an untrained small CNN on the digits
test images, and (with --model) a trained model on its data set's test images. Both PGDs attack
the same model and batch at the same ε, step and number of steps. AutoAttack (standard) time
depends on how many points survive each stage, so its robust accuracy is printed beside it.
Prints figures only; the measurements are `keras_dpnp.benchmarks.attacks`.
"""

from absl import flags

from keras_dpnp import cli

flags.DEFINE_integer("batch_size", 256, "Images per PGD call.", lower_bound=1)
flags.DEFINE_integer(
    "repeats", 3, "Timed PGD calls per setup (after one warm-up call).", lower_bound=1
)
flags.DEFINE_integer(
    "autoattack_points", 100, "Points for the AutoAttack timing; 0: skip.", lower_bound=0
)
flags.DEFINE_string("model", None, "Optional run directory or .keras file to add as a setup.")
flags.DEFINE_string("dataset", None, "Data set of a bare .keras --model.")
cli.define_number(
    "epsilon",
    8 / 255,
    "L∞ radius of both PGDs and AutoAttack; a --model "
    "setup uses its training ε unless this flag is given.",
    lower_bound=0,
)
flags.DEFINE_integer("seed", 0, "Seed of the random images, labels and weights.", lower_bound=0)


def main(argv):
    if len(argv) > 1:
        cli.fail(f"unexpected arguments {argv[1:]}; every option is a --flag")
    from keras_dpnp.benchmarks import attacks
    from keras_dpnp.data import DatasetNotFoundError
    from keras_dpnp.training.run_dir import ModelLoadError

    f = flags.FLAGS
    try:
        setups = attacks.standard_setups(f.batch_size, f.seed, f.epsilon)
        if f.model:
            epsilon = f.epsilon if f["epsilon"].present else None
            setups.append(attacks.trained_setup(f.model, f.batch_size, f.dataset, epsilon))
    except (ModelLoadError, DatasetNotFoundError, ValueError) as error:
        cli.fail(str(error))
    print(
        f"PGD-20 (L∞, step ε/4), batch {f.batch_size}, {f.repeats} timed calls each: "
        f"images per second, higher is better\n"
    )
    print("| setup | ε | ours (in-graph) | cleverhans 4.0.0 | ours / cleverhans |")
    print("|---|---:|---:|---:|---:|")
    for setup in setups:
        ours, theirs = attacks.pgd_speeds(setup, f.repeats)
        print(
            f"| {setup.name} | {setup.epsilon:.4g} | {ours:,.0f} | {theirs:,.0f} | "
            f"{ours / theirs:.1f}× |",
            flush=True,
        )
    if not f.autoattack_points:
        return
    print(f"\nAutoAttack (standard), {f.autoattack_points} points\n")
    print("| setup | ε | seconds per 100 points | robust accuracy % |")
    print("|---|---:|---:|---:|")
    for setup in setups:
        seconds, robust = attacks.autoattack_timing(setup, f.autoattack_points, f.seed)
        print(
            f"| {setup.name} | {setup.epsilon:.4g} | {seconds:.1f} | {100 * robust:.1f} |",
            flush=True,
        )


def run():
    """The console entry point (`keras-dpnp-...`)."""
    cli.run(main)


if __name__ == "__main__":
    run()
