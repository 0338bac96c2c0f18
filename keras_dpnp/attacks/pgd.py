"""In-graph projected gradient descent (Madry et al.), shared by training and evaluation."""

import dataclasses
import math

import keras
import tensorflow as tf

from keras_dpnp import losses

NORMS = ("linf", "l2")
OBJECTIVES = ("ce", "kl", "margin")
# Where a random start puts the first point: anywhere in the ε-ball (Madry et al.), or within
# 0.001·N(0, 1) of the image, as Zhang et al.'s TRADES code starts its KL attack.
STARTS = ("uniform", "small_normal")
SMALL_NORMAL_SCALE = 0.001


@dataclasses.dataclass(frozen=True)
class PGDConfig:
    """One PGD attack: radius, step, number of steps, norm, objective, random start and its
    kind (`STARTS`)."""

    epsilon: float = 8 / 255
    step_size: float = 2 / 255
    steps: int = 10
    norm: str = "linf"
    objective: str = "ce"
    random_start: bool = True
    start: str = "uniform"

    def __post_init__(self):
        if not (math.isfinite(self.epsilon) and math.isfinite(self.step_size)):
            raise ValueError(
                f"attack epsilon and step size must be finite numbers, got "
                f"{self.epsilon} and {self.step_size}"
            )
        if self.epsilon < 0:
            raise ValueError(f"epsilon must be >= 0, got {self.epsilon}")
        if self.step_size <= 0:
            raise ValueError(f"attack step size must be > 0, got {self.step_size}")
        if self.steps < 1:
            raise ValueError(f"attack steps must be >= 1, got {self.steps}")
        if self.norm not in NORMS:
            raise ValueError(f"attack norm must be one of {NORMS}, got {self.norm!r}")
        if self.objective not in OBJECTIVES:
            raise ValueError(
                f"attack objective must be one of {OBJECTIVES}, got {self.objective!r}"
            )
        if self.start not in STARTS:
            raise ValueError(f"attack start must be one of {STARTS}, got {self.start!r}")

    def step_at(self, epsilon):
        """The step for the radius `epsilon` (a number or a tensor, e.g. an ε warm-up): the
        step size scaled by ε / `self.epsilon`, which must be > 0."""
        if not tf.is_tensor(epsilon) and epsilon == self.epsilon:
            return self.step_size
        return self.step_size * epsilon / self.epsilon


def _per_example_norm(t):
    return tf.sqrt(tf.reduce_sum(tf.square(t), axis=tf.range(1, tf.rank(t)), keepdims=True))


def project(delta, epsilon, norm):
    """Nearest point of the ε-ball (of `norm`) to each example's perturbation."""
    if norm == "linf":
        return tf.clip_by_value(delta, -epsilon, epsilon)
    factor = tf.minimum(1.0, epsilon / (_per_example_norm(delta) + 1e-12))
    return delta * factor


def _replica_share(draw, shape):
    """`draw(shape)` for this replica's slice of the global batch.

    Under a `tf.distribute` strategy every replica draws the noise of the whole global batch
    (their seeds agree) and keeps its own rows, so the random start does not depend on how the
    batch is split over replicas.
    """
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context is not None else 1
    if replicas == 1:
        return draw(shape)
    rows = shape[0]
    noise = draw(tf.concat([[rows * replicas], shape[1:]], axis=0))
    first = tf.cast(context.replica_id_in_sync_group, tf.int32) * rows
    return noise[first : first + rows]


def random_start(x, epsilon, norm, seed_generator=None, start="uniform"):
    """A random point of the ε-ball around `x`, clipped to [0, 1]: uniform in the ball, or
    (`start='small_normal'`) `x + 0.001·N(0, 1)` projected into it."""
    shape = tf.shape(x)
    if start == "small_normal":
        noise = _replica_share(lambda s: keras.random.normal(s, seed=seed_generator), shape)
        delta = project(noise * SMALL_NORMAL_SCALE, epsilon, norm)
    elif norm == "linf":
        delta = (
            _replica_share(lambda s: keras.random.uniform(s, -1.0, 1.0, seed=seed_generator), shape)
            * epsilon
        )
    else:
        direction = _replica_share(lambda s: keras.random.normal(s, seed=seed_generator), shape)
        direction /= _per_example_norm(direction) + 1e-12
        n = tf.cast(tf.reduce_prod(shape[1:]), tf.float32)
        radius = _replica_share(
            lambda s: keras.random.uniform(s, seed=seed_generator), shape[:1]
        ) ** (1.0 / n)
        delta = direction * tf.reshape(radius, [-1] + [1] * (len(x.shape) - 1)) * epsilon
    return tf.clip_by_value(x + delta, 0.0, 1.0)


def _objective(name, logits, labels, reference_logits):
    if name == "ce":
        return losses.cross_entropy(logits, labels)
    if name == "kl":
        return losses.kl_divergence(reference_logits, logits)
    return losses.margin_loss(logits, labels)


def pgd(
    logits_fn,
    x,
    labels,
    config,
    *,
    epsilon=None,
    reference_logits=None,
    seed_generator=None,
    loss_scale=1.0,
):
    """Maximises the attack objective over the ε-ball around `x` within [0, 1].

    `logits_fn` maps float32 images to logits (call the model in inference mode so BatchNorm
    statistics stay untouched). `epsilon` may be a tensor (an ε warm-up) overriding
    `config.epsilon`; the step then scales with it. The loop is a single `tf.while_loop`,
    and the result is `stop_gradient`-ed.

    The perturbation, its step and its projection stay in float32 whatever the model's compute
    dtype, so `‖x_adv − x‖ ≤ ε` holds to float32 rounding. `loss_scale` multiplies the objective
    before differentiation (a float16 model's input gradients would otherwise underflow); the
    step direction does not depend on it, and a non-finite gradient entry counts as zero.
    """
    x = tf.cast(x, tf.float32)
    eps = tf.cast(config.epsilon if epsilon is None else epsilon, tf.float32)
    step = config.step_at(eps) if config.epsilon > 0 else tf.constant(0.0)
    if config.objective == "kl" and reference_logits is None:
        reference_logits = logits_fn(x)
    if reference_logits is not None:
        reference_logits = tf.stop_gradient(tf.cast(reference_logits, tf.float32))
    x_adv = (
        random_start(x, eps, config.norm, seed_generator, config.start)
        if config.random_start
        else x
    )

    def body(i, x_adv):
        with tf.GradientTape() as tape:
            tape.watch(x_adv)
            loss = _objective(config.objective, logits_fn(x_adv), labels, reference_logits)
            loss = loss * loss_scale
        grad = tf.cast(
            tape.gradient(loss, x_adv, unconnected_gradients=tf.UnconnectedGradients.ZERO),
            tf.float32,
        )
        grad = tf.where(tf.math.is_finite(grad), grad, tf.zeros_like(grad))
        if config.norm == "linf":
            x_adv = x_adv + step * tf.sign(grad)
        else:
            x_adv = x_adv + step * grad / (_per_example_norm(grad) + 1e-12)
        x_adv = tf.clip_by_value(x + project(x_adv - x, eps, config.norm), 0.0, 1.0)
        return i + 1, x_adv

    _, x_adv = tf.while_loop(lambda i, _: i < config.steps, body, (tf.constant(0), x_adv))
    return tf.stop_gradient(x_adv)
