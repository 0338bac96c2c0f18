"""Training-step speed: `python -m keras_dpnp.bench [--models=resnet18] [--precisions=float32]`.

Measures images/s of a clean step, a PGD Adv-DPNP step and a PGD PGD-AT step on synthetic
CIFAR-shaped data, for each backbone and precision, with achieved GFLOP/s against the measured
matmul GFLOP/s, peak memory and retraces after the first step (see
`keras_dpnp.benchmarks.training_step`).
Each case runs in a fresh process. Prints a Markdown table and the JSON (or writes it to
--output).
"""

import json

from absl import app, flags

from keras_dpnp import cli
from keras_dpnp.files import write_text

flags.DEFINE_list("models", ["small_cnn", "resnet18"], "Backbones to measure.")
flags.DEFINE_list(
    "precisions",
    None,
    "Precisions to measure; default float32 and "
    "mixed_bfloat16, plus mixed_float16 when there is a GPU.",
)
flags.DEFINE_list("steps", ["clean", "adv_dpnp", "pgd_at"], "Training steps to measure.")
flags.DEFINE_integer("batch_size", 128, "Images per step.", lower_bound=1)
flags.DEFINE_integer("image_size", 32, "Side of the synthetic square RGB images.", lower_bound=8)
flags.DEFINE_float("width", 1.0, "Channel multiplier of the backbones.", lower_bound=0.0)
flags.DEFINE_integer("attack_steps", 10, "PGD steps of the adversarial steps.", lower_bound=1)
flags.DEFINE_integer(
    "warmup_steps", 1, "Untimed steps first (the first one traces).", lower_bound=1
)
flags.DEFINE_integer("timed_steps", 3, "Timed steps per case.", lower_bound=1)
flags.DEFINE_integer(
    "matmul_size", 4096, "Side of the square matmul timed for the peak.", lower_bound=16
)
flags.DEFINE_string("output", "", "Write the JSON here instead of printing it.")


def main(argv):
    if len(argv) > 1:
        cli.fail(f"unexpected arguments {argv[1:]}; every option is a --flag")
    from keras_dpnp.backbones import BACKBONES
    from keras_dpnp.benchmarks import training_step

    f = flags.FLAGS
    unknown = sorted(set(f.models) - set(BACKBONES))
    if unknown:
        cli.fail(f"--models: unknown backbones {unknown}; choose from {list(BACKBONES)}")
    environment = training_step.environment()
    precisions = f.precisions or training_step.default_precisions(environment)
    try:
        cases = [
            training_step.Case(
                backbone=model,
                precision=precision,
                step=step,
                batch_size=f.batch_size,
                image_size=f.image_size,
                width=f.width,
                attack_steps=f.attack_steps,
                warmup_steps=f.warmup_steps,
                timed_steps=f.timed_steps,
            )
            for model in f.models
            for precision in precisions
            for step in f.steps
        ]
    except ValueError as error:
        cli.fail(str(error))
    report = training_step.measure(
        cases, environment, f.matmul_size, progress=lambda line: print(line, flush=True)
    )
    print("\n" + training_step.markdown_table(report["results"]) + "\n")
    peaks = report["matmul_gflops"]
    print("matmul peak GFLOP/s: " + ", ".join(f"{d} {g:.0f}" for d, g in peaks.items()))
    text = json.dumps(report, indent=2)
    if f.output:
        write_text(f.output, text + "\n")
        print(f"JSON written to {f.output}")
    else:
        print(text)


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags_or_exit)
