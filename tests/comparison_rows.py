"""Rows of a comparison as training and its robustness report leave them, for the tests of
the comparison's table and frontier."""

from keras_dpnp.config import TrainConfig
from keras_dpnp.training import comparison


def row(label, seed, clean, autoattack=None, method="trades", autoattack_points=450, **flags):
    run = comparison.Run(label, seed, TrainConfig(seed=seed, **flags))
    results = {
        "seconds_per_epoch": 10.0 + seed,
        "clean_accuracy": clean - 0.05,
        "pgd_accuracy": 0.5,
        "method": method,
        "attack": "PGD-20 (CE)",
        "validation": {"clean_accuracy": 0.9},
        "final_train_logs": {"proto_max_cos": 0.1},
    }
    if autoattack is not None:
        results["report"] = {
            "clean": clean,
            "pgd": 0.6,
            "fgsm": 0.7,
            "cw_linf": 0.65,
            "autoattack": autoattack,
        }
        results["report_points"] = {
            "clean": 450,
            "pgd": 450,
            "fgsm": 450,
            "cw_linf": 450,
            "autoattack": autoattack_points,
        }
    return run, results
