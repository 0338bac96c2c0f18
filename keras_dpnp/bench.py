"""Training-step speed: `python -m keras_dpnp.bench [--models=resnet18] [--image_shape=28,28,1]`.

Measures images/s of a clean step, a PGD Adv-DPNP step and a PGD PGD-AT step on synthetic data
of `--image_shape`, for each backbone and precision, with achieved GFLOP/s against the measured
matmul GFLOP/s, peak memory and retraces after the first step (see
`keras_dpnp.benchmarks.training_step`).
When PyTorch is installed (it is optional), the same steps written in PyTorch
(`keras_dpnp.torch_steps`) run in the same session, each repeat right after ours, and the table
gives the ratio of the medians; otherwise the report says why they were skipped. Each case runs
in a fresh process. The report records the CPU model, its ISA flags, the thread count and
whether oneDNN is on. Prints a Markdown table and the JSON (or writes it to --output).
"""

import concurrent.futures
import json
import multiprocessing
import os
import statistics

from absl import flags

from keras_dpnp import cli

flags.DEFINE_list("models", ["small_cnn", "resnet18"], "Backbones to measure.")
flags.DEFINE_list(
    "precisions",
    None,
    "Precisions to measure (auto: what training's "
    "--precision=auto picks here); default float32 and auto, plus mixed_float16 "
    "when there is a GPU.",
)
flags.DEFINE_list("steps", ["clean", "adv_dpnp", "pgd_at"], "Training steps to measure.")
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


def _run_isolated(case):
    """`run_case` in a fresh process: its own peak memory, dtype policy and thread pools."""
    from keras_dpnp.benchmarks import training_step

    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(training_step.run_case, case).result()


def _image_shape(values):
    try:
        shape = tuple(int(value) for value in values)
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        cli.fail(f"--image_shape={','.join(values)}: expected height,width,channels, e.g. 28,28,1")
    return shape


def _precisions(requested, environment):
    """The precisions to measure, `auto` resolved, each once."""
    from keras_dpnp.training import distribute

    names = requested or ["float32", "auto"] + (["mixed_float16"] if environment["gpus"] else [])
    try:
        resolved = [distribute.resolve_precision(name)[0] for name in names]
    except ValueError as error:
        cli.fail(f"--precisions: {error}")
    return list(dict.fromkeys(resolved))


def _pytorch_side(enabled, environment):
    """(whether to run PyTorch's steps, the report's note on it)."""
    from keras_dpnp.benchmarks import training_step

    if not enabled:
        return False, {"skipped": "--nopytorch"}
    if environment["gpus"]:
        return False, {"skipped": "the PyTorch steps run on the CPU only"}
    probe = training_step.pytorch_probe()
    if "unavailable" in probe:
        return False, {"skipped": probe["unavailable"]}
    return True, {"version": probe["version"]}


def _measure(case, threads, with_pytorch, repeats):
    """One result row: the median of `repeats` runs of ours, each followed by PyTorch's."""
    from keras_dpnp.benchmarks import training_step

    ours, theirs = [], []
    for _ in range(repeats):
        ours.append(_run_isolated(case))
        if with_pytorch:
            theirs.append(training_step.run_pytorch_case(case, threads))
    row = training_step.with_median(ours)
    if theirs:
        pytorch = training_step.with_median(theirs)
        pytorch["ratio"] = row["images_per_second"] / pytorch["images_per_second"]
        # Process CPU time per step, less disturbed than wall time on a shared machine.
        pytorch["cpu_time_ratio"] = statistics.median(
            r["cpu_seconds_per_step"] for r in theirs
        ) / statistics.median(r["cpu_seconds_per_step"] for r in ours)
        row["pytorch"] = pytorch
    return row


def _cases(f, precisions, shape):
    from keras_dpnp.benchmarks import training_step

    try:
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
    except ValueError as error:
        cli.fail(str(error))


def _print_case(row):
    torch_row = row.get("pytorch")
    theirs = (
        f", PyTorch {torch_row['images_per_second']:.1f} ({torch_row['ratio']:.2f}×; "
        f"CPU time {torch_row['cpu_time_ratio']:.2f}×)"
        if torch_row
        else ""
    )
    print(
        f"measured {row['backbone']} {row['precision']} {row['step']}: "
        f"{row['images_per_second']:.1f} img/s{theirs}",
        flush=True,
    )


def main(argv):
    if len(argv) > 1:
        cli.fail(f"unexpected arguments {argv[1:]}; every option is a --flag")
    from keras_dpnp.backbones import BACKBONES
    from keras_dpnp.benchmarks import training_step

    f = flags.FLAGS
    unknown = sorted(set(f.models) - set(BACKBONES))
    if unknown:
        cli.fail(f"--models: unknown backbones {unknown}; choose from {list(BACKBONES)}")
    shape = _image_shape(f.image_shape)
    environment = training_step.environment()
    precisions = _precisions(f.precisions, environment)
    cases = _cases(f, precisions, shape)
    with_pytorch, environment["pytorch"] = _pytorch_side(f.pytorch, environment)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = f.threads or cores
    environment["threads"] = {
        "tensorflow": f.threads or "default (every core)",
        "pytorch": threads if with_pytorch else None,
    }
    dtypes = sorted({training_step.matmul_dtype(p) for p in precisions})
    peaks = {dtype: training_step.matmul_gflops(dtype, f.matmul_size) for dtype in dtypes}
    rows = []
    for case in cases:
        rows.append(_measure(case, threads, with_pytorch, f.repeats))
        _print_case(rows[-1])
    training_step.add_peak_fractions(rows, peaks)
    environment["load_average_1min_after"] = os.getloadavg()[0]
    report = {
        "environment": environment,
        "matmul_gflops": peaks,
        "flop_counting": training_step.__doc__.split("\n\n", 1)[1].strip(),
        "results": rows,
    }
    print("\n" + training_step.markdown_table(rows) + "\n")
    print("matmul peak GFLOP/s: " + ", ".join(f"{d} {g:.0f}" for d, g in peaks.items()))
    print(_environment_line(environment))
    text = json.dumps(report, indent=2)
    if f.output:
        with open(f.output, "w", encoding="utf-8") as file:
            file.write(text + "\n")
        print(f"JSON written to {f.output}")
    else:
        print(text)


def _environment_line(environment):
    isa = [flag for flag, present in environment["cpu_isa"].items() if present]
    pytorch = environment["pytorch"]
    torch_text = (
        f"PyTorch {pytorch['version']}"
        if "version" in pytorch
        else f"PyTorch skipped: {pytorch['skipped']}"
    )
    return (
        f"{environment['cpu_model']} ({', '.join(isa) or 'no listed ISA flags'}), "
        f"{environment['cpu_cores']} cores, oneDNN {environment['onednn']}, "
        f"TensorFlow {environment['tensorflow']}, {torch_text}, load "
        f"{environment['load_average_1min']:.2f} → "
        f"{environment['load_average_1min_after']:.2f}"
    )


def run():
    """The console entry point (`keras-dpnp-bench`)."""
    cli.run(main)


if __name__ == "__main__":
    run()
