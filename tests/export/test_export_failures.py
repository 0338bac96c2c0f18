"""A failed export leaves nothing behind and says why."""

import dataclasses
import os

import numpy as np
import pytest

from export_helpers import tiny_model
from keras_dpnp.exporting import FORMATS, ExportError, VerificationError, export_model, pipeline


@pytest.fixture(scope="module")
def saved_model_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("model") / "tiny.keras")
    tiny_model().save(path)
    return path


def _broken_load(artefact_format, change):
    def load(path):
        run = artefact_format.load(path)
        return lambda images: change(run(images))

    return dataclasses.replace(artefact_format, load=load)


def _perturbed(amount):
    return lambda outputs: {**outputs, "logits": outputs["logits"] + np.float32(amount)}


def _leftovers(folder):
    return [name for name in os.listdir(folder) if name.startswith(".")]


@pytest.mark.parametrize("name", ["saved_model", "onnx", "keras"])
def test_perturbed_artefact_fails_and_leaves_nothing(tmp_path, monkeypatch, name):
    monkeypatch.setitem(FORMATS, name, _broken_load(FORMATS[name], _perturbed(1e-2)))
    out = tmp_path / "export"
    with pytest.raises(
        VerificationError,
        match=rf"{name}: logits differ from the Keras model "
        r"by 0\.01 on clean probes",
    ):
        export_model(tiny_model(), str(out))
    assert os.listdir(tmp_path) == []


def test_failure_keeps_an_existing_export_untouched(tmp_path, monkeypatch):
    monkeypatch.setitem(FORMATS, "onnx", _broken_load(FORMATS["onnx"], _perturbed(1.0)))
    out = tmp_path / "export"
    out.mkdir()
    (out / "old.txt").write_text("previous export")
    with pytest.raises(VerificationError):
        export_model(tiny_model(), str(out), overwrite=True)
    assert os.listdir(out) == ["old.txt"]
    assert _leftovers(tmp_path) == []


def _with_nan(outputs):
    logits = outputs["logits"].copy()
    logits[0, 0] = np.nan
    return {**outputs, "logits": logits}


@pytest.mark.parametrize("name", ["saved_model", "onnx", "keras"])
def test_an_artefact_that_outputs_nan_fails_and_leaves_nothing(tmp_path, monkeypatch, name):
    monkeypatch.setitem(FORMATS, name, _broken_load(FORMATS[name], _with_nan))
    with pytest.raises(
        VerificationError, match=rf"^{name}: logits on clean probes hold NaN or inf$"
    ):
        export_model(tiny_model(), str(tmp_path / "export"), name)
    assert os.listdir(tmp_path) == []


def test_a_model_with_a_nan_weight_is_not_exported(tmp_path):
    model = tiny_model(head="linear")
    kernel = model.head.kernel.numpy()
    kernel[0, 0] = np.nan
    model.head.kernel.assign(kernel)
    with pytest.raises(ExportError, match=r"the Keras model's own logits on clean probes hold NaN"):
        export_model(model, str(tmp_path / "export"), "keras")
    assert os.listdir(tmp_path) == []


def test_rounding_sized_differences_pass(tmp_path, monkeypatch):
    monkeypatch.setitem(FORMATS, "onnx", _broken_load(FORMATS["onnx"], _perturbed(5e-5)))
    metadata = export_model(tiny_model(), str(tmp_path / "export"), "onnx")
    difference = metadata["verification"]["results"]["onnx"]["clean"]
    assert difference["max_abs_logits_difference"] == pytest.approx(5e-5, rel=0.05)


def test_fixed_batch_artefact_fails(tmp_path, monkeypatch):
    def only_full_batches(outputs):
        if len(outputs["logits"]) == 1:
            raise ValueError("Got invalid dimensions for input: images, index 0 Got: 1")
        return outputs

    monkeypatch.setitem(FORMATS, "onnx", _broken_load(FORMATS["onnx"], only_full_batches))
    with pytest.raises(
        VerificationError,
        match=r"onnx: the reloaded artefact failed to run on 1 "
        r"image\(s\): ValueError: Got invalid dimensions",
    ):
        export_model(tiny_model(), str(tmp_path / "export"), "onnx")
    assert os.listdir(tmp_path) == []


