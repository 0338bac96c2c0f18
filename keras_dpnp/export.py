"""Export a trained model, verified, for serving.

    python -m export --model=runs/digits_adv_dpnp --out=exports/digits_adv_dpnp

(also `python -m keras_dpnp.export` or, installed, `keras-dpnp-export`.)

`--model` is a .keras file or a run directory (its best.keras, else last.keras; `--checkpoint=last`
picks last.keras), whose config.json, results.json and robustness.json go into metadata.json.
`--out` receives saved_model/<version>/ (TF Serving layout), model.onnx, model.keras and
metadata.json, all at once and only after every artefact reproduced the Keras model's logits
on clean and PGD inputs; otherwise nothing is written and the exit status is 1.
"""

from absl import flags, logging

from keras_dpnp import cli

flags.DEFINE_string("model", None, "Run directory (best.keras or last.keras) or .keras file.")
flags.DEFINE_string("out", None, "Export folder; must be absent or empty unless --overwrite.")
flags.DEFINE_enum(
    "checkpoint",
    "best",
    ["best", "last"],
    "Checkpoint of a run directory: best (best.keras, the epoch of best validation "
    "accuracy; last.keras if there is none) or last.",
)
flags.DEFINE_list(
    "formats", ["saved_model", "onnx", "keras"], "Artefacts to write: saved_model, onnx, keras."
)
flags.DEFINE_bool("overwrite", False, "Replace a non-empty --out folder.")
flags.DEFINE_list(
    "class_names",
    None,
    "Class names, comma-separated; default: the run's dataset's, else the indices.",
)
flags.DEFINE_integer("opset", 17, "ONNX opset (17 or 18).")
flags.DEFINE_integer(
    "saved_model_version", 1, "Version folder of the SavedModel (TF Serving).", lower_bound=1
)
flags.mark_flags_as_required(["model", "out"])
HELP_GROUPS = (
    ("model", ("model", "checkpoint", "class_names")),
    ("output", ("out", "formats", "overwrite", "opset", "saved_model_version")),
)

FLAGS = flags.FLAGS


def report(metadata, out_dir):
    """A short Markdown summary of the written artefacts and their parity checks."""
    verification = metadata["verification"]
    attack = verification["probes"]["attack"]
    epoch = f" (epoch {metadata['checkpoint_epoch']})" if metadata.get("checkpoint_epoch") else ""
    lines = [
        f"exported {metadata['checkpoint'] or metadata['source']}{epoch} -> {out_dir} (classes: "
        f"{', '.join(metadata['class_names'])})",
        f"verified on {verification['probes']['clean']} and their PGD-{attack['steps']} "
        f"examples (L∞ ε = {attack['epsilon']:.4g}); max |Δ| vs Keras:",
        "| artefact | path | logits, clean | logits, adversarial | probabilities |",
        "|---|---|---|---|---|",
    ]
    for name, entry in metadata["artefacts"].items():
        result = verification["results"][name]
        clean, adversarial = result["clean"], result["adversarial"]
        probabilities = [
            r["max_abs_probabilities_difference"]
            for r in (clean, adversarial)
            if "max_abs_probabilities_difference" in r
        ]
        lines.append(
            f"| {name} | {entry['path']} | {clean['max_abs_logits_difference']:.2g} | "
            f"{adversarial['max_abs_logits_difference']:.2g} | "
            f"{f'{max(probabilities):.2g}' if probabilities else 'n/a'} |"
        )
    return "\n".join(lines)


def main(argv):
    if len(argv) > 1:
        cli.fail(f"unexpected arguments {argv[1:]}; every option is a --flag")
    if not FLAGS["verbosity"].present:
        # TensorFlow logs every file it writes at INFO; the summary below says what matters.
        logging.set_verbosity(logging.WARNING)
    from keras_dpnp.exporting import ExportError, export_model

    try:
        metadata = export_model(
            FLAGS.model,
            FLAGS.out,
            FLAGS.formats,
            checkpoint=FLAGS.checkpoint,
            overwrite=FLAGS.overwrite,
            class_names=FLAGS.class_names,
            opset=FLAGS.opset,
            saved_model_version=FLAGS.saved_model_version,
        )
    except ExportError as error:
        cli.fail(f"{error}; {FLAGS.out} was left unchanged")
    print(report(metadata, FLAGS.out))


def run():
    """The console entry point (`keras-dpnp-export`)."""
    cli.run(main, HELP_GROUPS)


if __name__ == "__main__":
    run()
