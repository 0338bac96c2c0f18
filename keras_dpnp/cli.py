"""Shared plumbing of the absl entry points: one-line errors, clean exit codes, and number
flags that take fractions (`8/255`) and refuse `inf` and `nan`."""

import math
import os
import sys

from absl import app, flags


def _program():
    """How the user ran us: `python -m keras_dpnp.train` or `python -m export` as run."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name:
        return "python -m " + spec.name.removesuffix(".__main__")
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "keras_dpnp"


def parse_number(text):
    """A finite float from text such as `0.2`, `8/255` or `0.1/16`; ValueError otherwise."""
    numerator, slash, denominator = text.strip().partition("/")
    try:
        value = float(numerator) / float(denominator) if slash else float(numerator)
    except ZeroDivisionError as error:
        raise ValueError(f"{text!r} divides by zero") from error
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


class NumberParser(flags.FloatParser):
    """Float flag parser that accepts fractions such as `8/255` and refuses inf and nan."""

    def convert(self, argument):
        if isinstance(argument, str):
            return parse_number(argument)
        return super().convert(argument)


def _module_calling_define():
    """The name absl files a flag under: the module that called `define_number`."""
    name = sys._getframe(2).f_globals.get("__name__", "")
    return sys.argv[0] if name == "__main__" else name


def define_number(name, default, help, lower_bound=None, flag_values=flags.FLAGS):
    """Defines a float flag parsed by `NumberParser` (every float flag of the entry points).

    Args:
        name, default, help: as for `flags.DEFINE_float`.
        lower_bound: the smallest value allowed, or None.
        flag_values: the `FlagValues` to define it in.
    """
    flags.DEFINE(
        NumberParser(lower_bound=lower_bound),
        name,
        default,
        help,
        flag_values=flag_values,
        serializer=flags.ArgumentSerializer(),
        # Else absl files every number flag under keras_dpnp.cli, and --helpshort omits them.
        module_name=_module_calling_define(),
    )


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
