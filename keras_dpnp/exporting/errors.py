"""Why an export stopped."""


class ExportError(RuntimeError):
    """The export cannot start or cannot finish; nothing was written to the destination."""


class VerificationError(ExportError):
    """A reloaded artefact does not reproduce the Keras model's outputs."""
