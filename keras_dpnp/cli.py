"""Shared plumbing of the absl entry points: one-line errors and clean exit codes."""

import os
import sys

from absl import app, flags


def _program():
    """How the user ran us: `python -m keras_dpnp.train` or `python -m export` as run."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name:
        return "python -m " + spec.name.removesuffix(".__main__")
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "keras_dpnp"


def parse_flags_or_exit(argv):
    """absl flag parsing that reports a bad flag on one line and exits with status 2."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        print(f"{_program()}: error: {error}", file=sys.stderr)
        sys.exit(2)


def fail(message):
    """Prints a one-line error and exits with status 1."""
    print(f"{_program()}: error: {message}", file=sys.stderr)
    sys.exit(1)


def run(main):
    """Runs an absl `main` with one-line flag errors (the body of every entry point)."""
    app.run(main, flags_parser=parse_flags_or_exit)
