"""Inference speed of one model as Keras, SavedModel and onnxruntime.

    python -m export.bench --model=exports/digits_adv_dpnp --output=bench_digits.json

`--model` is an export folder written by `python -m export`, or a run directory / .keras file
(exported, with verification, to a temporary folder first). Every backend gets the same random
float32 images; each (backend, batch size) cell runs for `--seconds` after warm-up calls
(`keras_dpnp.benchmarks.inference`).
Prints a Markdown table; writes the figures as JSON to `--output` (else prints them).
"""

import json
import os
import tempfile

# keras_dpnp first: its start-up settings (keras_dpnp.startup) must precede TensorFlow's loading.
import keras_dpnp  # noqa: F401

# isort: split
import tensorflow as tf
from absl import app, flags, logging

from keras_dpnp import cli
from keras_dpnp.benchmarks.inference import format_table, run_benchmark
from keras_dpnp.exporting import ExportError, export_model
from keras_dpnp.files import write_text

flags.DEFINE_string("model", None, "Export folder, run directory or .keras file.")
flags.DEFINE_list("batch_sizes", ["1", "128"], "Batch sizes to time.")
cli.define_number("seconds", 3.0, "Timed seconds per backend and batch size.", lower_bound=0.0)
flags.DEFINE_integer("warmup", 3, "Untimed calls before each timing.", lower_bound=1)
flags.DEFINE_integer(
    "threads", 0, "Intra-op threads of every backend; 0: the backend default.", lower_bound=0
)
flags.DEFINE_string("output", "", "JSON file for the figures; empty: print them.")
flags.mark_flag_as_required("model")

FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        cli.fail(f"unexpected arguments {argv[1:]}; every option is a --flag")
    try:
        batch_sizes = [int(size) for size in FLAGS.batch_sizes]
    except ValueError:
        cli.fail(f"--batch_sizes must be positive integers, got {','.join(FLAGS.batch_sizes)}")
    if not batch_sizes or min(batch_sizes) < 1:
        cli.fail(f"--batch_sizes must be positive integers, got {','.join(FLAGS.batch_sizes)}")
    if not FLAGS["verbosity"].present:
        # TensorFlow logs every file a temporary export writes at INFO.
        logging.set_verbosity(logging.WARNING)
    if FLAGS.threads:
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    with tempfile.TemporaryDirectory() as scratch:
        export_dir = FLAGS.model
        if not os.path.isfile(os.path.join(export_dir, "metadata.json")):
            export_dir = os.path.join(scratch, "export")
            try:
                export_model(FLAGS.model, export_dir)
            except ExportError as error:
                cli.fail(str(error))
        try:
            report = run_benchmark(
                export_dir, batch_sizes, FLAGS.seconds, FLAGS.warmup, FLAGS.threads
            )
        except ExportError as error:
            cli.fail(str(error))
    print(format_table(report))
    text = json.dumps(report, indent=2) + "\n"
    if FLAGS.output:
        write_text(FLAGS.output, text)
        print(f"figures written to {FLAGS.output}")
    else:
        print(text)


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags_or_exit)