def test_writer_failure_leaves_nothing(tmp_path, monkeypatch):
    def failing_write(model, export_dir, options):
        open(os.path.join(export_dir, "model.onnx"), "w").close()
        raise RuntimeError("converter crashed")

    monkeypatch.setitem(FORMATS, "onnx", dataclasses.replace(FORMATS["onnx"], write=failing_write))
    with pytest.raises(ExportError, match="onnx: writing failed: RuntimeError: converter crashed"):
        export_model(tiny_model(), str(tmp_path / "export"), "keras,onnx")
    assert os.listdir(tmp_path) == []


def test_refuses_a_non_empty_out_dir_unless_overwrite(tmp_path):
    out = tmp_path / "export"
    out.mkdir()
    (out / "old.txt").write_text("previous export")
    with pytest.raises(ExportError, match="already exists and is not empty; pass --overwrite"):
        export_model(tiny_model(), str(out), "keras")
    assert os.listdir(out) == ["old.txt"]
    export_model(tiny_model(), str(out), "keras", overwrite=True)
    assert sorted(os.listdir(out)) == ["metadata.json", "model.keras"]
    assert _leftovers(tmp_path) == []


def test_accepts_an_empty_out_dir(tmp_path):
    out = tmp_path / "export"
    out.mkdir()
    export_model(tiny_model(), str(out), "keras")
    assert sorted(os.listdir(out)) == ["metadata.json", "model.keras"]


@pytest.mark.parametrize(
    "formats,message",
    [
        ("onnx,tflite", r"unknown export format 'tflite'; choose from saved_model, onnx, keras"),
        ("", r"no export format given; choose from saved_model, onnx, keras"),
    ],
)
def test_bad_format_names(tmp_path, formats, message):
    with pytest.raises(ExportError, match=message):
        export_model(tiny_model(), str(tmp_path / "export"), formats)


def test_missing_model(tmp_path):
    with pytest.raises(ExportError, match=r"model not found: .*nowhere; give a run directory"):
        export_model(str(tmp_path / "nowhere"), str(tmp_path / "export"))


def test_run_directory_without_checkpoint(tmp_path):
    with pytest.raises(ExportError, match=r"holds no best\.keras or last\.keras; give a run"):
        export_model(str(tmp_path), str(tmp_path / "export"))


def test_corrupt_model_file(tmp_path, saved_model_file):
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(open(saved_model_file, "rb").read()[:500])
    with pytest.raises(ExportError, match=r"could not load .*corrupt\.keras as a Keras model"):
        export_model(str(corrupt), str(tmp_path / "export"))
    assert not os.path.exists(tmp_path / "export")


def test_not_a_keras_file(tmp_path):
    other = tmp_path / "weights.h5"
    other.write_bytes(b"\x89HDF")
    with pytest.raises(ExportError, match=r"weights\.h5 is not a \.keras file"):
        export_model(str(other), str(tmp_path / "export"))


def test_bad_opset_and_class_names(tmp_path, saved_model_file):
    with pytest.raises(ExportError, match=r"ONNX opset must be one of \[17, 18\], got 13"):
        export_model(saved_model_file, str(tmp_path / "export"), opset=13)
    with pytest.raises(ExportError, match="3 class names given for a model with 10 classes"):
        export_model(saved_model_file, str(tmp_path / "export"), class_names=["a", "b", "c"])
    # What the command line gives for a name typed in Latin-1 (Python's surrogate escapes).
    names = ["caf\udce9"] + [str(index) for index in range(9)]
    with pytest.raises(ExportError, match=r"the class name 'caf\\\\udce9' \(given\) is not valid"):
        export_model(saved_model_file, str(tmp_path / "export"), class_names=names)
    assert os.listdir(tmp_path) == []


def test_an_unwritable_out_stops_the_export_before_any_work(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    probes, real = [], pipeline.make_probes
    monkeypatch.setattr(pipeline, "make_probes", lambda *a, **k: probes.append(1) or real(*a, **k))
    with pytest.raises(
        ExportError,
        match=rf"^cannot write to {blocker}: {blocker} is not a folder; choose another --out$",
    ):
        export_model(tiny_model(), str(blocker / "export"))
    assert probes == [] and os.listdir(tmp_path) == ["a_file"]
