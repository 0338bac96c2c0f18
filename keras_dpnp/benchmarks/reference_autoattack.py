"""The reference PyTorch AutoAttack (fra31/auto-attack) on an ONNX export, for a side-by-side
comparison with ours (`keras_dpnp.benchmarks.reference_comparison`).

The comparison runs this file as a script in its own process, with an interpreter of the
user's choice, so that PyTorch never shares a process with TensorFlow:
`python reference_autoattack.py '<request as JSON>'` prints one JSON line (see `run`), and
`python reference_autoattack.py --probe` prints the versions of PyTorch, onnx2torch and
autoattack, or why one cannot be imported. The file imports nothing from `keras_dpnp`, imports
PyTorch only when it runs, and only calls the reference as an installed package.
"""

import contextlib
import importlib.metadata
import json
import os
import re
import sys
import tempfile
import time
import types

NORMS = {"linf": "Linf", "l2": "L2"}
STAGE_LINE = re.compile(r"robust accuracy after (\S+): ([\d.]+)% \(total time ([\d.]+) s\)")
CLEAN_LINE = re.compile(r"initial accuracy: ([\d.]+)%")


def _stand_in_for_torchvision(reason):
    """Registers an empty `torchvision` whose every attribute fails when called.

    onnx2torch imports torchvision for its NMS and RoIAlign converters only; a classifier's
    graph uses neither, so it converts without it.
    """
    for name in [name for name in sys.modules if name.split(".")[0] == "torchvision"]:
        del sys.modules[name]  # the remains of a failed import

    def missing(name):
        if name.startswith("__"):  # module attributes such as __file__, which inspect reads
            raise AttributeError(name)

        def fail(*args, **kwargs):
            raise RuntimeError(f"this ONNX graph needs torchvision.ops.{name} ({reason})")

        return fail

    torchvision, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")
    ops.__getattr__ = missing
    torchvision.ops = ops
    sys.modules.update({"torchvision": torchvision, "torchvision.ops": ops})


def import_onnx2torch():
    """onnx2torch, importable also where torchvision is absent or built for another PyTorch."""
    try:
        import torchvision  # noqa: F401
    except (ImportError, RuntimeError) as error:  # RuntimeError: a mismatched torchvision
        _stand_in_for_torchvision(f"torchvision could not be imported: {error}")
    import onnx2torch

    return onnx2torch


def _autoattack_version():
    """The installed autoattack's version, with the commit pip recorded for a git install."""
    distribution = importlib.metadata.distribution("autoattack")
    direct_url = json.loads(distribution.read_text("direct_url.json") or "{}")
    commit = direct_url.get("vcs_info", {}).get("commit_id")
    return distribution.version + (f" (commit {commit[:7]})" if commit else "")


def probe():
    """{'versions': {package: version}} or {'unavailable': why the reference cannot run}."""
    try:
        import torch

        import_onnx2torch()
        import autoattack  # noqa: F401
    except ImportError as error:
        return {
            "unavailable": f"{sys.executable} cannot import the reference AutoAttack ({error}); "
            f"docs/autoattack.md says how to install it"
        }
    return {
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "onnx2torch": importlib.metadata.version("onnx2torch"),
            "autoattack": _autoattack_version(),
        }
    }


