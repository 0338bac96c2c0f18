"""The deployment kit: `python -m export` (write verified artefacts), `export.predict`
(classify images with onnxruntime alone) and `export.bench` (inference speed).

Nothing here imports TensorFlow at package import, so `export.predict` stays TensorFlow-free.
"""
