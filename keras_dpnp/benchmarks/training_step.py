"""Training-step speed: images/s, achieved GFLOP/s against the machine's matmul GFLOP/s, peak
memory and retraces, for a clean step and PGD steps, per backbone and precision.

FLOPs are counted analytically: a forward pass costs F = the multiply-adds (×2) of every
convolution and dense layer and of the head, per image; a backward pass that needs weight
gradients costs 2F (input and weight gradients), one that needs only the input gradient costs F.
`step_forward_passes` turns each step into multiples of F. Element-wise work (BatchNorm, ReLU,
casts) is not counted, so the achieved figure is a lower bound on the work done.
"""

import dataclasses
import json
import os
import resource
import subprocess
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from keras_dpnp import hardware
from keras_dpnp.backbones import build_backbone
from keras_dpnp.benchmarks import torch_steps
from keras_dpnp.methods import get_method
from keras_dpnp.model import AdvDPNP
from keras_dpnp.training import distribute

STEPS = ("clean", "adv_dpnp", "pgd_at", "trades", "mart", "dpnp")
PYTORCH_STEPS = ("clean", "adv_dpnp", "pgd_at")  # the steps torch_steps.py writes
CLEAN_STEPS = ("clean", "dpnp")
STEP_METHODS = {
    "clean": "standard",
    "adv_dpnp": "adv_dpnp",
    "pgd_at": "pgd_at",
    "trades": "trades",
    "mart": "mart",
    "dpnp": "dpnp",
}
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
EPOCH_IMAGES = 50_000


def step_forward_passes(step, attack_steps):
    """A training step's cost in forward passes F (see the module docstring).

    clean, dpnp: forward + backward = 3F. pgd_at: `attack_steps` × (forward + input gradient)
    + 3F. mart: the same attack, and the clean and adversarial branches (2 × 3F). adv_dpnp,
    trades: the KL attack's clean reference logits (F), `attack_steps` × 2F, and the two
    branches (2 × 3F); adv_dpnp's geometry logs reuse the clean branch's features.
    """
    if step in CLEAN_STEPS:
        return 3
    if step == "pgd_at":
        return 2 * attack_steps + 3
    if step == "mart":
        return 2 * attack_steps + 6
    if step in ("adv_dpnp", "trades"):
        return 1 + 2 * attack_steps + 6
    raise ValueError(f"unknown step {step!r}; choose from {STEPS}")


def forward_flops(model):
    """FLOPs of one image's forward pass through the convolutions, dense layers and head."""
    total = 0
    for layer in model.backbone.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, out_channels = layer.output.shape
            kernel_height, kernel_width = layer.kernel_size
            in_channels = layer.kernel.shape[2]
            total += 2 * height * width * kernel_height * kernel_width * in_channels * out_channels
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
    total += 2 * model.backbone.output_shape[-1] * model.num_classes
    return int(total)


def matmul_gflops(dtype, size=4096, repeats=5):
    """Best GFLOP/s of a `size`×`size` `tf.matmul` in `dtype` on the default device."""
    a = tf.random.uniform((size, size), dtype=tf.float32)
    a, b = tf.cast(a, dtype), tf.cast(tf.transpose(a), dtype)
    product = tf.function(lambda p, q: tf.reduce_sum(tf.cast(tf.matmul(p, q), tf.float32)))
    float(product(a, b))
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        float(product(a, b))
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


