"""`python -m export.predict`: the same classes as Keras, clear errors, no TensorFlow."""

import io
import json
import os
import re
import struct
import subprocess
import sys
import zlib

import numpy as np
import onnx
import pytest
from PIL import Image

from export import predict
from export.inputs import InputError, PictureConversion, load_images
from export_helpers import tiny_model
from keras_dpnp.exporting import export_model, formats

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = tiny_model()
    out = tmp_path_factory.mktemp("exported") / "export"
    export_model(model, str(out), "onnx", class_names=NAMES)
    return model, str(out / "model.onnx")


def _run_main(capsys, onnx_path, *paths, json_output=True, options=()):
    code = predict.main(
        [f"--onnx={onnx_path}", *(["--json"] if json_output else []), *options, *map(str, paths)]
    )
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_classes_match_keras_for_float_uint8_and_png(exported, tmp_path, capsys):
    model, onnx_path = exported
    images = np.random.default_rng(3).integers(0, 256, (6, 8, 8, 1)).astype(np.uint8)
    np.save(tmp_path / "batch.npy", images)
    np.save(tmp_path / "single.npy", images[0].astype(np.float32) / 255)
    Image.fromarray(images[1, :, :, 0]).save(tmp_path / "one.png")
    code, out, err = _run_main(
        capsys, onnx_path, tmp_path / "batch.npy", tmp_path / "single.npy", tmp_path / "one.png"
    )
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]

    probabilities = np.asarray(model.predict_on_batch(images.astype(np.float32) / 255))
    probabilities = np.exp(probabilities) / np.exp(probabilities).sum(axis=1, keepdims=True)
    expected = np.argmax(probabilities, axis=1)
    got = [row["index"] for row in rows]
    assert got == list(expected) + [expected[0], expected[1]]
    assert [row["class"] for row in rows] == [NAMES[index] for index in got]
    assert rows[0]["image"].endswith("batch.npy[0]") and rows[6]["image"].endswith("single.npy")
    np.testing.assert_allclose(
        [row["probability"] for row in rows[:6]], probabilities.max(axis=1), atol=1e-5
    )


def test_table_output(exported, tmp_path, capsys):
    _, onnx_path = exported
    np.save(tmp_path / "x.npy", np.zeros((2, 8, 8, 1), np.float32))
    code, out, _ = _run_main(capsys, onnx_path, tmp_path / "x.npy", json_output=False)
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["image", "class", "probability"]
    assert len(lines) == 3 and lines[1].split()[1] in NAMES
    assert 0.0 <= float(lines[1].split()[2]) <= 1.0


def _npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


BAD_ARRAYS = {
    "rank": (
        np.zeros((8, 8), np.float32),
        r"an array of rank 2 \[8, 8\]; give one image "
        r"\[H, W, C\] or a batch \[N, H, W, C\]; add a channel",
    ),
    "channels": (
        np.zeros((2, 8, 8, 3), np.float32),
        r"images have 3 channel\(s\), the model "
        r"takes 1",
    ),
    "size": (
        np.zeros((2, 16, 16, 1), np.float32),
        r"images are 16×16, the model takes 8×8; "
        r"resize them first",
    ),
    "dtype": (
        np.zeros((2, 8, 8, 1), np.int64),
        r"dtype int64 is not supported; give float32 in "
        r"\[0, 1\] or uint8 in \[0, 255\]",
    ),
    "range": (
        np.full((2, 8, 8, 1), 255.0, np.float32),
        r"values span \[255, 255\], the model "
        r"takes \[0, 1\]; divide 0\.\.255",
    ),
    "nan": (np.full((1, 8, 8, 1), np.nan, np.float32), r"contains NaN or infinite values"),
    "empty": (np.zeros((0, 8, 8, 1), np.float32), r"holds no images"),
}


