import json
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_model
from keras_dpnp.attacks.pgd import pgd
from keras_dpnp.methods import prototype_losses
from keras_dpnp.model import AdvDPNP, inference_function
from keras_dpnp.training.run_dir import ModelLoadError, load_model


def _prototype_gradients(model, x, y, x_adv):
    with tf.GradientTape(persistent=True) as tape:
        batch = prototype_losses(
            model.training_batch(x, y, x_adv), model.loss_weights_config, model.loss_form
        )
    return {name: tape.gradient(term, model.head.prototypes) for name, term in batch.terms.items()}


def test_adversarial_terms_give_the_prototypes_no_gradient(batch):
    x, y = batch
    model = tiny_model(loss_form={"align_target": "both"})
    x_adv = model.adversarial_examples(x, y)
    grads = _prototype_gradients(model, x, y, x_adv)
    for name in ("align_adv", "consistency", "adv_ce"):
        assert grads[name] is None, name
    for name in ("ce", "align", "repel", "separation"):
        assert grads[name] is not None and float(tf.norm(grads[name])) > 0, name


def test_without_dual_branch_adversarial_terms_reach_the_prototypes(batch):
    x, y = batch
    model = tiny_model(loss_form={"dual_branch": False, "align_target": "both"})
    grads = _prototype_gradients(model, x, y, model.adversarial_examples(x, y))
    for name in ("align_adv", "consistency", "adv_ce"):
        assert grads[name] is not None and float(tf.norm(grads[name])) > 0, name


def test_features_only_alignment_leaves_the_prototypes_alone(batch):
    x, y = batch
    model = tiny_model()  # the default target
    grads = _prototype_gradients(model, x, y, model.adversarial_examples(x, y))
    assert grads["align"] is None and grads["align_adv"] is None


def test_step_with_zero_clean_weights_keeps_prototypes_bit_identical(batch):
    x, y = batch
    weights = {"ce": 0.0, "align": 0.0, "repel": 0.0, "separation": 0.0, "beta": 6.0, "adv_ce": 1.0}
    model = tiny_model(loss_weights=weights)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9, weight_decay=5e-4))
    prototypes = np.array(model.head.prototypes)
    backbone = [np.array(v) for v in model.backbone.trainable_variables]
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    np.testing.assert_array_equal(np.array(model.head.prototypes), prototypes)
    moved = [
        not np.array_equal(a, np.array(b))
        for a, b in zip(backbone, model.backbone.trainable_variables)
    ]
    assert all(moved)


def test_clean_branch_moves_the_prototypes(batch):
    x, y = batch
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    prototypes = np.array(model.head.prototypes)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert not np.array_equal(np.array(model.head.prototypes), prototypes)


def test_fit_logs_every_term_and_the_geometry(batch):
    x, y = batch
    model = tiny_model(eval_attack={"epsilon": 0.2, "step_size": 0.05, "steps": 2})
    model.compile(optimizer="sgd")
    history = model.fit(x, y, batch_size=8, epochs=1, validation_data=(x, y), verbose=0)
    expected = {
        "loss",
        "ce",
        "align",
        "repel",
        "separation",
        "align_adv",
        "consistency",
        "adv_ce",
        "accuracy",
        "adv_accuracy",
        "proto_max_cos",
        "proto_mean_cos",
        "align_ratio",
        "feature_norm",
        "val_clean_accuracy",
        "val_pgd_accuracy",
    }
    assert expected <= set(history.history)
    logged = history.history
    total = (
        1.0 * logged["ce"][0]
        + 10 / 16 * (logged["align"][0] + logged["align_adv"][0])
        + 0.1 * logged["repel"][0]
        + 0.1 * logged["separation"][0]
        + 6.0 * logged["consistency"][0]
    )
    assert logged["loss"][0] == pytest.approx(total, rel=1e-4)


def test_fit_in_user_code_with_a_tf_data_pipeline():
    rng = np.random.default_rng(0)
    centres = rng.random((10, 8, 8, 1)).astype("float32")
    labels = np.repeat(np.arange(10), 20)
    images = np.clip(centres[labels] + 0.05 * rng.normal(size=(200, 8, 8, 1)), 0, 1)
    ds = (
        tf.data.Dataset.from_tensor_slices((images.astype("float32"), labels))
        .shuffle(200, seed=0)
        .batch(32)
    )
    model = tiny_model("dpnp", feature_dim=16)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    model.fit(ds, epochs=15, verbose=0)
    accuracy = np.mean(np.argmax(model.predict(images, verbose=0), 1) == labels)
    assert accuracy > 0.9


def test_keras_file_reloads_and_fit_continues(batch, tmp_path):
    x, y = batch
    model = tiny_model(eval_attack={"epsilon": 0.2, "step_size": 0.05, "steps": 2})
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        reloaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )
    assert reloaded.method_name == "adv_dpnp"
    assert reloaded.attack_config == model.attack_config
    assert reloaded.optimizer.iterations.numpy() == model.optimizer.iterations.numpy()
    reloaded.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert reloaded.optimizer.iterations.numpy() == model.optimizer.iterations.numpy() + 2


