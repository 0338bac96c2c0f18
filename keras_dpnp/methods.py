"""Training methods: how a batch (clean, and adversarial when the method attacks) becomes a loss.

A method is registered under its `--method` name. Each one states the head it uses by default and
the objective its training attack maximises (None: it trains on clean data only), and turns a batch
into named loss terms plus the total.
"""

import abc
import dataclasses
import math

import tensorflow as tf

from keras_dpnp import losses
from keras_dpnp.attacks.pgd import PGDConfig
from keras_dpnp.heads import HEADS

ALIGN_TARGETS = ("both", "features")


@dataclasses.dataclass(frozen=True)
class LossWeights:
    """Weights of the Adv-DPNP loss terms and the repulsion margin (SPEC §2); each may be 0.

    Defaults are SPEC's starting values except alignment: 10/r² (r = 4), chosen on validation
    with `LossForm.align_target='features'` (docs/results_digits.md, "Prototype geometry";
    SPEC's start: 0.1/r² on both).
    """

    ce: float = 1.0
    align: float = 10 / 16
    repel: float = 0.1
    margin: float = 1.0
    separation: float = 0.1
    beta: float = 6.0
    adv_ce: float = 0.0

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(
                    f"loss weight {field.name} must be a finite number >= 0, got {value}"
                )


@dataclasses.dataclass(frozen=True)
class LossForm:
    """How the prototype terms are formed: the separation term's form, what alignment moves
    (`features`: the prototype in the alignment term is under `stop_gradient`; `both`), and
    the dual-branch rule (adversarial terms see fixed prototypes)."""

    separation: str = "max_cos"
    align_target: str = "features"
    dual_branch: bool = True

    def __post_init__(self):
        if self.separation not in losses.SEPARATION_FORMS:
            raise ValueError(
                f"separation form must be one of {losses.SEPARATION_FORMS}, got {self.separation!r}"
            )
        if self.align_target not in ALIGN_TARGETS:
            raise ValueError(
                f"align target must be one of {ALIGN_TARGETS}, got {self.align_target!r}"
            )


@dataclasses.dataclass(frozen=True)
class Batch:
    """What a method sees of a training batch.

    `features` and `adversarial_features` are the backbone's outputs in training mode on the
    clean and adversarial images (None where the method does not use them); `head` maps
    features to logits (the prototype head also gives `class_vectors()` and `logits_with`);
    `align_scale` is the alignment warm-up factor of this epoch.
    """

    labels: tf.Tensor
    head: object
    features: tf.Tensor | None = None
    adversarial_features: tf.Tensor | None = None
    align_scale: tf.Tensor | float = 1.0


@dataclasses.dataclass(frozen=True)
class BatchLosses:
    """What a method makes of a batch: the total, its named terms, and the logits it saw.

    `logits` are the clean logits (None for a method that never sees clean data in training mode);
    `features` the clean features of the prototype methods, for the geometry logs.
    """

    total: tf.Tensor
    terms: dict
    logits: tf.Tensor | None
    adversarial_logits: tf.Tensor | None = None
    features: tf.Tensor | None = None


class Method(abc.ABC):
    """Base of every training method.

    `uses_clean`: the method's loss reads the clean features (every method but PGD-AT).
    """

    name = ""
    default_head = "linear"
    attack_objective = None
    needs_prototypes = False
    uses_clean = True
    term_names = ("ce",)

    def head_for(self, head="auto"):
        """The head kind this method trains with: `head`, or the method's default for 'auto'."""
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        kind = self.default_head if head == "auto" else head
        if self.needs_prototypes and kind != "prototype":
            raise ValueError(f"--method={self.name} needs the prototype head; drop --head={head}")
        return kind

    def training_attack(self, objective="auto", **settings):
        """The `PGDConfig` of the training attack; `objective='auto'` takes the method's own
        (CE for a method that trains without an attack). `settings`: the other fields."""
        if objective == "auto":
            objective = self.attack_objective or "ce"
        return PGDConfig(objective=objective, **settings)

    @abc.abstractmethod
    def batch_losses(self, batch, weights, form):
        """The `BatchLosses` of a `Batch` under `LossWeights` and a `LossForm`.

        `batch.adversarial_features` is None when `attack_objective` is None.
        """


METHODS = {}


def register(cls):
    """Class decorator adding a method to the `--method` registry."""
    METHODS[cls.name] = cls()
    return cls


def get_method(name):
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {sorted(METHODS)}")
    return METHODS[name]


@register
class Standard(Method):
    """Cross-entropy on clean data."""

    name = "standard"

    def batch_losses(self, batch, weights, form):
        logits = batch.head(batch.features)
        ce = losses.cross_entropy(logits, batch.labels)
        return BatchLosses(total=ce, terms={"ce": ce}, logits=logits)


CLEAN_TERMS = ("ce", "align", "repel", "separation")
ADVERSARIAL_TERMS = ("align_adv", "consistency", "adv_ce")


