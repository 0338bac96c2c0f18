"""Classify images with an exported ONNX model, using onnxruntime and numpy only.

    python -m export.predict --onnx=exports/digits_adv_dpnp/model.onnx digit.png more.npy

Each `.npy` holds one image [H, W, C] or a batch [N, H, W, C], float32 in [0, 1] or uint8
in [0, 255] (divided by 255); pictures (.png, .jpg, ...) need Pillow and are read as uint8.
Images must have the model's size and channels, else they are refused; pictures can instead
be converted: --resize (bilinear, antialiased, to the model's height × width, the aspect ratio
not kept) and --grayscale or --rgb. Prints one line per image: its predicted class name and
probability (`--json`: one JSON object per line). Exit status 1 with a one-line error for an
input that does not fit or a model that cannot be loaded.
"""

import argparse
import json
import os
import sys

import numpy as np
import onnxruntime

from export.inputs import InputError, PictureConversion, load_images

INPUT_NAME = "images"
OUTPUT_NAME = "probabilities"
# Key of the JSON summary the exporter stores in the ONNX metadata_props.
SUMMARY_KEY = "keras_dpnp"


def _class_names(session, onnx_path):
    """The class names the exporter stored in the ONNX metadata, else the indices; `InputError`
    for metadata that is not what the exporter writes."""
    classes = session.get_outputs()[0].shape[-1]
    text = session.get_modelmeta().custom_metadata_map.get(SUMMARY_KEY, "{}")
    try:
        summary = json.loads(text)
    except ValueError as error:
        raise InputError(
            f"{onnx_path}: its {SUMMARY_KEY} metadata is not valid JSON ({error}); "
            f"export the model again with python -m export"
        ) from error
    names = summary.get("class_names") if isinstance(summary, dict) else None
    if not names:
        return [str(index) for index in range(classes)]
    if not (
        isinstance(names, list)
        and all(isinstance(name, str) for name in names)
        and len(names) == classes
    ):
        raise InputError(
            f"{onnx_path}: its {SUMMARY_KEY} metadata does not list {classes} class names "
            f"as strings; export the model again with python -m export"
        )
    return names


class Predictor:
    """An onnxruntime session over an exported model plus its class names and image shape."""

    def __init__(self, onnx_path):
        if not os.path.isfile(onnx_path):
            raise InputError(f"{onnx_path}: no such ONNX file; export one with python -m export")
        try:
            self.session = onnxruntime.InferenceSession(
                onnx_path, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own types
            raise InputError(
                f"{onnx_path}: onnxruntime cannot load it ({str(error).strip().splitlines()[0]})"
            ) from error
        inputs = {value.name: value for value in self.session.get_inputs()}
        outputs = {value.name for value in self.session.get_outputs()}
        if INPUT_NAME not in inputs or OUTPUT_NAME not in outputs:
            raise InputError(
                f"{onnx_path}: expected an input '{INPUT_NAME}' and an output "
                f"'{OUTPUT_NAME}'; export the model with python -m export"
            )
        self.image_shape = tuple(int(size) for size in inputs[INPUT_NAME].shape[1:])
        self.class_names = _class_names(self.session, onnx_path)

    def probabilities(self, images, batch_size=256):
        """Class probabilities [N, K] for float32 images [N, H, W, C] in [0, 1]."""
        chunks = [
            self.session.run([OUTPUT_NAME], {INPUT_NAME: images[start : start + batch_size]})[0]
            for start in range(0, len(images), batch_size)
        ]
        return np.concatenate(chunks)


def predict_files(predictor, paths, conversion=None):
    """(image name, class index, class name, probability) for every image in `paths`;
    pictures are converted as the `PictureConversion` says first."""
    loaded = [load_images(path, predictor.image_shape, conversion) for path in paths]
    rows = []
    for names, images in loaded:
        probabilities = predictor.probabilities(images)
        for name, row in zip(names, probabilities):
            index = int(np.argmax(row))
            rows.append((name, index, predictor.class_names[index], float(row[index])))
    return rows


def format_rows(rows, as_json=False):
    if as_json:
        return "\n".join(
            json.dumps({"image": name, "class": label, "index": index, "probability": probability})
            for name, index, label, probability in rows
        )
    width = max(len("image"), *(len(row[0]) for row in rows))
    lines = [f"{'image':<{width}}  class  probability"]
    lines += [
        f"{name:<{width}}  {label:<5}  {probability:.4f}" for name, _, label, probability in rows
    ]
    return "\n".join(lines)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m export.predict",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--onnx", required=True, help="model.onnx written by python -m export")
    parser.add_argument("--json", action="store_true", help="one JSON object per image")
    parser.add_argument(
        "--resize",
        action="store_true",
        help="resize pictures to the model's height × width (bilinear, antialiased)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--grayscale", action="store_true", help="convert pictures to grayscale")
    mode.add_argument("--rgb", action="store_true", help="convert pictures to RGB")
    parser.add_argument("images", nargs="+", help=".npy arrays or pictures")
    return parser.parse_args(argv)


def picture_conversion(args, image_shape):
    """The `PictureConversion` the flags ask for, for a model taking `image_shape`."""
    mode = "L" if args.grayscale else "RGB" if args.rgb else None
    return PictureConversion(mode=mode, size=tuple(image_shape[:2]) if args.resize else None)


def main(argv=None):
    args = parse_args(argv)
    try:
        predictor = Predictor(args.onnx)
        conversion = picture_conversion(args, predictor.image_shape)
        rows = predict_files(predictor, args.images, conversion)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(format_rows(rows, args.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
