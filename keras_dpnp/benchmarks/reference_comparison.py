"""Our AutoAttack beside the reference PyTorch AutoAttack (fra31/auto-attack) on the same model,
points and CPU: the robust accuracy after each stage and the stage's wall time, for both.

Ours runs here as `evaluate --autoattack_points` runs it (the same points, logits function,
seed and batch size), so its numbers are the evaluation report's. The reference runs in a
process of its own (`reference_autoattack.py`, under an interpreter of the user's choice, so
PyTorch never shares a process with TensorFlow) on the model's ONNX export, written by
`keras_dpnp.exporting` and checked there against the Keras model. Both sides are described by
the same figures: {'clean_accuracy', 'stages': [[stage, robust accuracy], ...],
'stage_seconds', 'seconds' (the whole run), 'robust' (bool per point)}.
"""

import json
import os
import subprocess
import tempfile

import keras
import numpy as np
import tensorflow as tf

from keras_dpnp import hardware
from keras_dpnp.attacks.autoattack import autoattack
from keras_dpnp.benchmarks import reference_autoattack
from keras_dpnp.evaluation.robustness import attack_logits_fn
from keras_dpnp.exporting import export_model
from keras_dpnp.exporting.formats import ONNX_FILE

STAGE_NAMES = {"apgd-ce": "APGD-CE", "apgd-t": "APGD-T", "fab-t": "FAB-T", "square": "Square"}


class ReferenceRunError(RuntimeError):
    """The reference's process failed after its probe said it could run."""


def run_ours(setup, seed, batch_size, workers=1):
    """Our standard AutoAttack on `setup`'s points, `workers` batches at once: the figures of
    the module docstring."""
    result = autoattack(
        attack_logits_fn(setup.model),
        setup.images,
        setup.labels,
        epsilon=setup.epsilon,
        norm=setup.norm,
        version="standard",
        seed=seed,
        batch_size=batch_size,
        verbose=False,
        workers=workers,
    )
    return {
        "clean_accuracy": result.clean_accuracy,
        "stages": [[name, accuracy] for name, accuracy in result.stages],
        "stage_seconds": list(result.stage_seconds),
        "seconds": result.seconds,
        "robust": np.asarray(result.robust, bool).tolist(),
    }


