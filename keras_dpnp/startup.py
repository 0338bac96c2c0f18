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

Known start-up noise is dropped from the error stream, line by line and nothing else: the notes
that a CPU-only machine has no CUDA driver (TensorFlow's CUDA plugin then also logs `failed call
to cuInit ... (303)`, which is dropped only where no NVIDIA driver is loaded), the warning that a
generator-fed `tf.data` pipeline is not graph-optimised (and its note on a memory setting),
oneDNN's notice (the training banner states oneDNN's state) and the advice to rebuild
TensorFlow for this CPU. A child process does the filtering, so nothing else written to the
error stream is lost, even when Python crashes.
`TF_CPP_MIN_LOG_LEVEL` stays the user's: it would hide TensorFlow's real errors too.
"""

import atexit
import os
import select
import signal
import subprocess
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
# Lines TensorFlow prints on every CPU-only start that say nothing about the run.
CPU_ONLY_NOISE = (
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine, GPU will not be used",
    r"failed call to cuInit: .*UNKNOWN ERROR \(303\)",
    r"devices\.cc:\d+\] Number of eligible GPUs \(core count >= 8, compute capability >= 0\.0\)"
    r": 0$",
)
# Lines of every start that the banner says better (oneDNN's state) or that ask for a rebuild.
ALWAYS_NOISE = (
    r"GeneratorDatasetOp::Dataset will not be optimized",
    r"generator_dataset_op\.cc:\d+\] Memory patch applied: M_TRIM_THRESHOLD",
    r"oneDNN custom operations are on\. You may see slightly different numerical results",
    r"cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized to use available CPU",
    r"^To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler",
    # Grappler's notes whenever tf2onnx optimises a graph (the ONNX export).
    r"single_machine\.cc:\d+\] Starting new session$",
)
# The child that copies its input to its output, less the lines matching its arguments; it
# ignores Ctrl-C so that it outlives the parent's traceback. The parent's last write ends with
# the marker line: the child then closes the acknowledgement pipe, so the parent knows its own
# output is through even while a process it started (multiprocessing's resource tracker, say)
# still holds the error stream open; the child goes on copying until the last writer is gone.
_FILTER_PROGRAM = """
import os, re, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
marker, acknowledge = sys.argv[1].encode() + b"\\n", int(sys.argv[2])
noise = re.compile("|".join(sys.argv[3:]).encode())
for line in sys.stdin.buffer:
    last = line.endswith(marker)
    line = line[: -len(marker)] if last else line
    if line and not noise.search(line):
        sys.stdout.buffer.write(line)
        sys.stdout.buffer.flush()
    if last:
        os.close(acknowledge)
"""
# How long the parent waits at exit for the filter to copy its last lines.
_DRAIN_SECONDS = 10
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


def noise_patterns(nvidia_driver_loaded):
    """The regular expressions of the error-stream lines the entry points drop."""
    return ALWAYS_NOISE + (() if nvidia_driver_loaded else CPU_ONLY_NOISE)


def filter_stderr(patterns):
    """Routes file descriptor 2 through a child process that drops the lines matching any of
    `patterns`; at exit the original error stream comes back once the child has copied all
    this process wrote."""
    saved = os.dup(2)
    acknowledged, acknowledge = os.pipe()
    marker = f"keras_dpnp-stderr-done-{os.getpid()}-{os.urandom(8).hex()}"
    child = subprocess.Popen(
        [sys.executable, "-c", _FILTER_PROGRAM, marker, str(acknowledge), *patterns],
        stdin=subprocess.PIPE,
        stdout=saved,
        pass_fds=(acknowledge,),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    os.close(acknowledge)
    os.dup2(child.stdin.fileno(), 2)
    child.stdin.close()

    def restore():
        sys.stderr.flush()
        try:
            os.write(2, f"{marker}\n".encode())
        except OSError:  # the child is gone; nothing to wait for
            pass
        os.dup2(saved, 2)
        select.select([acknowledged], [], [], _DRAIN_SECONDS)

    atexit.register(restore)


def prepare_entry_point(argv=None):
    """In a process started as one of `ENTRY_POINTS`, applies `tensorflow_settings` and drops
    the known start-up noise (call it before TensorFlow is imported); returns the variables it
    set."""
    if not started_as_entry_point(argv):
        return {}
    applied_settings.update(apply_settings(tensorflow_settings(hardware.cpu_flags())))
    filter_stderr(noise_patterns(hardware.nvidia_driver_loaded()))
    return dict(applied_settings)