@pytest.mark.parametrize("case", sorted(BAD_ARRAYS))
def test_bad_arrays_get_one_line_errors(exported, tmp_path, capsys, case):
    array, message = BAD_ARRAYS[case]
    np.save(tmp_path / "bad.npy", array)
    code, out, err = _run_main(capsys, exported[1], tmp_path / "bad.npy")
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(f"error: {tmp_path / 'bad.npy'}: ")
    assert re.search(message, err), err


@pytest.mark.parametrize(
    "write,message",
    [
        (
            lambda path: Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path / "x.png"),
            r"x\.png: the image is RGB \(3 channels\), the model takes grayscale \(1 "
            r"channel\); pass --grayscale to convert it",
        ),
        (
            lambda path: Image.fromarray(np.zeros((9, 8), np.uint8)).save(path / "x.png"),
            r"x\.png: images are 9×8, the model takes 8×8; resize them first \(pictures: "
            r"pass --resize\)",
        ),
        (lambda path: (path / "x.png").write_bytes(b"not a png"), r"x\.png: cannot read the image"),
        (lambda path: (path / "x.txt").write_text("1 2 3"), r"x\.txt: unsupported file type \.txt"),
        (lambda path: (path / "x.npy").write_bytes(b"garbage"), r"x\.npy: not a \.npy file"),
        (
            lambda path: np.save(path / "x.npy", np.array([{"a": 1}]), allow_pickle=True),
            r"x\.npy: holds Python objects, which are never unpickled",
        ),
        (
            lambda path: (path / "x.npy").write_bytes(_npy_bytes(np.zeros((4, 8, 8, 1)))[:-100]),
            r"x\.npy: cannot read the array \(.*\); the file may be truncated",
        ),
        (lambda path: None, r"x\.npy: no such file"),
    ],
    ids=[
        "rgb_png",
        "png_size",
        "bad_png",
        "txt",
        "bad_npy",
        "pickled_npy",
        "truncated_npy",
        "missing",
    ],
)
def test_bad_files_get_one_line_errors(exported, tmp_path, capsys, write, message):
    write(tmp_path)
    name = next(iter(os.listdir(tmp_path)), "x.npy")
    code, _, err = _run_main(capsys, exported[1], tmp_path / name)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert re.search(message, err), err


def test_resize_and_grayscale_predict_what_preprocessing_by_hand_gives(exported, tmp_path, capsys):
    photo = np.random.default_rng(5).integers(0, 256, (20, 14, 3)).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    by_hand = Image.fromarray(photo).convert("L").resize((8, 8), Image.Resampling.BILINEAR)
    np.save(tmp_path / "by_hand.npy", np.asarray(by_hand)[..., np.newaxis])
    code, out, err = _run_main(
        capsys,
        exported[1],
        tmp_path / "photo.png",
        tmp_path / "by_hand.npy",
        options=["--resize", "--grayscale"],
    )
    assert code == 0, err
    converted, hand_made = [json.loads(line) for line in out.splitlines()]
    assert converted["index"] == hand_made["index"]
    assert converted["probability"] == hand_made["probability"]


def test_rgb_converts_a_grayscale_picture_for_a_colour_model(tmp_path):
    gray = np.random.default_rng(6).integers(0, 256, (8, 8)).astype(np.uint8)
    Image.fromarray(gray).save(tmp_path / "scan.png")
    with pytest.raises(InputError, match=r"pictures: pass --rgb or --grayscale"):
        load_images(str(tmp_path / "scan.png"), (8, 8, 3))
    _, images = load_images(str(tmp_path / "scan.png"), (8, 8, 3), PictureConversion(mode="RGB"))
    assert images.shape == (1, 8, 8, 3)
    for channel in range(3):
        np.testing.assert_array_equal(images[0, :, :, channel], gray / np.float32(255))


def _png_claiming(path, width, height):
    """A real 1×1 PNG whose header is rewritten to claim `width`×`height` pixels."""
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    # IHDR follows the 8-byte signature: length (4), type (4), width (4), height (4), ... CRC.
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


