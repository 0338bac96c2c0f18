"""Every `python -m keras_dpnp.…` and `python -m export…` command quoted in the README and the
docs parses its flags with the CLI it names."""

import collections
import glob
import json
import os
import re
import shlex
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCUMENTS = [
    os.path.join(ROOT, "README.md"),
    *sorted(glob.glob(os.path.join(ROOT, "docs", "*.md"))),
]
COMMAND = re.compile(r"python -m ((?:keras_dpnp|export)(?:\.[a-z_]+)?)(?![\w.<])([^`\n]*)")
# Where a quoted command ends: a pipe, a list operator, a redirection or a comment.
END = re.compile(r"\s(?:\|\|?|&&|;|>|#)")
HELP = ("--help", "--helpfull", "--helpshort")

PARSER = r"""
import importlib, json, sys

name, commands = sys.argv[1], json.loads(sys.argv[2])
module = importlib.import_module("export.__main__" if name == "export" else name)
errors = []
if hasattr(module, "parse_args"):  # export.predict, an argparse CLI
    for args in commands:
        try:
            module.parse_args(args)
        except SystemExit:
            errors.append(args)
else:
    from absl import flags

    for args in commands:
        if any(arg in HELP for arg in args):
            continue  # the module imported, so its help prints
        flags.FLAGS.unparse_flags()
        try:
            rest = flags.FLAGS([name] + args)
        except flags.Error as error:
            errors.append([*args, str(error)])
            continue
        if rest != [name]:
            errors.append([*args, f"positional arguments {rest[1:]}"])
print(json.dumps(errors))
""".replace("HELP", repr(HELP))


def quoted_commands():
    """{CLI module: [(document, arguments), ...]} of every command quoted in the documents.

    In code blocks every command counts; in prose a bare `python -m export.bench` (or
    `python -m export ...`) names the tool, and only a mention with flags is a command.
    """
    found = collections.defaultdict(list)
    for path in DOCUMENTS:
        with open(path, encoding="utf-8") as f:
            pieces = f.read().replace("\\\n", " ").split("```")
        for index, piece in enumerate(pieces):
            for match in COMMAND.finditer(piece):
                module, rest = match.groups()
                args = shlex.split(END.split(rest)[0])
                if args[-1:] == ["..."]:  # "and further flags": a placeholder, not an argument
                    args = args[:-1]
                if args or index % 2:
                    found[module].append((os.path.relpath(path, ROOT), args))
    return found


COMMANDS = quoted_commands()


def test_the_documents_quote_every_cli():
    assert {
        "keras_dpnp.train",
        "keras_dpnp.evaluate",
        "keras_dpnp.compare",
        "keras_dpnp.bench",
        "export",
        "export.predict",
        "export.bench",
    } <= set(COMMANDS)


# One TensorFlow start per command: the quick-start command in the default run, the rest slow.
@pytest.mark.parametrize(
    "module",
    [
        module if module == "keras_dpnp.train" else pytest.param(module, marks=pytest.mark.slow)
        for module in sorted(COMMANDS)
    ],
)
def test_quoted_commands_parse(module):
    commands = [args for _, args in COMMANDS[module]]
    done = subprocess.run(
        [sys.executable, "-c", PARSER, module, json.dumps(commands)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    errors = json.loads(done.stdout.strip().splitlines()[-1])
    where = {json.dumps(args): document for document, args in COMMANDS[module]}
    assert errors == [], [(where.get(json.dumps(error[:-1])), error) for error in errors]