@dataclasses.dataclass(frozen=True)
class Case:
    """One measurement: a backbone, a precision and a kind of training step."""

    backbone: str = "resnet18"
    precision: str = "float32"
    step: str = "adv_dpnp"
    batch_size: int = 128
    image_shape: tuple = (32, 32, 3)
    width: float = 1.0
    attack_steps: int = 10
    warmup_steps: int = 1
    timed_steps: int = 3
    threads: int = 0  # intra- and inter-op threads; 0: TensorFlow's defaults (every core)

    def __post_init__(self):
        if self.step not in STEPS:
            raise ValueError(f"--steps: unknown step {self.step!r}; choose from {list(STEPS)}")
        if self.precision not in distribute.PRECISIONS:
            raise ValueError(
                f"--precisions: unknown precision {self.precision!r}; choose from "
                f"{list(distribute.PRECISIONS)}"
            )
        for name in ("batch_size", "attack_steps", "warmup_steps", "timed_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise ValueError(f"--image_shape must be height,width,channels, got {self.image_shape}")


def pixel_statistics(channels):
    """(mean, std) of the synthetic images' normalisation: CIFAR-10's for RGB, else 0.5."""
    if channels == 3:
        return CIFAR_MEAN, CIFAR_STD
    return (0.5,) * channels, (0.5,) * channels


def _build(case):
    options = {"width": case.width} if case.width != 1.0 else {}
    mean, std = pixel_statistics(case.image_shape[2])
    with distribute.precision_policy(case.precision):
        backbone = build_backbone(case.backbone, case.image_shape, mean=mean, std=std, **options)
        method = STEP_METHODS[case.step]
        attack = get_method(method).training_attack(
            epsilon=8 / 255, step_size=2 / 255, steps=case.attack_steps
        )
        model = AdvDPNP(backbone, 10, method=method, attack=attack)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    )
    return model


def _peak_memory():
    """(MiB, what was measured): the GPU allocator's peak, else the process's peak RSS."""
    if tf.config.list_logical_devices("GPU"):
        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20, "GPU peak"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process peak RSS"


def run_case(case):
    """Times `case.timed_steps` training steps after `case.warmup_steps`; returns a result row.

    Run each case in a fresh process for a meaningful peak-memory figure on CPU.
    """
    if case.threads:
        # Both pools: with one thread each the process computes on one core, as PyTorch does.
        tf.config.threading.set_intra_op_parallelism_threads(case.threads)
        tf.config.threading.set_inter_op_parallelism_threads(case.threads)
    keras.utils.set_random_seed(0)
    model = _build(case)
    rng = np.random.default_rng(0)
    images = rng.random((case.batch_size, *case.image_shape), dtype=np.float32)
    labels = rng.integers(0, 10, case.batch_size)
    batches = iter(tf.data.Dataset.from_tensors((images, labels)).repeat())
    traces = 0
    train_step = model.train_step

    def counted_train_step(data):
        nonlocal traces
        traces += 1  # Python runs the step only while TensorFlow traces it.
        return train_step(data)

    model.train_step = counted_train_step
    model.make_train_function()
    loss_tracker = model.term_trackers[0]
    load_before = os.getloadavg()[0]
    for _ in range(case.warmup_steps):
        model.train_function(batches)
        float(loss_tracker.result())
    traces_after_warmup = traces
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(case.timed_steps):
        model.train_function(batches)
    float(loss_tracker.result())
    seconds = (time.perf_counter() - started) / case.timed_steps
    cpu_seconds = (time.process_time() - cpu_started) / case.timed_steps
    memory, memory_kind = _peak_memory()
    flops = forward_flops(model)
    passes = step_forward_passes(case.step, case.attack_steps)
    images_per_second = case.batch_size / seconds
    return {
        **dataclasses.asdict(case),
        "attack": "none" if case.step in CLEAN_STEPS else f"PGD-{case.attack_steps}",
        "seconds_per_step": seconds,
        "cpu_seconds_per_step": cpu_seconds,
        "images_per_second": images_per_second,
        "seconds_per_50k_epoch": EPOCH_IMAGES / images_per_second,
        "forward_gflop_per_image": flops / 1e9,
        "forward_passes_per_step": passes,
        "achieved_gflops": flops * passes * images_per_second / 1e9,
        "peak_memory_mib": memory,
        "memory_kind": memory_kind,
        "retraces_after_first_step": traces - traces_after_warmup,
        "load_average_1min": [load_before, os.getloadavg()[0]],
    }