def nhwc_model(onnx_path, output="logits"):
    """A PyTorch module that takes the reference's NCHW batches and returns the ONNX graph's
    `output` for the same images in NHWC, as the exported graph takes them."""
    import onnx
    import torch

    graph = onnx.load(onnx_path)
    index = [value.name for value in graph.graph.output].index(output)
    converted = import_onnx2torch().convert(graph)

    class ChannelsLast(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.converted = converted

        def forward(self, x):
            outputs = self.converted(x.permute(0, 2, 3, 1))
            return outputs[index] if isinstance(outputs, (tuple, list)) else outputs

    return ChannelsLast().eval()


def parse_log(text, attacks, points):
    """Per-stage figures from the reference's log of `run_standard_evaluation`.

    The log gives percentages to two decimals, rounded here to a whole number of the `points`
    (exact up to 10,000 points), and the seconds since the first stage began to 0.1 s. The
    reference stops once no point is left robust: the stages it did not run keep accuracy 0 and
    take 0 s.

    Returns:
        {'clean_accuracy', 'stages': [[attack, robust accuracy], ...], 'stage_seconds'}.
    """

    def fraction(percent):
        return round(float(percent) / 100 * points) / points

    clean = CLEAN_LINE.search(text)
    logged = {
        name.lower(): (fraction(percent), float(total))
        for name, percent, total in STAGE_LINE.findall(text)
    }
    stages, stage_seconds, elapsed = [], [], 0.0
    for attack in attacks:
        accuracy, total = logged.get(attack, (0.0, elapsed))
        stages.append([attack, accuracy])
        stage_seconds.append(round(total - elapsed, 1))
        elapsed = total
    return {
        "clean_accuracy": fraction(clean.group(1)) if clean else None,
        "stages": stages,
        "stage_seconds": stage_seconds,
    }


def _inputs(request):
    """(NCHW images, labels) tensors and our logits as NumPy, from the request's .npy files."""
    import numpy as np
    import torch

    images = np.load(request["images"])
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(np.load(request["labels"]).astype(np.int64))
    return x, y, np.load(request["logits"])


def _logit_difference(model, x, keras_logits, batch_size):
    """The largest |Δ| between the converted model's logits and the Keras model's."""
    import torch

    with torch.no_grad():
        logits = torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    return float((logits - torch.from_numpy(keras_logits)).abs().max())


def _evaluate(model, x, y, request, log_path):
    """(robust mask, seconds, attacks run) of the reference's standard AutoAttack."""
    from autoattack import AutoAttack

    attack = AutoAttack(
        model,
        norm=NORMS[request["norm"]],
        eps=request["epsilon"],
        version="standard",
        device="cpu",
        seed=request["seed"],
        log_path=log_path,
    )
    started = time.perf_counter()
    _, y_adv = attack.run_standard_evaluation(x, y, bs=request["batch_size"], return_labels=True)
    return (y_adv == y).tolist(), time.perf_counter() - started, attack.attacks_to_run


def run(request):
    """Runs the reference's standard AutoAttack as the request asks; returns the result row.

    Args:
        request: {'onnx': the exported model, 'images': .npy of float32 [N, H, W, C] in [0, 1],
            'labels': .npy of int [N], 'logits': .npy of the Keras model's logits [N, K],
            'epsilon', 'norm' ('linf' or 'l2'), 'seed', 'batch_size', 'threads'}.

    Returns:
        `parse_log`'s figures plus 'seconds' (the whole `run_standard_evaluation`), 'robust'
        (bool per point: correct clean and after every stage), 'max_logit_difference',
        'threads' and 'versions'.
    """
    import torch

    torch.manual_seed(request["seed"])
    torch.set_num_threads(request["threads"])
    model = nhwc_model(request["onnx"])
    x, y, keras_logits = _inputs(request)
    logit_difference = _logit_difference(model, x, keras_logits, request["batch_size"])
    # The reference prints as it logs: stdout keeps only the result line.
    with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stdout(sys.stderr):
        log_path = os.path.join(folder, "autoattack.log")
        robust, seconds, attacks = _evaluate(model, x, y, request, log_path)
        with open(log_path) as log:
            figures = parse_log(log.read(), attacks, len(y))
    return {
        **figures,
        "seconds": seconds,
        "robust": robust,
        "max_logit_difference": logit_difference,
        "threads": torch.get_num_threads(),
        "versions": probe()["versions"],
    }


def main(argv):
    if argv[1:] == ["--probe"]:
        print(json.dumps(probe()))
        return
    print(json.dumps(run(json.loads(argv[1]))))


if __name__ == "__main__":
    main(sys.argv)
