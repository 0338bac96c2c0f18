"""Common corruptions (SPEC §5): the accuracy under them, and the sets generated here.

`accuracy` evaluates a model on the 15 CIFAR-10-C corruptions × 5 severities; `generated`
makes corrupted copies of any test set with CIFAR-10-C's parameters, from the corruption
families `noise`, `blur`, `weather` (with the frost `textures`) and `digital`.
"""

from keras_dpnp.evaluation.corruptions.accuracy import (
    SOURCES,
    CorruptionSettings,
    corruption_accuracy,
    summarise,
)

__all__ = ["CorruptionSettings", "SOURCES", "corruption_accuracy", "summarise"]