def _run_script(python, args):
    """The JSON line that `reference_autoattack.py ARGS` prints, run by `python`."""
    result = subprocess.run(
        [python, reference_autoattack.__file__, *args], capture_output=True, text=True, check=False
    )
    if result.returncode:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise ReferenceRunError(f"the reference AutoAttack failed under {python}: {last}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def reference_probe(python):
    """{'versions': ...} of the reference's packages under `python`, or {'unavailable': why}."""
    try:
        return _run_script(python, ["--probe"])
    except OSError as error:
        return {"unavailable": f"{python} cannot be run ({error.strerror})"}
    except (ReferenceRunError, ValueError, IndexError) as error:
        return {"unavailable": f"{python} did not answer the probe ({error})"}


def _keras_logits(setup, batch_size):
    logits_fn = attack_logits_fn(setup.model)
    return np.concatenate(
        [
            np.asarray(logits_fn(tf.constant(setup.images[start : start + batch_size])))
            for start in range(0, len(setup.images), batch_size)
        ]
    )


def run_reference(python, setup, *, seed, batch_size, threads):
    """The reference's standard AutoAttack on `setup`'s ONNX export, in its own process.

    Args:
        python: the interpreter that has torch, onnx2torch and autoattack.
        threads: PyTorch's thread count.

    Returns:
        The figures of the module docstring, plus 'max_logit_difference' (the ONNX model's
        logits against the Keras model's), 'threads' and 'versions'.
    """
    with tempfile.TemporaryDirectory() as folder:
        export_model(setup.model, os.path.join(folder, "export"), ["onnx"])
        arrays = {
            "images": setup.images,
            "labels": np.asarray(setup.labels, np.int64),
            "logits": _keras_logits(setup, batch_size),
        }
        paths = {name: os.path.join(folder, f"{name}.npy") for name in arrays}
        for name, array in arrays.items():
            np.save(paths[name], array)
        request = {
            **paths,
            "onnx": os.path.join(folder, "export", ONNX_FILE),
            "epsilon": float(setup.epsilon),
            "norm": setup.norm,
            "seed": seed,
            "batch_size": batch_size,
            "threads": threads,
        }
        return _run_script(python, [json.dumps(request)])


def _row(stage, ours, reference, ours_seconds, reference_seconds):
    """One table row; the reference's fields are None where it did not run."""
    both_timed = ours_seconds is not None and reference_seconds
    return {
        "stage": stage,
        "ours_robust_percent": 100 * ours,
        "reference_robust_percent": None if reference is None else 100 * reference,
        "gap_points": None if reference is None else round(100 * (ours - reference), 2),
        "ours_seconds": ours_seconds,
        "reference_seconds": reference_seconds,
        "time_ratio": ours_seconds / reference_seconds if both_timed else None,
    }


NOT_RUN = {"clean_accuracy": None, "stages": [], "stage_seconds": [], "seconds": None}


def comparison_rows(ours, reference=None):
    """Rows clean, each stage of ours and total (the final robust accuracy and the whole run's
    seconds); `gap_points` is ours − reference in percentage points, `time_ratio` ours /
    reference. Without `reference`, its columns are None."""
    theirs = reference or NOT_RUN
    their_stages = dict(theirs["stages"])
    their_seconds = dict(zip(their_stages, theirs["stage_seconds"], strict=True))
    rows = [_row("clean", ours["clean_accuracy"], theirs["clean_accuracy"], None, None)]
    for (stage, accuracy), seconds in zip(ours["stages"], ours["stage_seconds"], strict=True):
        rows.append(
            _row(stage, accuracy, their_stages.get(stage), seconds, their_seconds.get(stage))
        )
    final = theirs["stages"][-1][1] if theirs["stages"] else None
    rows.append(_row("total", ours["stages"][-1][1], final, ours["seconds"], theirs["seconds"]))
    return rows


def differing_verdicts(ours, reference):
    """How many points one side finds robust and the other does not."""
    return int(np.sum(np.asarray(ours["robust"]) != np.asarray(reference["robust"])))


def _cell(value, text):
    return "—" if value is None else text.format(value)


def markdown_table(rows):
    """The rows as a Markdown table, '—' where a side has no figure."""
    lines = [
        "| stage | ours robust % | reference robust % | gap (% points) | ours s | reference s "
        "| ours / reference |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        cells = [
            STAGE_NAMES.get(row["stage"], row["stage"]),
            _cell(row["ours_robust_percent"], "{:.2f}"),
            _cell(row["reference_robust_percent"], "{:.2f}"),
            _cell(row["gap_points"], "{:+.2f}"),
            _cell(row["ours_seconds"], "{:.1f}"),
            _cell(row["reference_seconds"], "{:.1f}"),
            _cell(row["time_ratio"], "{:.2f}×"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def our_versions():
    """The versions our side runs with."""
    return {"tensorflow": tf.__version__, "keras": keras.__version__, "cpu": hardware.cpu_model()}


def compare(setup, *, python, seed, batch_size, threads=0, workers=1, progress=print):
    """Runs our AutoAttack, then the reference's where `python` has it: the JSON-ready report.

    Args:
        setup: a `keras_dpnp.benchmarks.attacks.Setup` (model, points, ε, norm).
        python: the reference's interpreter; its probe runs first, and without the reference
            the report says why under 'reference_skipped'.
        seed, batch_size: both sides'.
        threads: the thread count the caller gave TensorFlow, and PyTorch's (0: TensorFlow's
            defaults, and every usable core for PyTorch).
        workers: our batches attacked at once (`autoattack`'s); the reference attacks one
            batch at a time.
        progress: called with a line before each run.
    """
    probe = reference_probe(python)
    load_before = os.getloadavg()[0]
    progress(f"our AutoAttack on {len(setup.labels)} points")
    ours = run_ours(setup, seed, batch_size, workers)
    report = {
        "setup": setup.name,
        "points": len(setup.labels),
        "epsilon": float(setup.epsilon),
        "norm": setup.norm,
        "seed": seed,
        "batch_size": batch_size,
        "tensorflow_threads": threads,  # 0: TensorFlow's defaults
        "autoattack_workers": workers,
        "ours": {**ours, "versions": our_versions()},
    }
    reference = None
    if "unavailable" in probe:
        report["reference_skipped"] = probe["unavailable"]
    else:
        progress("the reference AutoAttack on the ONNX export, in its own process")
        threads = threads or hardware.usable_cores()
        reference = run_reference(python, setup, seed=seed, batch_size=batch_size, threads=threads)
        report["reference"] = reference
        report["differing_verdicts"] = differing_verdicts(ours, reference)
    report["rows"] = comparison_rows(ours, reference)
    report["load_average_1min"] = [load_before, os.getloadavg()[0]]
    return report


def _threads_text(count):
    return f"{count} thread" + ("" if count == 1 else "s")


def _versions_line(report):
    ours = report["ours"]["versions"]
    threads = report["tensorflow_threads"]
    workers = report.get("autoattack_workers", 1)
    line = (
        f"ours: TensorFlow {ours['tensorflow']}, Keras {ours['keras']}, "
        f"{_threads_text(threads) if threads else 'default threads'}"
        + (f", {workers} batches at once" if workers > 1 else "")
    )
    if "reference" not in report:
        return line
    reference = report["reference"]
    theirs = reference["versions"]
    return (
        f"{line}; reference: autoattack {theirs['autoattack']} with PyTorch {theirs['torch']}, "
        f"onnx2torch {theirs['onnx2torch']}, {_threads_text(reference['threads'])}; its ONNX "
        f"model's logits within {reference['max_logit_difference']:.1e} of the Keras model's"
    )


def report_text(report):
    """The report for a reader: settings and versions, the table, the verdicts, the load."""
    norm = "L∞" if report["norm"] == "linf" else "L2"
    if "reference" in report:
        verdicts = (
            f"robust verdicts differ on {report['differing_verdicts']} of {report['points']} points"
        )
    else:
        verdicts = f"reference skipped: {report['reference_skipped']}"
    load_before, load_after = report["load_average_1min"]
    return "\n".join(
        [
            f"AutoAttack (standard, {norm}, ε = {report['epsilon']:.4g}, seed {report['seed']}, "
            f"batch {report['batch_size']}): {report['setup']}",
            _versions_line(report),
            "",
            markdown_table(report["rows"]),
            "",
            f"{verdicts}; load average {load_before:.2f} → {load_after:.2f} on "
            f"{report['ours']['versions']['cpu']}",
        ]
    )