@register
class PGDAT(Method):
    """Madry et al.: cross-entropy on PGD-CE examples only."""

    name = "pgd_at"
    attack_objective = "ce"
    uses_clean = False
    term_names = ("adv_ce",)

    def batch_losses(self, batch, weights, form):
        adv_logits = batch.head(batch.adversarial_features)
        adv_ce = losses.cross_entropy(adv_logits, batch.labels)
        return BatchLosses(
            total=adv_ce, terms={"adv_ce": adv_ce}, logits=None, adversarial_logits=adv_logits
        )


@register
class TRADES(Method):
    """Zhang et al.: `CE(clean) + β·KL(clean ‖ adv)`; the attack maximises the KL."""

    name = "trades"
    attack_objective = "kl"
    term_names = ("ce", "consistency")

    def batch_losses(self, batch, weights, form):
        logits = batch.head(batch.features)
        adv_logits = batch.head(batch.adversarial_features)
        terms = {
            "ce": losses.cross_entropy(logits, batch.labels),
            "consistency": losses.kl_divergence(logits, adv_logits),
        }
        total = terms["ce"] + weights.beta * terms["consistency"]
        return BatchLosses(total=total, terms=terms, logits=logits, adversarial_logits=adv_logits)


@register
class MART(Method):
    """Wang et al.: boosted CE on adversarial examples + `β·KL·(1 − p_y(clean))`."""

    name = "mart"
    attack_objective = "ce"
    term_names = ("boosted_ce", "weighted_kl")

    def batch_losses(self, batch, weights, form):
        y = batch.labels
        logits = batch.head(batch.features)
        adv_logits = batch.head(batch.adversarial_features)
        terms = {
            "boosted_ce": losses.boosted_cross_entropy(adv_logits, y),
            "weighted_kl": losses.misclassification_aware_kl(logits, adv_logits, y),
        }
        total = terms["boosted_ce"] + weights.beta * terms["weighted_kl"]
        return BatchLosses(total=total, terms=terms, logits=logits, adversarial_logits=adv_logits)


def prototype_losses(batch, weights, form):
    """The Adv-DPNP objective with the dual-branch rule.

    The clean branch sees the live prototypes `C`; the adversarial branch sees `stop_gradient(C)`
    (unless `form.dual_branch` is off), so adversarial terms move the feature extractor only.
    Without adversarial features it is DPNP's clean branch alone.
    """
    w, head, y, z = weights, batch.head, batch.labels, batch.features
    align_scale = tf.cast(batch.align_scale, tf.float32)
    class_vectors = head.class_vectors()
    logits = head.logits_with(z, class_vectors)
    anchors = tf.stop_gradient(class_vectors) if form.align_target == "features" else class_vectors
    terms = {
        "ce": losses.cross_entropy(logits, y),
        "align": losses.alignment(z, tf.gather(anchors, y)),
        "repel": losses.repulsion(logits, y, w.margin),
        "separation": losses.separation(class_vectors, form.separation),
    }
    total = (
        w.ce * terms["ce"]
        + w.align * align_scale * terms["align"]
        + w.repel * terms["repel"]
        + w.separation * terms["separation"]
    )
    adversarial_logits = None
    if batch.adversarial_features is not None:
        fixed = tf.stop_gradient(class_vectors) if form.dual_branch else class_vectors
        fixed_anchors = tf.stop_gradient(fixed) if form.align_target == "features" else fixed
        z_adv = batch.adversarial_features
        adversarial_logits = head.logits_with(z_adv, fixed)
        terms["align_adv"] = losses.alignment(z_adv, tf.gather(fixed_anchors, y))
        terms["consistency"] = losses.kl_divergence(head.logits_with(z, fixed), adversarial_logits)
        terms["adv_ce"] = losses.cross_entropy(adversarial_logits, y)
        total += (
            w.align * align_scale * terms["align_adv"]
            + w.beta * terms["consistency"]
            + w.adv_ce * terms["adv_ce"]
        )
    return BatchLosses(
        total=total, terms=terms, logits=logits, adversarial_logits=adversarial_logits, features=z
    )


@register
class DPNP(Method):
    """Adv-DPNP's clean branch alone: deep positive-negative prototypes without an attack."""

    name = "dpnp"
    default_head = "prototype"
    needs_prototypes = True
    term_names = CLEAN_TERMS

    def batch_losses(self, batch, weights, form):
        return prototype_losses(batch, weights, form)


@register
class AdvDPNP(Method):
    """Adversarially trained DPNP: clean branch plus the adversarial branch on fixed prototypes."""

    name = "adv_dpnp"
    default_head = "prototype"
    attack_objective = "kl"
    needs_prototypes = True
    term_names = CLEAN_TERMS + ADVERSARIAL_TERMS

    def batch_losses(self, batch, weights, form):
        return prototype_losses(batch, weights, form)
