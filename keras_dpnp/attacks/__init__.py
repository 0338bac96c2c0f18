"""Adversarial attacks in pixel space [0, 1]."""

from keras_dpnp.attacks.pgd import (
    NORMS,
    OBJECTIVES,
    STARTS,
    PGDConfig,
    pgd,
    project,
    random_start,
)

__all__ = ["NORMS", "OBJECTIVES", "STARTS", "PGDConfig", "pgd", "project", "random_start"]
