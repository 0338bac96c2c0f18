"""Training methods: how a batch (clean, and adversarial when the method attacks) becomes a loss.

A method is registered under its `--method` name. Each one states the head it uses by default and
the objective its training attack maximises (None: it trains on clean data only), and turns a batch
into named loss terms plus the total.
"""

import abc
import dataclasses

import tensorflow as tf

from keras_dpnp import losses

ALIGN_TARGETS = ("both", "features")


@dataclasses.dataclass(frozen=True)
class LossWeights:
    """Weights and forms of the Adv-DPNP loss (SPEC §2); every one may be set to 0.

    Defaults are SPEC's starting values except alignment: 10/r² (r = 4) pulling the features
    only, chosen on validation in README "Prototype geometry" (SPEC's start: 0.1/r², both).
    """

    ce: float = 1.0
    align: float = 10 / 16
    repel: float = 0.1
    margin: float = 1.0
    separation: float = 0.1
    beta: float = 6.0
    adv_ce: float = 0.0
    separation_form: str = "max_cos"
    align_target: str = "features"
    dual_branch: bool = True

    def __post_init__(self):
        for name in ("ce", "align", "repel", "margin", "separation", "beta", "adv_ce"):
            if getattr(self, name) < 0:
                raise ValueError(f"loss weight {name} must be >= 0, got {getattr(self, name)}")
        if self.separation_form not in losses.SEPARATION_FORMS:
            raise ValueError(f"separation form must be one of {losses.SEPARATION_FORMS}, "
                             f"got {self.separation_form!r}")
        if self.align_target not in ALIGN_TARGETS:
            raise ValueError(f"align target must be one of {ALIGN_TARGETS}, got {self.align_target!r}")


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
    """Base of every training method."""

    name = ""
    default_head = "linear"
    attack_objective = None
    needs_prototypes = False
    term_names = ("ce",)

    @abc.abstractmethod
    def batch_losses(self, model, x, y, x_adv):
        """`x_adv` is None when `attack_objective` is None."""


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

    def batch_losses(self, model, x, y, x_adv):
        logits = model(x, training=True)
        ce = losses.cross_entropy(logits, y)
        return BatchLosses(total=ce, terms={"ce": ce}, logits=logits)


CLEAN_TERMS = ("ce", "align", "repel", "separation")
ADVERSARIAL_TERMS = ("align_adv", "consistency", "adv_ce")


@register
class PGDAT(Method):
    """Madry et al.: cross-entropy on PGD-CE examples only."""

    name = "pgd_at"
    attack_objective = "ce"
    term_names = ("adv_ce",)

    def batch_losses(self, model, x, y, x_adv):
        adv_logits = model(x_adv, training=True)
        adv_ce = losses.cross_entropy(adv_logits, y)
        return BatchLosses(total=adv_ce, terms={"adv_ce": adv_ce}, logits=None,
                           adversarial_logits=adv_logits)


@register
class TRADES(Method):
    """Zhang et al.: `CE(clean) + β·KL(clean ‖ adv)`; the attack maximises the KL."""

    name = "trades"
    attack_objective = "kl"
    term_names = ("ce", "consistency")

    def batch_losses(self, model, x, y, x_adv):
        logits = model(x, training=True)
        adv_logits = model(x_adv, training=True)
        terms = {"ce": losses.cross_entropy(logits, y),
                 "consistency": losses.kl_divergence(logits, adv_logits)}
        total = terms["ce"] + model.loss_weights_config.beta * terms["consistency"]
        return BatchLosses(total=total, terms=terms, logits=logits, adversarial_logits=adv_logits)


@register
class MART(Method):
    """Wang et al.: boosted CE on adversarial examples + `β·KL·(1 − p_y(clean))`."""

    name = "mart"
    attack_objective = "ce"
    term_names = ("boosted_ce", "weighted_kl")

    def batch_losses(self, model, x, y, x_adv):
        logits = model(x, training=True)
        adv_logits = model(x_adv, training=True)
        terms = {"boosted_ce": losses.boosted_cross_entropy(adv_logits, y),
                 "weighted_kl": losses.misclassification_aware_kl(logits, adv_logits, y)}
        total = terms["boosted_ce"] + model.loss_weights_config.beta * terms["weighted_kl"]
        return BatchLosses(total=total, terms=terms, logits=logits, adversarial_logits=adv_logits)


def prototype_losses(model, x, y, x_adv):
    """The Adv-DPNP objective with the dual-branch rule.

    The clean branch sees the live prototypes `C`; the adversarial branch sees `stop_gradient(C)`
    (unless `dual_branch` is off), so adversarial terms move the feature extractor only.
    """
    w = model.loss_weights_config
    head = model.head
    align_scale = tf.cast(model.align_warmup, tf.float32)
    z = model.backbone(x, training=True)
    class_vectors = head.class_vectors()
    logits = head.logits_with(z, class_vectors)
    anchors = tf.stop_gradient(class_vectors) if w.align_target == "features" else class_vectors
    terms = {
        "ce": losses.cross_entropy(logits, y),
        "align": losses.alignment(z, tf.gather(anchors, y)),
        "repel": losses.repulsion(logits, y, w.margin),
        "separation": losses.separation(class_vectors, w.separation_form),
    }
    total = (w.ce * terms["ce"] + w.align * align_scale * terms["align"]
             + w.repel * terms["repel"] + w.separation * terms["separation"])
    adversarial_logits = None
    if x_adv is not None:
        fixed = tf.stop_gradient(class_vectors) if w.dual_branch else class_vectors
        fixed_anchors = tf.stop_gradient(fixed) if w.align_target == "features" else fixed
        z_adv = model.backbone(x_adv, training=True)
        adversarial_logits = head.logits_with(z_adv, fixed)
        terms["align_adv"] = losses.alignment(z_adv, tf.gather(fixed_anchors, y))
        terms["consistency"] = losses.kl_divergence(head.logits_with(z, fixed), adversarial_logits)
        terms["adv_ce"] = losses.cross_entropy(adversarial_logits, y)
        total += (w.align * align_scale * terms["align_adv"] + w.beta * terms["consistency"]
                  + w.adv_ce * terms["adv_ce"])
    return BatchLosses(total=total, terms=terms, logits=logits,
                       adversarial_logits=adversarial_logits, features=z)


@register
class DPNP(Method):
    """Adv-DPNP's clean branch alone: deep positive-negative prototypes without an attack."""

    name = "dpnp"
    default_head = "prototype"
    needs_prototypes = True
    term_names = CLEAN_TERMS

    def batch_losses(self, model, x, y, x_adv):
        return prototype_losses(model, x, y, None)


@register
class AdvDPNP(Method):
    """Adversarially trained DPNP: clean branch plus the adversarial branch on fixed prototypes."""

    name = "adv_dpnp"
    default_head = "prototype"
    attack_objective = "kl"
    needs_prototypes = True
    term_names = CLEAN_TERMS + ADVERSARIAL_TERMS

    def batch_losses(self, model, x, y, x_adv):
        return prototype_losses(model, x, y, x_adv)
