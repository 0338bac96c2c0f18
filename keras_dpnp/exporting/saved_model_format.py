"""SavedModel in TF Serving's layout (`saved_model/<version>/`), signature `serving_default`."""

import os

import keras
import tensorflow as tf

from keras_dpnp.exporting.serving import INPUT_NAME, input_signature, serving_outputs

SIGNATURE = "serving_default"


def write(model, export_dir, options):
    """Writes the SavedModel under `export_dir`; returns its metadata entry."""
    relative = os.path.join("saved_model", str(options.saved_model_version))
    def serve(images):
        return serving_outputs(model, images)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SIGNATURE, serve, input_signature=input_signature(model))
    archive.write_out(os.path.join(export_dir, relative), verbose=False)
    return {"path": relative, "signature": SIGNATURE, "input": INPUT_NAME,
            "outputs": ["logits", "probabilities"]}


def load(path):
    """A function from float32 images to the reloaded signature's outputs (numpy)."""
    loaded = tf.saved_model.load(path)

    def run(images):
        outputs = loaded.signatures[SIGNATURE](**{INPUT_NAME: tf.constant(images)})
        return {name: value.numpy() for name, value in outputs.items()}

    return run
