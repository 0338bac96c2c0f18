"""The robustness report of a training run directory, at the run's own ε, norm and step."""

import json
import os

from keras_dpnp.evaluation import loading, report, robustness


def evaluate_run(run_dir, suite="headline", *, checkpoint="best", seed=0, batch_size=256,
                 progress=True):
    """Evaluates a run's checkpoint on its test split; writes and returns the report dict.

    A report already in the run directory for the same suite, seed and checkpoint file is
    returned as it is, so a comparison rerun reads each test set once.
    """
    from keras_dpnp.data import load_dataset

    source = loading.find_model(run_dir, checkpoint)
    config = source.config
    saved = os.path.join(source.folder, report.JSON_NAME)
    if os.path.isfile(saved):
        with open(saved, encoding="utf-8") as f:
            previous = json.load(f)
        if (previous.get("suite"), previous.get("seed"),
                previous.get("model", {}).get("path")) == (suite, seed, source.model_path):
            return previous
    model = loading.load_model(source.model_path)
    splits = load_dataset(config.dataset, **config.data_options())
    loading.check_fits_data(model, splits.info)
    results = robustness.evaluate_robustness(
        model, *splits.test, epsilon=config.epsilon, norm=config.attack_norm, suite=suite,
        seed=seed, batch_size=batch_size, step_size=config.attack_step_size, progress=progress)
    report.describe_source(results, source.model_path, model, splits)
    report.write_report(results, source.folder)
    return results
