"""The benchmark's training steps written in PyTorch, for a side-by-side comparison.

The same networks as `keras_dpnp.backbones` (small_cnn, and resnet18 with the CIFAR stem; pixel
normalisation inside, bias-free convolutions, BatchNorm with momentum 0.1 and ε 1e-5, a 128-wide
linear projection), the same heads (prototypes on a sphere of radius 4 with dot logits for
adv_dpnp, a linear layer otherwise), the same PGD (uniform random start, signed steps,
projection, BatchNorm in eval mode, input gradients only) and the same losses and optimizer.
Tensors are channels-last and the thread count is the TensorFlow side's.

The benchmark runs this file as a script in its own process, so that PyTorch never shares a
process with TensorFlow: `python torch_steps.py '<case as JSON>'` prints a result row as JSON,
and `python torch_steps.py --probe` prints PyTorch's version, or why it cannot be imported.
The file imports nothing from `keras_dpnp` and imports PyTorch only when it runs.
"""

import functools
import json
import sys
import time

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
FEATURE_DIM = 128
NUM_CLASSES = 10
RADIUS = 4.0
# The Adv-DPNP defaults of keras_dpnp.methods.LossWeights.
ALIGN, REPEL, MARGIN, SEPARATION, BETA = 10 / 16, 0.1, 1.0, 0.1, 6.0


def probe():
    """{'version': PyTorch's version} or {'unavailable': why `import torch` failed}."""
    try:
        import torch
    except ImportError as error:
        return {"unavailable": f"PyTorch could not be imported ({error})"}
    return {"version": torch.__version__}


def _scaled(channels, width):
    return max(1, round(channels * width))


@functools.cache
def _modules():
    """The module classes, defined on first use so that this file imports without PyTorch."""
    import torch
    from torch import nn

    class PixelNormalization(nn.Module):
        def __init__(self, channels):
            super().__init__()
            mean = CIFAR_MEAN if channels == 3 else (0.5,) * channels
            std = CIFAR_STD if channels == 3 else (0.5,) * channels
            self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
            self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

        def forward(self, x):
            return (x - self.mean) / self.std

    class BasicBlock(nn.Module):
        def __init__(self, in_channels, channels, stride):
            super().__init__()
            self.residual = nn.Sequential(
                nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(),
                nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
                nn.BatchNorm2d(channels),
            )
            self.shortcut = nn.Identity()
            if stride != 1 or in_channels != channels:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_channels, channels, 1, stride, bias=False),
                    nn.BatchNorm2d(channels),
                )

        def forward(self, x):
            return torch.relu(self.residual(x) + self.shortcut(x))

    class PrototypeHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.prototypes = nn.Parameter(torch.randn(NUM_CLASSES, FEATURE_DIM))

        def class_vectors(self):
            return RADIUS * nn.functional.normalize(self.prototypes, dim=1)

        def forward(self, z):
            return z @ self.class_vectors().T

    return PixelNormalization, BasicBlock, PrototypeHead


def _conv_bn_relu(nn, in_channels, channels, stride):
    return [
        nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(),
    ]


def _small_cnn(nn, channels, width):
    layers = []
    for filters, stride in ((32, 1), (64, 2), (128, 2)):
        layers += _conv_bn_relu(nn, channels, _scaled(filters, width), stride)
        channels = _scaled(filters, width)
    hidden = _scaled(256, width)
    return layers + [
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(channels, hidden),
        nn.ReLU(),
    ], hidden


def _resnet18(nn, channels, width):
    _, basic_block, _ = _modules()
    stem = _scaled(64, width)
    layers = _conv_bn_relu(nn, channels, stem, 1)
    in_channels = stem
    for stage, filters in enumerate((64, 128, 256, 512)):
        for index in range(2):
            stride = 2 if stage > 0 and index == 0 else 1
            layers.append(basic_block(in_channels, _scaled(filters, width), stride))
            in_channels = _scaled(filters, width)
    return layers + [nn.AdaptiveAvgPool2d(1), nn.Flatten()], in_channels


def build(backbone, image_shape, width, step):
    """(features network, head) of `backbone` for channels-last images of `image_shape`."""
    from torch import nn

    normalization, _, prototype_head = _modules()
    bodies = {"small_cnn": _small_cnn, "resnet18": _resnet18}
    if backbone not in bodies:
        raise ValueError(f"no PyTorch version of backbone {backbone!r}; have {sorted(bodies)}")
    channels = image_shape[2]
    body, body_width = bodies[backbone](nn, channels, width)
    features = nn.Sequential(normalization(channels), *body, nn.Linear(body_width, FEATURE_DIM))
    head = prototype_head() if step == "adv_dpnp" else nn.Linear(FEATURE_DIM, NUM_CLASSES)
    return features, head


