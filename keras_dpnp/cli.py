"""Shared plumbing of the absl entry points: one-line flag errors and a clean exit code."""

import sys

from absl import flags


def parse_flags_or_exit(argv):
    """absl flag parsing that reports a bad flag on one line and exits with status 2."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        program = argv[0].rsplit("/", 1)[-1] if argv else "keras_dpnp"
        print(f"{program}: error: {error}", file=sys.stderr)
        sys.exit(2)


def fail(message):
    """Prints an error line and exits with status 1."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)
