"""Attack speed: our in-graph PGD-20 against cleverhans's PGD-20, and AutoAttack's wall time;
or, with --reference, our AutoAttack beside the reference PyTorch AutoAttack.

    python -m keras_dpnp.bench_attacks [--batch_size=256] [--repeats=3] [--model=runs/adv_dpnp]
    python -m keras_dpnp.bench_attacks --model=runs/adv_dpnp --reference --autoattack_points=1000

Setups: an untrained small CNN on random 32×32×3 images, an untrained small CNN on the digits
test images, and (with --model) a trained model on its data set's test images. Both PGDs attack
the same model and batch at the same ε, step and number of steps. AutoAttack (standard) time
depends on how many points survive each stage, so its robust accuracy is printed beside it.

--reference compares, on --model only, our AutoAttack with fra31/auto-attack (run by
--reference_python, in its own process, on the model's ONNX export) on the points that
`evaluate --autoattack_points` attacks: robust accuracy and seconds of each stage for both, and
how many points' verdicts differ. Without the reference installed, ours runs alone and the
reason is printed. Prints figures only; the measurements are `keras_dpnp.benchmarks.attacks`
and `keras_dpnp.benchmarks.reference_comparison`.
"""

import json
import os
import sys

from absl import flags

from keras_dpnp import cli

flags.DEFINE_integer(
    "batch_size",
    256,
    "Images per PGD call; with --reference, both AutoAttacks' batch size.",
    lower_bound=1,
)
flags.DEFINE_integer(
    "repeats", 3, "Timed PGD calls per setup (after one warm-up call).", lower_bound=1
)
flags.DEFINE_integer(
    "autoattack_points",
    100,
    "Points for the AutoAttack timing; 0: skip. With --reference: the fixed subset of this "
    "many test points that evaluate --autoattack_points attacks.",
    lower_bound=0,
)
flags.DEFINE_string("model", None, "Optional run directory or .keras file to add as a setup.")
flags.DEFINE_string("dataset", None, "Data set of a bare .keras --model.")
cli.define_number(
    "epsilon",
    8 / 255,
    "Radius of both PGDs (L∞) and AutoAttack; a --model setup uses its training ε (and, with "
    "--reference, its training norm) unless this flag is given.",
    lower_bound=0,
)
flags.DEFINE_integer(
    "seed",
    0,
    "Seed of the random images, labels and weights, and of both AutoAttacks.",
    lower_bound=0,
)
flags.DEFINE_integer(
    "threads",
    0,
    "TensorFlow's intra- and inter-op threads and, with --reference, PyTorch's; 0: "
    "TensorFlow's defaults and every usable core for PyTorch.",
    lower_bound=0,
)
flags.DEFINE_bool(
    "reference",
    False,
    "Compare our AutoAttack with the reference PyTorch AutoAttack (fra31/auto-attack) on "
    "--model, instead of the speed tables.",
)
flags.DEFINE_string(
    "reference_python",
    None,
    "Interpreter with torch, onnx2torch and autoattack installed (see docs/autoattack.md); "
    "default: the one running this.",
)
flags.DEFINE_string("output", None, "With --reference: also write the report as JSON here.")
cli.define_autoattack_workers_flag()
HELP_GROUPS = (
    ("PGD speed", ("batch_size", "repeats")),
    ("model and attack", ("model", "dataset", "epsilon", "autoattack_points", "seed", "threads")),
    ("reference AutoAttack", ("reference", "reference_python", "output", "autoattack_workers")),
)


def _check_flags(f):
    """One-line errors for flags that do not go together."""
    if f.reference and not f.model:
        cli.fail("--reference compares on a trained model: pass --model=<run dir or .keras>")
    if f.reference and not f.autoattack_points:
        cli.fail("--reference needs --autoattack_points >= 1 (the points both attacks run on)")
    for name in ("reference_python", "output", "autoattack_workers"):
        if f[name].present and not f.reference:
            cli.fail(f"--{name} is used only with --reference")


def _speed_setups(f):
    from keras_dpnp.benchmarks import attacks

    setups = attacks.standard_setups(f.batch_size, f.seed, f.epsilon)
    if f.model:
        epsilon = f.epsilon if f["epsilon"].present else None
        setups.append(attacks.trained_setup(f.model, f.batch_size, f.dataset, epsilon))
    return setups


def _pgd_table(setups, f):
    from keras_dpnp.benchmarks import attacks

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


def _autoattack_table(setups, f):
    from keras_dpnp.benchmarks import attacks

    print(f"\nAutoAttack (standard), {f.autoattack_points} points\n")
    print("| setup | ε | seconds per 100 points | robust accuracy % |")
    print("|---|---:|---:|---:|")
    for setup in setups:
        seconds, robust = attacks.autoattack_timing(setup, f.autoattack_points, f.seed)
        print(
            f"| {setup.name} | {setup.epsilon:.4g} | {seconds:.1f} | {100 * robust:.1f} |",
            flush=True,
        )


def _reference_comparison(f):
    from keras_dpnp.benchmarks import attacks, reference_comparison
    from keras_dpnp.files import write_text

    epsilon = f.epsilon if f["epsilon"].present else None
    setup, indices = attacks.autoattack_subset_setup(
        f.model, f.autoattack_points, f.dataset, epsilon
    )
    report = reference_comparison.compare(
        setup,
        python=f.reference_python or sys.executable,
        seed=f.seed,
        batch_size=f.batch_size,
        threads=f.threads,
        workers=f.autoattack_workers,
        progress=lambda line: print(f"[bench_attacks] {line}", file=sys.stderr, flush=True),
    )
    print(reference_comparison.report_text(report))
    if f.output:
        report["test_indices"] = indices.tolist()
        write_text(f.output, json.dumps(report, indent=2) + "\n")
        print(f"JSON written to {f.output}")


def main(argv):
    if len(argv) > 1:
        cli.fail(f"unexpected arguments {argv[1:]}; every option is a --flag")
    f = flags.FLAGS
    _check_flags(f)
    from keras_dpnp.benchmarks.reference_comparison import ReferenceRunError
    from keras_dpnp.data import DatasetNotFoundError
    from keras_dpnp.exporting import ExportError
    from keras_dpnp.files import UnwritableError, check_writable
    from keras_dpnp.training.run_dir import ModelLoadError

    cli.apply_threads(f.threads, f.autoattack_workers)
    try:
        if f.output:
            check_writable(os.path.dirname(os.path.abspath(f.output)))
        if f.reference:
            _reference_comparison(f)
            return
        setups = _speed_setups(f)
    except (
        ModelLoadError,
        DatasetNotFoundError,
        ExportError,
        ReferenceRunError,
        UnwritableError,
        ValueError,
    ) as error:
        cli.fail(str(error))
    _pgd_table(setups, f)
    if f.autoattack_points:
        _autoattack_table(setups, f)


def run():
    """The console entry point (`keras-dpnp-...`)."""
    cli.run(main, HELP_GROUPS)


if __name__ == "__main__":
    run()
