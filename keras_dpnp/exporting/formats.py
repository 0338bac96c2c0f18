"""The artefact formats by name, and the options their writers share."""

import dataclasses
from typing import Callable

from keras_dpnp.exporting import keras_format, onnx_format, saved_model_format
from keras_dpnp.exporting.errors import ExportError


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """Settings of the writers; `summary` is the short description embedded in the ONNX file."""

    opset: int = 17
    saved_model_version: int = 1
    summary: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.opset not in onnx_format.OPSETS:
            raise ExportError(f"ONNX opset must be one of {list(onnx_format.OPSETS)}, "
                              f"got {self.opset}")
        if self.saved_model_version < 1:
            raise ExportError("the SavedModel version must be a positive integer, got "
                              f"{self.saved_model_version}")


@dataclasses.dataclass(frozen=True)
class ArtefactFormat:
    """`write(model, export_dir, options)` returns the artefact's metadata entry (with `path`,
    relative to `export_dir`); `load(path)` returns a function images -> {output: array}.
    `float32`: the artefact is written from the model's float32 copy (a serving graph)."""

    name: str
    write: Callable
    load: Callable
    float32: bool


FORMATS = {
    "saved_model": ArtefactFormat("saved_model", saved_model_format.write,
                                  saved_model_format.load, float32=True),
    "onnx": ArtefactFormat("onnx", onnx_format.write, onnx_format.load, float32=True),
    "keras": ArtefactFormat("keras", keras_format.write, keras_format.load, float32=False),
}


def parse_formats(names):
    """Format names (a list or a comma-separated string), checked and without repeats."""
    if isinstance(names, str):
        names = names.split(",")
    names = [name.strip() for name in names if name.strip()]
    if not names:
        raise ExportError(f"no export format given; choose from {', '.join(FORMATS)}")
    unknown = [name for name in names if name not in FORMATS]
    if unknown:
        raise ExportError(f"unknown export format {', '.join(map(repr, unknown))}; "
                          f"choose from {', '.join(FORMATS)}")
    return list(dict.fromkeys(names))
