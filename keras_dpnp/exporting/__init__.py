"""Export a trained model as verified SavedModel, ONNX and `.keras` artefacts with metadata."""

from keras_dpnp.exporting.errors import ExportError, VerificationError
from keras_dpnp.exporting.formats import FORMATS, ExportOptions, parse_formats
from keras_dpnp.exporting.pipeline import METADATA_NAME, export_model, load_for_export
from keras_dpnp.exporting.verification import TOLERANCE

__all__ = [
    "ExportError",
    "ExportOptions",
    "FORMATS",
    "METADATA_NAME",
    "TOLERANCE",
    "VerificationError",
    "export_model",
    "load_for_export",
    "parse_formats",
]
