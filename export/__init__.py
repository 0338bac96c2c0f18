"""The deployment kit: `python -m export` (write verified artefacts), `export.predict`
(classify images with onnxruntime alone, inputs checked by `export.inputs`) and `export.bench`
(inference speed, timed by `keras_dpnp.benchmarks.inference`).

Nothing here imports TensorFlow at package import, so `export.predict` stays TensorFlow-free.
"""
