"""Gives every float flag of one entry point `inf` and `nan`; prints the outcomes as JSON.

    python number_flags.py MODULE [--required_flag=value ...]

A helper of tests/test_cli.py: each entry point defines its flags in absl's global FLAGS, and
two of them define flags of the same name, so every module gets a process of its own.
"""

import contextlib
import importlib
import io
import json
import sys

from absl import flags


def _our_float_flags(module):
    """The float flags that `module` and the keras_dpnp modules it uses define."""
    ours = [
        flag
        for defined_in, defined in flags.FLAGS.flags_by_module_dict().items()
        if defined_in == module or defined_in.startswith(("keras_dpnp", "export"))
        for flag in defined
    ]
    return sorted({flag.name for flag in ours if isinstance(flag.parser, flags.FloatParser)})


def _parse(arguments):
    """(exit status, stderr) of the entry point's own flag parsing of `arguments`."""
    from keras_dpnp import cli

    flags.FLAGS.unparse_flags()
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            cli.parse_flags_or_exit(["prog", *arguments])
            status = 0
        except SystemExit as exit_:
            status = exit_.code
    return status, stderr.getvalue()


def main():
    module, *required = sys.argv[1:]
    importlib.import_module(module)
    outcomes = []
    for name in _our_float_flags(module):
        for value in ("inf", "nan", "-inf"):
            status, stderr = _parse([f"--{name}={value}", *required])
            outcomes.append({"flag": name, "value": value, "status": status, "stderr": stderr})
    print(json.dumps(outcomes))


if __name__ == "__main__":
    main()
