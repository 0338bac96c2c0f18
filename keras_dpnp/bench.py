"""Training-step speed: `python -m keras_dpnp.bench [--models=resnet18] [--image_shape=28,28,1]`.

Measures images/s of a clean step, a PGD Adv-DPNP step and a PGD PGD-AT step on synthetic data
of `--image_shape`, for each backbone and precision, with achieved GFLOP/s against the measured
matmul GFLOP/s, peak memory and retraces after the first step (see
`keras_dpnp.benchmarks.training_step`).
When PyTorch is installed (it is optional), the same steps written in PyTorch
(`keras_dpnp.benchmarks.torch_steps`) run in the same session, each repeat right after ours,
and the table gives the ratio of the medians; otherwise the report says why they were skipped.
Each case runs in a fresh process. The report records the CPU model, its ISA flags, the thread
count and whether oneDNN is on. Prints a Markdown table and the JSON (or writes it to
--output). The library call is `keras_dpnp.benchmarks.side_by_side.run_benchmark`.
"""

import json

from absl import flags

from keras_dpnp import cli
from keras_dpnp.files import write_text

flags.DEFINE_list("models", ["small_cnn", "resnet18"], "Backbones to measure.")
flags.DEFINE_list(
    "precisions",
    None,
    "Precisions to measure (auto: what training's "
    "--precision=auto picks here); default float32 and auto, plus mixed_float16 "
    "when there is a GPU.",
)
flags.DEFINE_list(
    "steps",
    ["clean", "adv_dpnp", "pgd_at"],
    "Training steps to measure: clean (standard), adv_dpnp, pgd_at, and also trades, mart "
    "and dpnp (without a PyTorch side).",
)
flags.DEFINE_integer("batch_size", 128, "Images per step.", lower_bound=1)
flags.DEFINE_list(
    "image_shape",
    ["32", "32", "3"],
    "height,width,channels of the synthetic "
    "images, e.g. 28,28,1 (Fashion-MNIST) or 32,32,3 (CIFAR-10).",
)
cli.define_number("width", 1.0, "Channel multiplier of the backbones.", lower_bound=0.0)
flags.DEFINE_integer("attack_steps", 10, "PGD steps of the adversarial steps.", lower_bound=1)
flags.DEFINE_integer(
    "warmup_steps", 1, "Untimed steps first (the first one traces).", lower_bound=1
)
flags.DEFINE_integer("timed_steps", 3, "Timed steps per case.", lower_bound=1)
flags.DEFINE_integer(
    "matmul_size", 4096, "Side of the square matmul timed for the peak.", lower_bound=16
)
flags.DEFINE_integer(
    "threads",
    0,
    "Threads of both frameworks (TensorFlow's intra- and "
    "inter-op pools, PyTorch's intra-op pool); 0: TensorFlow's defaults (every "
    "core) and as many for PyTorch.",
    lower_bound=0,
)
flags.DEFINE_bool("pytorch", True, "Also time the same steps in PyTorch, when it is installed.")
flags.DEFINE_integer(
    "repeats",
    1,
    "Measurements per case (ours and PyTorch's interleaved); the table gives the medians.",
    lower_bound=1,
)
flags.DEFINE_string("output", "", "Write the JSON here instead of printing it.")


def _image_shape(values):
    try:
        shape = tuple(int(value) for value in values)
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        cli.fail(f"--image_shape={','.join(values)}: expected height,width,channels, e.g. 28,28,1")
    return shape


def _cases(f, precisions, shape):
    from keras_dpnp.benchmarks import training_step

    return [
        training_step.Case(
            backbone=model,
            precision=precision,
            step=step,
            batch_size=f.batch_size,
            image_shape=shape,
            width=f.width,
            attack_steps=f.attack_steps,
            warmup_steps=f.warmup_steps,
            timed_steps=f.timed_steps,
            threads=f.threads,
        )
        for model in f.models
        for precision in precisions
        for step in f.steps
    ]


def _planned_cases(f):
    """(the cases the flags ask for, the machine's environment); bad flags fail in one line."""
    from keras_dpnp.backbones import BACKBONES
    from keras_dpnp.benchmarks import side_by_side, training_step

    unknown = sorted(set(f.models) - set(BACKBONES))
    if unknown:
        cli.fail(f"--models: unknown backbones {unknown}; choose from {list(BACKBONES)}")
    shape = _image_shape(f.image_shape)
    environment = training_step.environment()
    try:
        precisions = side_by_side.resolve_precisions(f.precisions, environment)
    except ValueError as error:
        cli.fail(f"--precisions: {error}")
    try:
        return _cases(f, precisions, shape), environment
    except ValueError as error:
        cli.fail(str(error))


def main(argv):
    if len(argv) > 1:
        cli.fail(f"unexpected arguments {argv[1:]}; every option is a --flag")
    from keras_dpnp.benchmarks import side_by_side, training_step

    f = flags.FLAGS
    cases, environment = _planned_cases(f)
    report = side_by_side.run_benchmark(
        cases,
        environment=environment,
        threads=f.threads,
        pytorch=f.pytorch,
        repeats=f.repeats,
        matmul_size=f.matmul_size,
        progress=lambda line: print(line, flush=True),
    )
    print("\n" + training_step.markdown_table(report["results"]) + "\n")
    peaks = report["matmul_gflops"]
    print("matmul peak GFLOP/s: " + ", ".join(f"{d} {g:.0f}" for d, g in peaks.items()))
    print(side_by_side.environment_line(report["environment"]))
    text = json.dumps(report, indent=2)
    if f.output:
        write_text(f.output, text + "\n")
        print(f"JSON written to {f.output}")
    else:
        print(text)


def run():
    """The console entry point (`keras-dpnp-bench`)."""
    cli.run(main)


if __name__ == "__main__":
    run()