def _npy_claiming(path, shape):
    """A .npy file whose header claims a float32 array of `shape`, followed by 64 bytes."""
    with open(path, "wb") as f:
        header = {"descr": "<f4", "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(f, header)
        f.write(bytes(64))


@pytest.mark.parametrize(
    "write,message",
    [
        (
            lambda path: _npy_claiming(path / "x.npy", (2**20, 1024, 1024, 1)),
            r"x\.npy: the header claims an array of \[1048576, 1024, 1024, 1\] "
            r"\(1,099,511,627,776 values\), over the predictor's limit of 268,435,456; split it",
        ),
        (
            lambda path: _npy_claiming(path / "x.npy", (100, 8, 8, 1)),
            r"x\.npy: cannot read the array \(the header claims \[100, 8, 8, 1\] float32, "
            r"25,600 bytes; the file holds 64\); the file may be truncated",
        ),
        (
            lambda path: _png_claiming(path / "x.png", 100_000, 100_000),
            r"x\.png: Image size \(10000000000 pixels\) exceeds limit .*; the model takes 8×8",
        ),
        (
            lambda path: _png_claiming(path / "x.png", 9000, 9000),
            r"x\.png: images are 9000×9000, the model takes 8×8; resize them first",
        ),
    ],
    ids=["npy_billions", "npy_short", "png_bomb", "png_large"],
)
def test_sizes_claimed_by_a_header_are_checked_before_decoding(
    exported, tmp_path, capsys, write, message
):
    write(tmp_path)
    [name] = os.listdir(tmp_path)
    code, out, err = _run_main(capsys, exported[1], tmp_path / name)
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert re.search(message, err), err


def test_bad_model_files(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((1, 8, 8, 1), np.float32))
    code, _, err = _run_main(capsys, tmp_path / "missing.onnx", tmp_path / "x.npy")
    assert code == 1 and "missing.onnx: no such ONNX file" in err
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    code, _, err = _run_main(capsys, tmp_path / "bad.onnx", tmp_path / "x.npy")
    assert code == 1 and "bad.onnx: onnxruntime cannot load it" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "summary,message",
    [
        ("{broken", r"its keras_dpnp metadata is not valid JSON \(Expecting"),
        ('{"class_names": ["a", "b"]}', r"its keras_dpnp metadata does not list 10 class names"),
        (
            '{"class_names": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}',
            r"its keras_dpnp metadata does not list 10 class names as strings",
        ),
    ],
    ids=["not_json", "too_few", "not_strings"],
)
def test_malformed_onnx_metadata_is_one_line_naming_the_file(
    exported, tmp_path, capsys, summary, message
):
    model = onnx.load(exported[1])
    for entry in model.metadata_props:
        if entry.key == predict.SUMMARY_KEY:
            entry.value = summary
    broken = tmp_path / "broken.onnx"
    onnx.save(model, str(broken))
    np.save(tmp_path / "x.npy", np.zeros((1, 8, 8, 1), np.float32))
    code, out, err = _run_main(capsys, broken, tmp_path / "x.npy")
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert re.search(rf"^error: {re.escape(str(broken))}: {message}", err), err


def test_summary_key_matches_the_exporter():
    assert predict.SUMMARY_KEY == formats.SUMMARY_KEY


def test_command_line_never_imports_tensorflow(exported, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((3, 8, 8, 1), np.uint8))
    child = (
        "import json, runpy, sys\n"
        f"sys.argv = ['predict', '--onnx={exported[1]}', '{tmp_path / 'x.npy'}']\n"
        "try:\n"
        "    runpy.run_module('export.predict', run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    code = exit.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "               ('tensorflow', 'keras', 'tf2onnx', 'keras_dpnp', 'jax', 'torch'))\n"
        "print(json.dumps({'code': code, 'heavy': heavy}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", child], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"code": 0, "heavy": []}
    assert "x.npy[2]" in result.stdout
