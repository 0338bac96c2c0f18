"""Speed measurements, one module each: `training_step` (images/s of training steps,
`python -m keras_dpnp.bench`), `attacks` (our PGD against cleverhans's and AutoAttack's wall
time, `python -m keras_dpnp.bench_attacks`), `reference_comparison` (our AutoAttack beside the
reference PyTorch one, `python -m keras_dpnp.bench_attacks --reference`) and `inference`
(Keras, SavedModel and onnxruntime on an export, `python -m export.bench`)."""