def environment():
    """What the figures depend on: device, software, cores and the load when measured."""
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(
            tf.config.list_physical_devices("GPU")[0]
        )
        device = details.get("device_name", "GPU")
    else:
        device = hardware.cpu_model()
    flags = hardware.cpu_flags()
    return {
        "device": device,
        "gpus": len(gpus),
        "cpu_model": hardware.cpu_model(),
        "cpu_isa": hardware.isa_summary(flags),
        "cpu_cores": os.cpu_count(),
        "onednn": distribute.onednn_status(),
        "auto_precision": distribute.resolve_precision("auto"),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "load_average_1min": os.getloadavg()[0],
    }


def matmul_dtype(precision):
    """The matmul dtype a precision's convolutions run in."""
    return {"float32": "float32", "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}[
        precision
    ]


def add_peak_fractions(rows, peaks):
    """Adds each row's matmul peak (of its compute dtype) and the achieved fraction of it."""
    for row in rows:
        peak = peaks[matmul_dtype(row["precision"])]
        row["matmul_peak_gflops"] = peak
        row["fraction_of_matmul_peak"] = row["achieved_gflops"] / peak
    return rows


def markdown_table(rows):
    """The result rows as a Markdown table (PyTorch's columns empty where it was not run)."""
    lines = [
        (
            "| model | image | precision | step | img/s | PyTorch img/s | × PyTorch | "
            "× PyTorch, CPU time | s/step | s/50k epoch | GFLOP/s | % of matmul peak | "
            "peak memory MiB | retraces |"
        ),
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        step = row["step"] if row["attack"] == "none" else f"{row['step']} {row['attack']}"
        torch_row = row.get("pytorch") or {}
        theirs = f"{torch_row['images_per_second']:.1f}" if torch_row else "—"
        ratio = f"{torch_row['ratio']:.2f}" if torch_row else "—"
        cpu_ratio = f"{torch_row['cpu_time_ratio']:.2f}" if torch_row else "—"
        lines.append(
            f"| {row['backbone']} | {'×'.join(map(str, row['image_shape']))} | "
            f"{row['precision']} | {step} | {row['images_per_second']:.1f} | {theirs} | "
            f"{ratio} | {cpu_ratio} | {row['seconds_per_step']:.3f} | "
            f"{row['seconds_per_50k_epoch']:.0f} | "
            f"{row['achieved_gflops']:.0f} | {100 * row['fraction_of_matmul_peak']:.0f} | "
            f"{row['peak_memory_mib']:.0f} | {row['retraces_after_first_step']} |"
        )
    return "\n".join(lines)


def _run_torch_script(args):
    """The JSON line that `torch_steps.py ARGS` prints, run in its own process."""
    result = subprocess.run(
        [sys.executable, torch_steps.__file__, *args], capture_output=True, text=True, check=False
    )
    if result.returncode:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"the PyTorch side failed: {last}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def pytorch_probe():
    """{'version': PyTorch's version}, or {'unavailable': why the PyTorch side is skipped}."""
    return _run_torch_script(["--probe"])


def run_pytorch_case(case, threads):
    """`case` timed with the PyTorch version of its step, on `threads` threads: a result row."""
    return _run_torch_script([json.dumps({**dataclasses.asdict(case), "threads": threads})])


def with_median(runs):
    """The run whose images/s is the median of `runs` (the lower middle one for an even count),
    with every run's images/s and CPU seconds per step under `..._runs`."""
    ordered = sorted(runs, key=lambda run: run["images_per_second"])
    middle = ordered[(len(ordered) - 1) // 2]
    return {
        **middle,
        "images_per_second_runs": [run["images_per_second"] for run in runs],
        "cpu_seconds_per_step_runs": [run["cpu_seconds_per_step"] for run in runs],
    }
