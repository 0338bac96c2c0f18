import numpy as np
import pytest

from conftest import tiny_model
from keras_dpnp import methods


def _softmax(logits):
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _ce(logits, y):
    return float(np.mean(-np.log(_softmax(logits)[np.arange(len(y)), y])))


def _kl(p_logits, q_logits):
    p, q = _softmax(p_logits), _softmax(q_logits)
    return float(np.mean((p * np.log(p / q)).sum(1)))


def _batch_and_logits(method, batch, **kwargs):
    x, y = batch
    model = tiny_model(method, **kwargs)
    x_adv = model.adversarial_examples(x, y) if model.method.attack_objective else None
    out = model.method.batch_losses(
        model.training_batch(x, y, x_adv), model.loss_weights_config, model.loss_form
    )
    # Training-mode BatchNorm is deterministic for a given batch, so these are the logits seen.
    clean = np.asarray(model(x, training=True))
    adv = None if x_adv is None else np.asarray(model(x_adv, training=True))
    return out, clean, adv, y


def test_pgd_at_is_cross_entropy_on_adversarial_examples(batch):
    out, _, adv, y = _batch_and_logits("pgd_at", batch)
    assert float(out.total) == pytest.approx(_ce(adv, y), rel=1e-5)
    assert out.logits is None


def test_trades_is_ce_plus_beta_kl(batch):
    out, clean, adv, y = _batch_and_logits("trades", batch, loss_weights={"beta": 3.0})
    assert float(out.total) == pytest.approx(_ce(clean, y) + 3.0 * _kl(clean, adv), rel=1e-5)


def test_mart_is_boosted_ce_plus_weighted_kl(batch):
    out, clean, adv, y = _batch_and_logits("mart", batch)
    p, q = _softmax(clean), _softmax(adv)
    rival = np.where(np.eye(10, dtype=bool)[y], -np.inf, q).max(1)
    boosted = _ce(adv, y) - np.mean(np.log(1.0001 - rival))
    weighted = np.mean((p * np.log(p / q)).sum(1) * (1 - p[np.arange(len(y)), y]))
    assert float(out.total) == pytest.approx(boosted + 6.0 * weighted, rel=1e-4)


@pytest.mark.parametrize(
    "method,objective,head",
    [
        ("standard", None, "linear"),
        ("pgd_at", "ce", "linear"),
        ("trades", "kl", "linear"),
        ("mart", "ce", "linear"),
        ("dpnp", None, "prototype"),
        ("adv_dpnp", "kl", "prototype"),
    ],
)
def test_registry_defaults(method, objective, head):
    m = methods.get_method(method)
    assert (m.attack_objective, m.default_head) == (objective, head)
    assert tiny_model(method).head_kind == head


@pytest.mark.parametrize("method", ["pgd_at", "trades", "mart"])
def test_baselines_train_with_the_prototype_head_on_request(method, batch):
    x, y = batch
    model = tiny_model(method, head="prototype")
    model.compile(optimizer="sgd")
    before = np.array(model.head.prototypes)
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])
    assert not np.array_equal(before, np.array(model.head.prototypes))
