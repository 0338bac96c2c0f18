"""AutoAttack's finished stages kept on disk, so that an interrupted run resumes after the last.

Each stage attacks only the points still robust, from its own seed, so a run resumed from the
state after a stage gives the same result as one that never stopped. The file records what the
state belongs to (model, points, labels and settings); a file of another evaluation is ignored.
"""

import dataclasses
import hashlib
import json
import os
import zipfile

import numpy as np

from keras_dpnp.files import atomic_path

FORMAT = 1


@dataclasses.dataclass(frozen=True)
class ProgressFile:
    """Where AutoAttack keeps its finished stages, and which model it attacks.

    `path`: an `.npz` file (written atomically after each stage; remove it once the result is
    stored). `model_digest`: identifies the model's weights (`file_digest` of its file).
    """

    path: str
    model_digest: str


@dataclasses.dataclass(frozen=True)
class StagesDone:
    """The state after the finished stages: `robust` (bool [N]), `x_adv` (like x), `stages`
    ((name, robust accuracy), ...) and `stage_seconds`, in running order."""

    robust: np.ndarray
    x_adv: np.ndarray
    stages: tuple
    stage_seconds: tuple


def file_digest(path):
    """The SHA-256 of a file's bytes, as hex."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def evaluation_key(progress_file, x, y, settings):
    """A digest of the model, the points, their labels and the attack `settings` (a dict)."""
    digest = hashlib.sha256()
    digest.update(progress_file.model_digest.encode())
    digest.update(json.dumps(settings, sort_keys=True).encode())
    digest.update(np.ascontiguousarray(x, np.float32).tobytes())
    digest.update(np.ascontiguousarray(y, np.int64).tobytes())
    return digest.hexdigest()


def save(progress_file, key, done):
    """Writes `done` (a `StagesDone`) for the evaluation `key`, replacing the file atomically."""
    with atomic_path(progress_file.path) as temporary:
        with open(temporary, "wb") as f:
            np.savez(
                f,
                format=FORMAT,
                key=key,
                robust=done.robust,
                x_adv=done.x_adv,
                stages=json.dumps(done.stages),
                stage_seconds=np.asarray(done.stage_seconds, np.float64),
            )


def load(progress_file, key):
    """The `StagesDone` stored for the evaluation `key`; None when there is no file, or it holds
    another evaluation's stages, an older format or no readable state."""
    if not os.path.exists(progress_file.path):
        return None
    try:
        with np.load(progress_file.path, allow_pickle=False) as stored:
            if int(stored["format"]) != FORMAT or str(stored["key"]) != key:
                return None
            return _stages_done(stored)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None


def _stages_done(stored):
    return StagesDone(
        robust=stored["robust"].astype(bool),
        x_adv=stored["x_adv"],
        stages=tuple((name, float(value)) for name, value in json.loads(str(stored["stages"]))),
        stage_seconds=tuple(float(s) for s in stored["stage_seconds"]),
    )
