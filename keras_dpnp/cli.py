"""Shared plumbing of the absl entry points: one-line errors, clean exit codes, number flags
that take fractions (`8/255`) and refuse `inf` and `nan`, the --verbose flag and the --help page
that groups a program's own flags by topic."""

import math
import os
import sys
import textwrap

from absl import app, flags

HELP_ARGS = ("-h", "-?", "--help", "--helpshort")
# The modules whose flags are the project's own (absl and TensorFlow define the others).
_OWN_MODULES = ("keras_dpnp", "export", "__main__")


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


def define_verbose_flag():
    """--verbose, with Keras's meaning of `fit(verbose=...)`."""
    flags.DEFINE_enum(
        "verbose",
        "auto",
        ["auto", "0", "1", "2"],
        "0: silent; 1: a progress bar; 2: one line per epoch; auto: a progress bar on a "
        "terminal, else one line per epoch. Every logged term also goes to history.csv and "
        "TensorBoard.",
    )


def define_threads_flag():
    """--threads: the size of TensorFlow's intra- and inter-op thread pools."""
    flags.DEFINE_integer(
        "threads",
        0,
        "TensorFlow's intra- and inter-op threads; 0: its defaults (every core). Give each "
        "of several processes sharing a machine its share of the cores (e.g. 1 each for two "
        "--shard processes on 2 cores).",
        lower_bound=0,
    )


def define_autoattack_workers_flag():
    """--autoattack_workers: AutoAttack's batches attacked at once."""
    flags.DEFINE_integer(
        "autoattack_workers",
        1,
        "AutoAttack's batches attacked at once, TensorFlow's intra-op threads shared among "
        "them (--threads or every core, divided by this): faster on several cores, where one "
        "batch's small operations leave cores idle; the result is that of one at a time. "
        "Needs at least this many batches: --autoattack_points over --batch_size.",
        lower_bound=1,
    )


def apply_threads(count, workers=1):
    """Sets TensorFlow's thread pools to `count` threads (0: every core this process may run
    on, TensorFlow's default), shared by `workers` batches computed at once: intra-op threads
    `count // workers` (at least 1), inter-op threads `count` (at least `workers`). Call it
    before TensorFlow runs its first operation."""
    if not count and workers == 1:
        return
    import tensorflow as tf

    from keras_dpnp import hardware

    total = count or hardware.usable_cores()
    tf.config.threading.set_intra_op_parallelism_threads(max(1, total // workers))
    tf.config.threading.set_inter_op_parallelism_threads(max(total, workers))


def verbose_value():
    """--verbose as `train` takes it: 'auto' or 0, 1, 2."""
    text = flags.FLAGS.verbose
    return text if text == "auto" else int(text)


def _default_text(flag):
    from keras_dpnp.config import readable_number

    value = flag.default
    if isinstance(value, float):
        return readable_number(value)
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, str):
        return value.replace("/r2", "/r²") if value.endswith("/r2") else value or "''"
    return "none" if value is None else str(value)


def _flag_entry(flag):
    """The lines of one flag: its name with its default, then its help (and choices)."""
    if flag.boolean:
        head = f"  --[no]{flag.name}  (default: {str(flag.default).lower()})"
    else:
        head = f"  --{flag.name}={_default_text(flag)}"
    text = flag.help
    choices = getattr(flag.parser, "enum_values", None)
    if choices and not all(choice in text for choice in choices):
        text += f" One of: {', '.join(choices)}."
    return [head, *textwrap.wrap(text, 96, initial_indent=" " * 6, subsequent_indent=" " * 6)]


def own_flag_names(flag_values=flags.FLAGS):
    """The names of the flags the project's modules define (not absl's or TensorFlow's)."""
    return {
        flag.name
        for module, module_flags in flag_values.flags_by_module_dict().items()
        if module.startswith(_OWN_MODULES) or module == sys.argv[0]
        for flag in module_flags
    }


def help_text(doc, groups, flag_values=flags.FLAGS):
    """The --help page: `doc`, then each (title, flag names) group; the project's flags in no
    group come last, under 'other' ('flags' when there are no groups)."""
    lines = [textwrap.dedent(doc or "").strip(), ""]
    grouped = [name for _, names in groups for name in names]
    other = sorted(own_flag_names(flag_values) - set(grouped))
    rest = [("other" if groups else "flags", other)] if other else []
    for title, names in [*groups, *rest]:
        lines.append(f"{title}:")
        for name in names:
            lines += _flag_entry(flag_values[name])
        lines.append("")
    lines.append("Flags of absl and TensorFlow (logging, --flagfile, ...): --helpfull.")
    return "\n".join(lines)


def run(main, groups=()):
    """Runs an absl `main` with one-line flag errors (the body of every entry point); --help
    prints `help_text` of the main module's docstring and `groups`, and exits 0."""
    if any(arg in HELP_ARGS for arg in sys.argv[1:]):
        print(help_text(sys.modules[main.__module__].__doc__, groups))
        sys.exit(0)
    app.run(main, flags_parser=parse_flags_or_exit)