def pgd(logits_of, x, objective, epsilon, step_size, steps):
    """L∞ PGD from a uniform random start, maximising `objective(logits)`; input gradients only."""
    import torch

    x_adv = (x + torch.empty_like(x).uniform_(-epsilon, epsilon)).clamp(0, 1)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        (gradient,) = torch.autograd.grad(objective(logits_of(x_adv)), x_adv)
        x_adv = x_adv.detach() + step_size * gradient.sign()
        x_adv = torch.minimum(torch.maximum(x_adv, x - epsilon), x + epsilon).clamp(0, 1)
    return x_adv.detach()


def _kl(reference_logits, logits):
    import torch

    log_p = torch.log_softmax(reference_logits.float(), 1)
    log_q = torch.log_softmax(logits.float(), 1)
    return (log_p.exp() * (log_p - log_q)).sum(1).mean()


def adv_dpnp_loss(features, head, x, y, x_adv):
    """The Adv-DPNP objective of `keras_dpnp.methods.prototype_losses` at its defaults."""
    import torch
    from torch.nn import functional

    z = features(x).float()
    class_vectors = head.class_vectors()
    fixed = class_vectors.detach()
    logits = z @ class_vectors.T
    one_hot = functional.one_hot(y, NUM_CLASSES).bool()
    true = logits[one_hot]
    rival = logits.masked_fill(one_hot, -torch.inf).amax(1)
    unit = functional.normalize(class_vectors, dim=1)
    cos = (unit @ unit.T).masked_fill(torch.eye(NUM_CLASSES, dtype=torch.bool), -torch.inf)
    z_adv = features(x_adv).float()
    adversarial_logits = z_adv @ fixed.T
    return (
        functional.cross_entropy(logits, y)
        + ALIGN * 0.5 * (z - fixed[y]).square().sum(1).mean()
        + REPEL * torch.relu(MARGIN - (true - rival)).mean()
        + SEPARATION * cos.amax(1).mean()
        + ALIGN * 0.5 * (z_adv - fixed[y]).square().sum(1).mean()
        + BETA * _kl(z @ fixed.T, adversarial_logits)
    )


def _attack_objective(step, logits_of, x, y):
    import torch
    from torch.nn import functional

    if step == "pgd_at":
        return lambda logits: functional.cross_entropy(logits.float(), y)
    with torch.no_grad():
        reference = logits_of(x).float()
    return lambda logits: _kl(reference, logits)


def train_step_function(case, features, head, optimizer):
    """`step(x, y)`: one training step of `case['step']` (clean, pgd_at or adv_dpnp)."""
    import torch
    from torch.nn import functional

    def logits_of(images):
        return head(features(images))

    def step(x, y):
        with torch.autocast("cpu", torch.bfloat16, enabled=case["precision"] != "float32"):
            if case["step"] == "clean":
                loss = functional.cross_entropy(logits_of(x).float(), y)
            else:
                features.eval()
                objective = _attack_objective(case["step"], logits_of, x, y)
                x_adv = pgd(logits_of, x, objective, 8 / 255, 2 / 255, case["attack_steps"])
                features.train()
                if case["step"] == "pgd_at":
                    loss = functional.cross_entropy(logits_of(x_adv).float(), y)
                else:
                    loss = adv_dpnp_loss(features, head, x, y, x_adv)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    return step


def _timed(step, x, y, warmup_steps, timed_steps):
    """(wall seconds, process CPU seconds) per step."""
    for _ in range(warmup_steps):
        float(step(x, y).detach())
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(timed_steps):
        loss = step(x, y)
    float(loss.detach())
    return (
        (time.perf_counter() - started) / timed_steps,
        (time.process_time() - cpu_started) / timed_steps,
    )


def run_case(case):
    """Times `case['timed_steps']` steps after `case['warmup_steps']`; returns a result row.

    Args:
        case: the fields of `keras_dpnp.benchmarks.training_step.Case` as a dict, plus `threads`.
    """
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(case["threads"])
    if case["precision"] not in ("float32", "mixed_bfloat16"):
        raise ValueError(
            f"the PyTorch steps run float32 or mixed_bfloat16 on the CPU, not {case['precision']}"
        )
    height, width, channels = case["image_shape"]
    features, head = build(case["backbone"], (height, width, channels), case["width"], case["step"])
    features = features.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(
        [*features.parameters(), *head.parameters()],
        lr=0.01,
        momentum=0.9,
        nesterov=True,
        weight_decay=5e-4,
    )
    x = torch.rand(case["batch_size"], channels, height, width)
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, NUM_CLASSES, (case["batch_size"],))
    step = train_step_function(case, features, head, optimizer)
    seconds, cpu_seconds = _timed(step, x, y, case["warmup_steps"], case["timed_steps"])
    return {
        "images_per_second": case["batch_size"] / seconds,
        "seconds_per_step": seconds,
        "cpu_seconds_per_step": cpu_seconds,
        "threads": torch.get_num_threads(),
        "pytorch": torch.__version__,
    }


def main(argv):
    if argv[1:] == ["--probe"]:
        print(json.dumps(probe()))
        return
    print(json.dumps(run_case(json.loads(argv[1]))))


if __name__ == "__main__":
    main(sys.argv)
