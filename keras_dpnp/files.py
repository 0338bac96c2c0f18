"""Writing files other code reads: whole or not at all, and on disk before they count."""

import contextlib
import os
import shutil
import tempfile


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
