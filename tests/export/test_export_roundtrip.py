"""Every backbone and head, exported to all three formats, reloads and matches Keras."""

import json
import os

import keras
import numpy as np
import onnx
import onnxruntime
import pytest
import tensorflow as tf

from export_helpers import (
    BACKBONE_OPTIONS,
    HEADS,
    fresh_inputs,
    reload_keras,
    reload_onnx,
    reload_saved_model,
    tiny_model,
)
from keras_dpnp.exporting import export_model
from keras_dpnp.exporting.serving import float32_copy

# Each backbone and each head at least once by default; the rest of the grid is slow.
FAST_CASES = [
    ("small_cnn", "prototype_dot", (8, 8, 1)),
    ("small_cnn", "prototype_cosine", (8, 8, 1)),
    ("small_cnn", "linear", (8, 8, 1)),
    ("wide_resnet34_10", "linear", (16, 16, 3)),
]
SLOW_CASES = [
    pytest.param(backbone, head, (16, 16, 3), marks=pytest.mark.slow)
    for backbone in BACKBONE_OPTIONS
    if backbone != "small_cnn"
    for head in HEADS
    if (backbone, head, (16, 16, 3)) not in FAST_CASES
]
TOLERANCE = 1e-4


@pytest.mark.parametrize("backbone,head,image_shape", FAST_CASES + SLOW_CASES)
def test_every_format_reloads_and_matches_keras(tmp_path, backbone, head, image_shape):
    model = tiny_model(backbone, head, image_shape)
    out = str(tmp_path / "export")
    metadata = export_model(model, out)

    inputs = fresh_inputs(model)
    reloads = {
        "saved_model": reload_saved_model(out),
        "onnx": reload_onnx(out),
        "keras": reload_keras(out),
    }
    for kind, images in inputs.items():
        expected = np.asarray(model(images, training=False))
        for name, run in reloads.items():
            for batch in (images, images[:1]):
                got = run(batch)
                np.testing.assert_allclose(
                    got["logits"],
                    expected[: len(batch)],
                    rtol=0,
                    atol=TOLERANCE,
                    err_msg=f"{name} {kind}",
                )
                if "probabilities" in got:
                    np.testing.assert_allclose(
                        got["probabilities"],
                        keras.ops.softmax(expected[: len(batch)]),
                        rtol=0,
                        atol=TOLERANCE,
                    )
    for name in reloads:
        for kind in ("clean", "adversarial"):
            result = metadata["verification"]["results"][name][kind]
            assert result["max_abs_logits_difference"] <= TOLERANCE
    assert metadata["model"]["backbone"] == backbone
    assert metadata["input"]["shape"] == [None, *image_shape]


def test_layout_signature_and_metadata(tmp_path):
    model = tiny_model()
    out = tmp_path / "export"
    export_model(model, str(out), class_names=list("abcdefghij"))

    assert sorted(os.listdir(out)) == ["metadata.json", "model.keras", "model.onnx", "saved_model"]
    assert os.path.isfile(out / "saved_model" / "1" / "saved_model.pb")
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["class_names"] == list("abcdefghij")
    assert metadata["input"]["range"] == [0.0, 1.0]
    assert metadata["training"]["method"] == "adv_dpnp"
    assert metadata["training"]["epsilon"] == pytest.approx(0.1)
    assert metadata["verification"]["probes"]["attack"]["epsilon"] == pytest.approx(0.1)
    assert {"tensorflow", "keras", "onnx", "onnxruntime", "tf2onnx"} <= set(metadata["versions"])

    proto = onnx.load(str(out / "model.onnx"))
    opsets = {entry.domain: entry.version for entry in proto.opset_import}
    assert opsets[""] >= 17
    assert [value.name for value in proto.graph.input] == ["images"]
    assert [value.name for value in proto.graph.output] == ["logits", "probabilities"]
    for value in list(proto.graph.input) + list(proto.graph.output):
        assert value.type.tensor_type.shape.dim[0].dim_param == "batch"

    signature = reload_saved_model(str(out))
    outputs = signature(np.zeros((3, 8, 8, 1), np.float32))
    assert {name: value.shape for name, value in outputs.items()} == {
        "logits": (3, 10),
        "probabilities": (3, 10),
    }


def test_saved_model_version_folder(tmp_path):
    out = str(tmp_path / "export")
    metadata = export_model(tiny_model(), out, "saved_model", saved_model_version=3)
    assert metadata["artefacts"]["saved_model"]["path"] == os.path.join("saved_model", "3")
    assert sorted(os.listdir(out)) == ["metadata.json", "saved_model"]
    assert reload_saved_model(out, version=3)(np.ones((2, 8, 8, 1), np.float32))[
        "logits"
    ].shape == (2, 10)


def test_exported_keras_file_continues_fit(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((32, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 10, 32)
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    out = str(tmp_path / "export")
    export_model(model, out, ["keras"])

    reloaded = keras.saving.load_model(os.path.join(out, "model.keras"))
    assert int(reloaded.optimizer.iterations) == 2
    before = np.array(reloaded.head.prototypes)
    history = reloaded.fit(x, y, batch_size=16, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])
    assert int(reloaded.optimizer.iterations) == 4
    assert not np.array_equal(np.array(reloaded.head.prototypes), before)


@pytest.fixture
def mixed_bfloat16():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    yield
    keras.config.set_dtype_policy(previous)


def test_mixed_precision_model_serves_in_float32(tmp_path, mixed_bfloat16):
    model = tiny_model()
    keras.config.set_dtype_policy("float32")
    out = str(tmp_path / "export")
    metadata = export_model(model, out)
    assert metadata["precision"]["model_compute_dtypes"] == ["bfloat16", "float32"]

    images = fresh_inputs(model)["clean"]
    float32_logits = np.asarray(float32_copy(model)(images))
    onnx_logits = reload_onnx(out)(images)["logits"]
    np.testing.assert_allclose(onnx_logits, float32_logits, rtol=0, atol=TOLERANCE)
    assert np.max(np.abs(np.asarray(model(images)) - float32_logits)) > 10 * TOLERANCE
    reloaded = keras.saving.load_model(os.path.join(out, "model.keras"))
    assert reloaded.backbone.get_layer("conv1").dtype_policy.name == "mixed_bfloat16"


def test_artefacts_refuse_uint8_images_by_dtype(tmp_path):
    out = str(tmp_path / "export")
    export_model(tiny_model(), out, "saved_model,onnx")
    images = np.full((2, 8, 8, 1), 200, np.uint8)
    with pytest.raises(
        (TypeError, ValueError, tf.errors.InvalidArgumentError), match="uint8|float"
    ):
        reload_saved_model(out)(images)
    with pytest.raises(
        onnxruntime.capi.onnxruntime_pybind11_state.InvalidArgument,
        match=r"Actual: \(tensor\(uint8\)\).*expected: \(tensor\(float\)\)",
    ):
        reload_onnx(out)(images)
