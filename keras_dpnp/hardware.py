"""What the machine computes natively, read without TensorFlow: the CPU's model and ISA flags,
and the precision `--precision=auto` picks from them (or from a GPU's compute capability).
"""

import os
import platform

# The flags that decide which kernels TensorFlow and PyTorch run (recorded by the benchmark).
ISA_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
)
# CPU flags of native bfloat16 arithmetic; without them bfloat16 is emulated and slower.
NATIVE_BFLOAT16_FLAGS = ("amx_bf16", "avx512_bf16")
# GPUs of compute capability 8.0 (Ampere) on compute bfloat16 in their tensor cores.
NATIVE_BFLOAT16_GPU_CAPABILITY = (8, 0)


def usable_cores():
    """The cores this process may run on (TensorFlow's default thread count)."""
    affinity = getattr(os, "sched_getaffinity", None)  # Linux only
    return len(affinity(0)) if affinity else os.cpu_count()


def read_cpuinfo(path="/proc/cpuinfo"):
    """The text of `path`, or '' where there is none (not Linux)."""
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except OSError:
        return ""


def _first_field(cpuinfo, name):
    for line in cpuinfo.splitlines():
        key, colon, value = line.partition(":")
        if colon and key.strip() == name:
            return value.strip()
    return ""


def cpu_flags(cpuinfo=None):
    """The first processor's ISA flags (`flags` line of /proc/cpuinfo) as a frozenset."""
    text = read_cpuinfo() if cpuinfo is None else cpuinfo
    return frozenset(_first_field(text, "flags").split())


def cpu_model(cpuinfo=None):
    """The CPU's model name, else what `platform` knows."""
    text = read_cpuinfo() if cpuinfo is None else cpuinfo
    return _first_field(text, "model name") or platform.processor() or platform.machine()


def isa_summary(flags):
    """{flag: present} for every flag of `ISA_FLAGS`."""
    return {flag: flag in flags for flag in ISA_FLAGS}


def auto_precision(cpu_flag_set, gpu_capabilities=()):
    """(precision, reason) that `--precision=auto` resolves to.

    mixed_bfloat16 where the hardware computes bfloat16 natively: every GPU at compute
    capability >= 8.0, or (without GPUs) a CPU with AMX or AVX-512-BF16; float32 otherwise,
    since emulated bfloat16 is several times slower than float32 (README "Speed").

    Args:
        cpu_flag_set: the CPU's ISA flags (`cpu_flags()`).
        gpu_capabilities: (major, minor) compute capability of each GPU in use.
    """
    if gpu_capabilities:
        lowest = min(tuple(capability) for capability in gpu_capabilities)
        if lowest >= NATIVE_BFLOAT16_GPU_CAPABILITY:
            return "mixed_bfloat16", f"GPU compute capability {lowest[0]}.{lowest[1]} >= 8.0"
        return "float32", f"GPU compute capability {lowest[0]}.{lowest[1]} < 8.0"
    native = [flag for flag in NATIVE_BFLOAT16_FLAGS if flag in cpu_flag_set]
    if native:
        return "mixed_bfloat16", f"CPU computes bfloat16 natively: {', '.join(native)}"
    return "float32", f"CPU has no native bfloat16: no {' or '.join(NATIVE_BFLOAT16_FLAGS)}"


def nvidia_driver_loaded(version_file="/proc/driver/nvidia/version"):
    """Whether the NVIDIA kernel driver is loaded (Linux lists it under /proc)."""
    return os.path.exists(version_file)