def test_prototype_methods_refuse_a_linear_head():
    with pytest.raises(ValueError, match="needs the prototype head"):
        tiny_model("adv_dpnp", head="linear")


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown method 'foo'.*adv_dpnp"):
        tiny_model("foo")


def test_training_attack_on_folded_batchnorm_matches_the_model_call(batch):
    """The attack runs on the BatchNorm-folded pass: same examples as PGD on `model(x)`."""
    x, y = batch
    model = tiny_model(
        attack={
            "epsilon": 0.2,
            "step_size": 0.05,
            "steps": 3,
            "objective": "ce",
            "random_start": False,
        }
    )
    assert len(model._folded_backbone.folded_layers) == 3
    rng = np.random.default_rng(1)
    for layer in model.backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0.0, 0.1, layer.moving_mean.shape))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, layer.moving_variance.shape))
    folded = model.adversarial_examples(x, y)
    plain = pgd(lambda images: model(images, training=False), x, y, model.attack_config)
    assert float(tf.reduce_max(tf.abs(folded - x))) == pytest.approx(0.15, abs=1e-6)
    np.testing.assert_array_equal(folded.numpy(), plain.numpy())


def test_inference_logits_follow_the_weights_as_they_change(batch):
    """The folded inference pass equals `model(x)` before and after the BatchNorm statistics
    move, so evaluation and per-epoch validation can call it on a model that trains."""
    x, _ = batch
    model = tiny_model()
    forward = tf.function(inference_function(model))
    rng = np.random.default_rng(2)
    for _ in range(2):
        for layer in model.backbone.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.moving_mean.assign(rng.normal(0.0, 0.5, layer.moving_mean.shape))
                layer.moving_variance.assign(rng.uniform(0.3, 2.0, layer.moving_variance.shape))
        expected = model(x, training=False).numpy()
        np.testing.assert_allclose(forward(x).numpy(), expected, atol=1e-5 * np.abs(expected).max())


def test_inference_function_calls_any_other_model_in_inference_mode():
    inputs = keras.Input((4,))
    other = keras.Model(inputs, keras.layers.Dropout(0.9)(keras.layers.Dense(3)(inputs)))
    x = np.ones((2, 4), np.float32)
    np.testing.assert_array_equal(inference_function(other)(x), other(x, training=False))


def test_a_model_config_written_before_loss_form_keeps_its_form():
    model = tiny_model(
        loss_form={"separation": "hinge", "align_target": "both", "dual_branch": False}
    )
    older = model.get_config()
    form = older.pop("loss_form")
    del older["align_warmup_epochs"], older["epsilon_warmup_epochs"]
    older["loss_weights"] = {
        **older["loss_weights"],
        "separation_form": form["separation"],
        "align_target": form["align_target"],
        "dual_branch": form["dual_branch"],
    }
    restored = AdvDPNP.from_config(older)
    assert restored.loss_form == model.loss_form
    assert restored.loss_weights_config == model.loss_weights_config


def test_warmups_ramp_linearly_over_their_epochs():
    model = tiny_model(align_warmup_epochs=4, epsilon_warmup_epochs=2)
    ramp = []
    for epoch in (0, 1, 2, 5):
        model.start_epoch(epoch)
        ramp.append((float(model.align_warmup), float(model.epsilon_warmup)))
    assert ramp == [(0.0, 0.5), (0.25, 1.0), (0.5, 1.0), (1.0, 1.0)]
    steady = tiny_model()
    steady.start_epoch(0)
    assert (float(steady.align_warmup), float(steady.epsilon_warmup)) == (1.0, 1.0)


def _with_config_value(path, target, edit):
    """Rewrites the .keras file `path` into `target` with `edit(model config dict)` applied."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w") as copy:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "config.json":
                config = json.loads(data)
                edit(config["config"])
                data = json.dumps(config).encode()
            copy.writestr(item, data)


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda c: c.update(radius=float("nan")), "radius must be a finite number, got nan"),
        (lambda c: c.update(logit_scale=float("inf")), "logit_scale must be a finite number"),
        (lambda c: c["attack"].update(epsilon=float("nan")), "must be finite numbers, got nan"),
        (lambda c: c["loss_weights"].update(ce=float("nan")), "loss weight ce must be a finite"),
    ],
)
def test_a_model_file_with_a_non_finite_setting_is_refused_on_load(tmp_path, edit, message):
    saved, broken = tmp_path / "model.keras", tmp_path / "broken.keras"
    tiny_model().save(saved)
    _with_config_value(saved, broken, edit)
    with pytest.raises(ModelLoadError, match=rf"could not load .*broken\.keras .*{message}"):
        load_model(str(broken))
