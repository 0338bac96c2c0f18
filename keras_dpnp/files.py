"""Writing files other code reads: whole or not at all, on disk before they count, and into
folders known to be writable before the work that fills them starts."""

import contextlib
import os
import shutil
import tempfile


class UnwritableError(OSError):
    """A folder meant to receive output cannot take files."""


def _nearest_existing(folder):
    """`folder`, or while it does not exist the nearest path above it that does."""
    path = os.path.abspath(folder)
    while not os.path.lexists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def check_writable(folder):
    """Raises `UnwritableError` unless files can be created in `folder`, or, if it does not
    exist yet, in the nearest folder above it (where it would be created). Leaves nothing.

    Args:
        folder: the output folder to check; it is not created.
    """
    existing = _nearest_existing(folder)
    if not os.path.isdir(existing):
        raise UnwritableError(f"cannot write to {folder}: {existing} is not a folder")
    try:
        handle, probe = tempfile.mkstemp(prefix=".write-probe-", dir=existing)
        os.close(handle)
        os.remove(probe)
    except OSError as error:
        raise UnwritableError(
            f"cannot write to {folder}: {existing}: {error.strerror or error}"
        ) from error


def fsync_folder(folder):
    """Makes the entries of `folder` (a rename into it, a new file) durable."""
    _fsync_file(folder)


def _fsync_tree(path):
    if os.path.isdir(path):
        for folder, _, names in os.walk(path):
            for name in names:
                _fsync_file(os.path.join(folder, name))
            fsync_folder(folder)
    else:
        _fsync_file(path)


def _fsync_file(path):
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def write_durably(path, payload):
    """Writes the bytes `payload` to `path` (a new name, not yet read by anyone) and fsyncs it.

    Every byte a run directory's backup holds goes through here.
    """
    with open(path, "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path`; on success it is fsynced and renamed onto `path`.

    On an exception the temporary file (or folder) is removed, so `path` never holds a
    half-written artefact.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    base = os.path.basename(path)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{base}.", suffix=os.path.splitext(base)[1], dir=folder
    )
    os.close(handle)
    os.remove(temporary)
    try:
        yield temporary
        _fsync_tree(temporary)
        os.replace(temporary, path)
        fsync_folder(folder)
    except BaseException:
        if os.path.isdir(temporary):
            shutil.rmtree(temporary, ignore_errors=True)
        elif os.path.exists(temporary):
            os.remove(temporary)
        raise


def write_text(path, text):
    """Writes `text` to `path` atomically."""
    with atomic_path(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as f:
            f.write(text)
