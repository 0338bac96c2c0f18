"""Settings that TensorFlow reads once, as it loads, made for the command-line entry points.

`python -m keras_dpnp.train` (and every other module in `ENTRY_POINTS`, and the installed
`keras-dpnp-*` console scripts) imports the `keras_dpnp` package before the CLI module itself, so
the package calls `prepare_entry_point()` before it imports TensorFlow. It acts only in a process
started as one of those entry points: importing the library leaves the environment as it is. A
variable the user set is never changed.

`TF_ENABLE_ONEDNN_OPTS=1` on x86 CPUs with AVX2: TensorFlow turns its oneDNN kernels on by
default only on CPUs with AVX-512-VNNI/BF16 or AMX, and runs its slower Eigen kernels elsewhere;
on an AVX2-only CPU oneDNN makes every training step faster (README "Speed"). Set
`TF_ENABLE_ONEDNN_OPTS=0` to keep the Eigen kernels.
"""

import os
import sys

from keras_dpnp import hardware

ENTRY_POINTS = (
    "keras_dpnp.train",
    "keras_dpnp.evaluate",
    "keras_dpnp.compare",
    "keras_dpnp.bench",
    "keras_dpnp.bench_attacks",
    "keras_dpnp.export",
    "export",
    "export.bench",
)
CONSOLE_SCRIPT_PREFIX = "keras-dpnp-"
ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
# What `prepare_entry_point` set in this process (reported by the banner and the benchmark).
applied_settings = {}


def tensorflow_settings(cpu_flag_set):
    """{environment variable: value} that the entry points set on this CPU."""
    if "avx2" in cpu_flag_set:
        return {ONEDNN_VARIABLE: "1"}
    return {}


def apply_settings(settings, environ=os.environ):
    """Sets each variable of `settings` the user has not set; returns those it set."""
    applied = {name: value for name, value in settings.items() if name not in environ}
    environ.update(applied)
    return applied


def _started_module(argv):
    """The module named by `python -m MODULE` in `argv`, or ''."""
    args = iter(argv[1:])
    for arg in args:
        if arg == "-m":
            return next(args, "")
        if arg.startswith("-m"):
            return arg[2:]
        if arg in ("-X", "-W"):
            next(args, None)
        elif not arg.startswith("-") or arg.startswith("-c"):
            return ""
    return ""


def started_as_entry_point(argv=None):
    """Whether `argv` (default: this process's `sys.orig_argv`) runs a module of
    `ENTRY_POINTS` or a `keras-dpnp-*` console script."""
    argv = sys.orig_argv if argv is None else argv
    scripts = [os.path.basename(arg) for arg in argv[1:2] + argv[:1]]
    return _started_module(argv) in ENTRY_POINTS or any(
        script.startswith(CONSOLE_SCRIPT_PREFIX) for script in scripts
    )


def prepare_entry_point(argv=None):
    """In a process started as one of `ENTRY_POINTS`, applies `tensorflow_settings` (call it
    before TensorFlow is imported); returns the variables it set."""
    if not started_as_entry_point(argv):
        return {}
    applied_settings.update(apply_settings(tensorflow_settings(hardware.cpu_flags())))
    return dict(applied_settings)
