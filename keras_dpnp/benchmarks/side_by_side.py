"""A bench run: each training-step case timed in its own process, each repeat followed by the
same step in PyTorch when it is installed, with the machine it ran on.

`run_benchmark` is what `python -m keras_dpnp.bench` calls; the cases and their timing are
`keras_dpnp.benchmarks.training_step`, the PyTorch steps `keras_dpnp.benchmarks.torch_steps`.
"""

import concurrent.futures
import multiprocessing
import os
import statistics

from keras_dpnp import hardware
from keras_dpnp.benchmarks import training_step


def resolve_precisions(requested, environment):
    """The precisions to measure, `auto` resolved, each once (default: float32 and auto, plus
    mixed_float16 where there is a GPU). Raises ValueError for an unknown name."""
    from keras_dpnp.training import distribute

    names = requested or ["float32", "auto"] + (["mixed_float16"] if environment["gpus"] else [])
    resolved = [distribute.resolve_precision(name)[0] for name in names]
    return list(dict.fromkeys(resolved))


def pytorch_side(enabled, environment):
    """(whether to run PyTorch's steps, the report's note on it)."""
    if not enabled:
        return False, {"skipped": "--nopytorch"}
    if environment["gpus"]:
        return False, {"skipped": "the PyTorch steps run on the CPU only"}
    probe = training_step.pytorch_probe()
    if "unavailable" in probe:
        return False, {"skipped": probe["unavailable"]}
    return True, {"version": probe["version"]}


def _run_isolated(case):
    """`run_case` in a fresh process: its own peak memory, dtype policy and thread pools."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(training_step.run_case, case).result()


def measure(case, threads, with_pytorch, repeats):
    """One result row: the median of `repeats` runs of ours, each followed by PyTorch's."""
    ours, theirs = [], []
    for _ in range(repeats):
        ours.append(_run_isolated(case))
        if with_pytorch and case.step in training_step.PYTORCH_STEPS:
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


def case_line(row):
    """One progress line for a measured row."""
    torch_row = row.get("pytorch")
    theirs = (
        f", PyTorch {torch_row['images_per_second']:.1f} ({torch_row['ratio']:.2f}×; "
        f"CPU time {torch_row['cpu_time_ratio']:.2f}×)"
        if torch_row
        else ""
    )
    return (
        f"measured {row['backbone']} {row['precision']} {row['step']}: "
        f"{row['images_per_second']:.1f} img/s{theirs}"
    )


def _thread_counts(threads, with_pytorch):
    """(PyTorch's thread count, the report's note): PyTorch gets TensorFlow's or every core."""
    count = threads or hardware.usable_cores()
    note = {
        "tensorflow": threads or "default (every core)",
        "pytorch": count if with_pytorch else None,
    }
    return count, note


def run_benchmark(
    cases, *, environment, threads=0, pytorch=True, repeats=1, matmul_size=4096, progress=print
):
    """Times every case (and its PyTorch twin) and returns the JSON-ready report.

    Args:
        cases: `training_step.Case`s; environment: `training_step.environment()`.
        threads: both frameworks' thread count (0: TensorFlow's defaults, every core).
        pytorch: also time the PyTorch steps where PyTorch is installed.
        repeats: measurements per case; rows hold the medians.
        matmul_size: side of the square matmul timed for the peak GFLOP/s.
        progress: called with one line per measured case.
    """
    environment = dict(environment)
    with_pytorch, environment["pytorch"] = pytorch_side(pytorch, environment)
    torch_threads, environment["threads"] = _thread_counts(threads, with_pytorch)
    dtypes = sorted({training_step.matmul_dtype(case.precision) for case in cases})
    peaks = {dtype: training_step.matmul_gflops(dtype, matmul_size) for dtype in dtypes}
    rows = []
    for case in cases:
        rows.append(measure(case, torch_threads, with_pytorch, repeats))
        progress(case_line(rows[-1]))
    training_step.add_peak_fractions(rows, peaks)
    environment["load_average_1min_after"] = os.getloadavg()[0]
    return {
        "environment": environment,
        "matmul_gflops": peaks,
        "flop_counting": training_step.__doc__.split("\n\n", 1)[1].strip(),
        "results": rows,
    }


def environment_line(environment):
    """The machine in one line: CPU and ISA, cores, oneDNN, versions, load before and after."""
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
