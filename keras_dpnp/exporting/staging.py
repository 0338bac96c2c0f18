"""An export folder that appears complete or not at all."""

import contextlib
import os
import shutil
import tempfile

from keras_dpnp.exporting.errors import ExportError
from keras_dpnp.files import UnwritableError, check_writable


def check_destination(destination, overwrite):
    """Raises `ExportError` unless `destination` is absent, empty, or may be overwritten, and
    the folder it is staged in (beside it) is writable."""
    if os.path.exists(destination) and not os.path.isdir(destination):
        raise ExportError(f"{destination} exists and is not a folder; choose another --out")
    if os.path.isdir(destination) and os.listdir(destination) and not overwrite:
        raise ExportError(
            f"{destination} already exists and is not empty; pass --overwrite "
            f"to replace it, or choose another --out"
        )
    try:
        check_writable(os.path.dirname(os.path.abspath(destination)))
    except UnwritableError as error:
        raise ExportError(f"{error}; choose another --out") from error


def _new_folder(parent, prefix):
    folder = tempfile.mkdtemp(prefix=prefix, dir=parent)
    # mkdtemp makes the folder private (0700); the export must be readable like any folder
    # created here (e.g. by a TF Serving container running as another user).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    return folder


def _place(staging, destination):
    if not os.path.isdir(destination) or not os.listdir(destination):
        os.replace(staging, destination)
        return
    parent, base = os.path.split(os.path.abspath(destination))
    previous = tempfile.mkdtemp(prefix=f".{base}.previous-", dir=parent)
    os.replace(destination, previous)
    try:
        os.replace(staging, destination)
    except BaseException:
        os.replace(previous, destination)
        raise
    shutil.rmtree(previous, ignore_errors=True)


@contextlib.contextmanager
def staged_directory(destination, overwrite=False):
    """Yields a fresh folder beside `destination`; renamed onto it only if the block succeeds.

    On an exception the staging folder is removed and `destination` is left as it was.
    With `overwrite`, a non-empty `destination` is replaced as a whole.
    """
    check_destination(destination, overwrite)
    parent, base = os.path.split(os.path.abspath(destination))
    os.makedirs(parent, exist_ok=True)
    staging = _new_folder(parent, f".{base}.partial-")
    try:
        yield staging
        check_destination(destination, overwrite)
        _place(staging, destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
