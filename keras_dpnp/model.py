"""`AdvDPNP`: a backbone and a classifier head, trained by a registered method in `train_step`."""

import dataclasses
import math

import keras
import tensorflow as tf

from keras_dpnp import compat, losses, methods
from keras_dpnp.attacks.pgd import PGDConfig, pgd
from keras_dpnp.backbones.folding import FoldedInference
from keras_dpnp.backbones.normalization import unit_range_pixels
from keras_dpnp.heads import LinearHead, PrototypeHead

# Scales the attack objective of a float16 model so that input gradients do not underflow.
FLOAT16_ATTACK_LOSS_SCALE = 1024.0
GEOMETRY_LOGS = ("proto_max_cos", "proto_mean_cos", "align_ratio", "feature_norm")
_ATTACK_SEED_KEY = "attack_seed_state"


# Keys of `LossForm` that `.keras` files written before it stored under "loss_weights".
_FORM_KEYS_IN_OLD_FILES = {
    "separation_form": "separation",
    "align_target": "align_target",
    "dual_branch": "dual_branch",
}


def _as_dataclass(cls, value):
    if value is None:
        return cls()
    return value if isinstance(value, cls) else cls(**value)


def _linear_warmup(epoch, epochs):
    """The fraction of a linear warm-up over `epochs` epochs reached at `epoch` (from 0)."""
    return min(1.0, epoch / epochs) if epochs else 1.0


def _for_keras_reduction(results):
    """Step results shaped for Keras's reduction over replicas.

    Across several workers Keras 3 averages step results with `strategy.reduce(MEAN, axis=0)`,
    which rejects scalars; the results are synchronised metric values, so a one-element vector
    reduces to the same scalar.
    """
    if compat.in_multi_worker_mode(tf.distribute.get_strategy()):
        return {name: tf.reshape(value, [1]) for name, value in results.items()}
    return results


@keras.saving.register_keras_serializable(package="keras_dpnp")
class AdvDPNP(keras.Model):
    """Backbone `f` (images in [0, 1] -> features z) and a head (features -> logits).

    Images may also come as uint8 in 0..255 (as `load_dataset` returns them): `call`,
    `features`, `predict`, `fit` and `evaluate` divide them by 255 first.

    `method` picks how a batch becomes a loss (`keras_dpnp.methods.METHODS`); for `adv_dpnp`
    the training step crafts PGD examples with BatchNorm in inference mode, then applies the
    dual-branch rule: only clean-branch terms reach the prototypes. `test_step` reports clean
    accuracy and, when `eval_attack` is set, accuracy under that PGD attack.

    Args:
        backbone: a `keras.Model` mapping images [N, H, W, C] in [0, 1] to features [N, d].
        num_classes: number of classes K.
        head: `auto` (the method's default), `prototype` or `linear`.
        radius, logits, logit_scale, prototype_init: the prototype head (see `PrototypeHead`).
        method: a name in `METHODS`.
        loss_weights: `LossWeights` (or its dict) for the prototype methods.
        loss_form: `LossForm` (or its dict): separation form, alignment target, dual branch.
        attack: `PGDConfig` of the training attack (a dict of its fields from a saved config;
            a missing objective is the method's own); None: the method's default attack.
        eval_attack: `PGDConfig` (or its dict) used by `test_step`; None reports clean accuracy
            only.
        align_warmup_epochs: epochs over which the alignment weight ramps up from 0.
        epsilon_warmup_epochs: epochs over which the training ε ramps up from ε/N.
        seed: seeds the attacks' random starts.
    """

    def __init__(
        self,
        backbone,
        num_classes,
        *,
        head="auto",
        radius=4.0,
        logits="dot",
        logit_scale=10.0,
        prototype_init="random",
        method="adv_dpnp",
        loss_weights=None,
        loss_form=None,
        attack=None,
        eval_attack=None,
        align_warmup_epochs=0,
        epsilon_warmup_epochs=0,
        seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (("radius", radius), ("logit_scale", logit_scale)):
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value}")
        self.method = methods.get_method(method)
        head_kind = self.method.head_for(head)
        self.backbone = backbone
        self._folded_backbone = FoldedInference.of(backbone)
        self.num_classes = int(num_classes)
        self.head_kind = head_kind
        if head_kind == "prototype":
            self.head = PrototypeHead(
                num_classes,
                radius=radius,
                logits=logits,
                scale=logit_scale,
                init=prototype_init,
                init_seed=seed,
                name="prototype_head",
            )
        else:
            self.head = LinearHead(num_classes, name="linear_head")
        self.head_options = {
            "radius": float(radius),
            "logits": logits,
            "logit_scale": float(logit_scale),
            "prototype_init": prototype_init,
        }
        self.loss_weights_config = _as_dataclass(methods.LossWeights, loss_weights)
        self.loss_form = _as_dataclass(methods.LossForm, loss_form)
        if not isinstance(attack, PGDConfig):
            attack = self.method.training_attack(**(attack or {}))
        self.attack_config = attack
        self.eval_attack_config = (
            None if eval_attack is None else _as_dataclass(PGDConfig, eval_attack)
        )
        self.align_warmup_epochs = int(align_warmup_epochs)
        self.epsilon_warmup_epochs = int(epsilon_warmup_epochs)
        self.seed = int(seed)
        self.attack_seed = keras.random.SeedGenerator(seed, name="attack_seed")
        self.align_warmup = self.add_weight(
            name="align_warmup", shape=(), trainable=False, initializer="ones", dtype="float32"
        )
        self.epsilon_warmup = self.add_weight(
            name="epsilon_warmup", shape=(), trainable=False, initializer="ones", dtype="float32"
        )
        logged = ("loss",) + self.method.term_names
        if head_kind == "prototype":
            logged += GEOMETRY_LOGS
        self.term_trackers = [keras.metrics.Mean(name=name) for name in logged]
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self.adv_accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="adv_accuracy")
        self.clean_accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="clean_accuracy")
        self.pgd_accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="pgd_accuracy")
        self.build((None,) + tuple(backbone.input_shape[1:]))

    @property
    def method_name(self):
        return self.method.name

    def start_epoch(self, epoch):
        """Sets the warm-up factors (alignment weight, training ε) for `epoch` (from 0)."""
        self.align_warmup.assign(_linear_warmup(epoch, self.align_warmup_epochs))
        self.epsilon_warmup.assign(_linear_warmup(epoch + 1, self.epsilon_warmup_epochs))

    def build(self, input_shape):
        if not self.head.built:
            self.head.build(tuple(self.backbone.output_shape))
        self.built = True

    def call(self, inputs, training=False):
        return self.head(self.backbone(unit_range_pixels(inputs), training=training))

    def features(self, inputs, training=False):
        return self.backbone(unit_range_pixels(inputs), training=training)

    def class_vectors(self):
        """Prototypes `C` [K, d] (prototype head) or the linear head's class weights [K, d]."""
        if self.head_kind == "prototype":
            return self.head.class_vectors()
        return tf.transpose(self.head.kernel)

    def compile(self, optimizer="sgd", **kwargs):
        """Like `keras.Model.compile`; prototypes are kept out of weight decay.

        Built under the `mixed_float16` policy, the model's optimizer is wrapped in
        `keras.optimizers.LossScaleOptimizer` (Keras does it here); `train_step` scales the loss
        with it, and it unscales the gradients and skips steps whose gradients are not finite.
        """
        super().compile(optimizer=optimizer, **kwargs)
        inner = getattr(self.optimizer, "inner_optimizer", self.optimizer)
        if getattr(inner, "weight_decay", None):
            inner.exclude_from_weight_decay(var_names=["prototypes"])

    def compile_from_config(self, config):
        """Recompiles a reloaded model (with its optimizer state) so `fit` can continue."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Builds the optimizer before `fit`/`evaluate`; the layers are built in `__init__`.

        Keras would first all-reduce a whole `(x, y)` batch to build from, which
        `MultiWorkerMirroredStrategy` cannot do (keras-team/keras#20585); nothing here needs it.
        """
        if self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)

    def adversarial_examples(self, x, y, config=None, *, epsilon=None):
        """PGD examples against this model (inference-mode BatchNorm).

        `config` defaults to the training attack; `epsilon` (e.g. a warmed-up ε) overrides its
        radius.
        """
        config = config or self.attack_config
        float16 = self.backbone.compute_dtype == "float16"
        return pgd(
            self._inference_logits_function(),
            x,
            y,
            config,
            epsilon=epsilon,
            seed_generator=self.attack_seed,
            loss_scale=FLOAT16_ATTACK_LOSS_SCALE if float16 else 1.0,
        )

    def inference_logits(self, images):
        """`self(images, training=False)`, computed with each BatchNorm folded into the
        convolution before it where the backbone allows it: the same function up to rounding,
        with fewer kernels per forward and backward pass. The folded weights are derived from
        the current variables on every call, so it stays right while the model trains.

        Args:
            images: [N, H, W, C] uint8 pixels or floats in [0, 1].

        Returns:
            Logits [N, K] in the head's compute dtype.
        """
        return self._inference_logits_function()(unit_range_pixels(images))

    def _inference_logits_function(self):
        """`self(images, training=False)`, with the BatchNorms folded into the convolutions
        when the backbone allows it (same function, fewer kernels; see `FoldedInference`)."""
        folded = self._folded_backbone
        if folded is None:
            return lambda images: self(images, training=False)
        weights = folded.folded_weights()
        return lambda images: self.head(folded(images, weights), training=False)

    def train_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        x = unit_range_pixels(x)
        x_adv = None
        if self.method.attack_objective is not None:
            epsilon = self.attack_config.epsilon * self.epsilon_warmup
            x_adv = self.adversarial_examples(x, y, epsilon=epsilon)
        with tf.GradientTape() as tape:
            batch = self.method.batch_losses(
                self.training_batch(x, y, x_adv), self.loss_weights_config, self.loss_form
            )
            # Gradients are summed over replicas, so each replica contributes its mean / replicas.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled = self.optimizer.scale_loss(batch.total / replicas)
        variables = self.trainable_variables
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        return self._log_train(batch, x, y)

    def training_batch(self, x, y, x_adv=None):
        """The `methods.Batch` of a training step: training-mode features of the clean images
        (when the method reads them) and of `x_adv`, the head and this epoch's warm-up."""
        features = self.backbone(x, training=True) if self.method.uses_clean else None
        adversarial = None if x_adv is None else self.backbone(x_adv, training=True)
        return methods.Batch(
            labels=y,
            head=self.head,
            features=features,
            adversarial_features=adversarial,
            align_scale=self.align_warmup,
        )

    def _log_train(self, batch, x, y):
        logs = {"loss": batch.total, **batch.terms}
        if self.head_kind == "prototype":
            features = batch.features
            if features is None:  # a baseline's loss under the prototype head
                features = self.backbone(x, training=False)
            logs.update(self._geometry_logs(features, y))
        results = {}
        for tracker in self.term_trackers:
            tracker.update_state(logs[tracker.name])
            results[tracker.name] = tracker.result()
        if batch.logits is not None:
            self.accuracy_tracker.update_state(y, batch.logits)
            results["accuracy"] = self.accuracy_tracker.result()
        if batch.adversarial_logits is not None:
            self.adv_accuracy_tracker.update_state(y, batch.adversarial_logits)
            results["adv_accuracy"] = self.adv_accuracy_tracker.result()
        return _for_keras_reduction(results)

    def _geometry_logs(self, features, y):
        """Prototype cosines and how close the batch's features sit to their own prototype
        (a collapse shows); `features` are those of the training forward pass."""
        class_vectors = tf.stop_gradient(self.head.class_vectors())
        cos = losses.pairwise_cosines(class_vectors)
        k = tf.shape(cos)[0]
        off = tf.boolean_mask(cos, tf.logical_not(tf.eye(k, dtype=tf.bool)))
        z = tf.cast(tf.stop_gradient(features), tf.float32)
        distance = tf.norm(z - tf.gather(class_vectors, y), axis=1)
        return {
            "proto_max_cos": tf.reduce_max(off),
            "proto_mean_cos": tf.reduce_mean(off),
            "align_ratio": tf.reduce_mean(distance) / self.head.radius,
            "feature_norm": tf.reduce_mean(tf.norm(z, axis=1)),
        }

    def test_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        x = unit_range_pixels(x)
        self.clean_accuracy_tracker.update_state(y, self(x, training=False))
        results = {"clean_accuracy": self.clean_accuracy_tracker.result()}
        if self.eval_attack_config is not None:
            x_adv = self.adversarial_examples(x, y, self.eval_attack_config)
            self.pgd_accuracy_tracker.update_state(y, self(x_adv, training=False))
            results["pgd_accuracy"] = self.pgd_accuracy_tracker.result()
        return _for_keras_reduction(results)

    def save_own_variables(self, store):
        # The attack seed is saved with the weights so that a run resumed from a backup
        # draws the same random starts as one that never stopped.
        super().save_own_variables(store)
        store[_ATTACK_SEED_KEY] = keras.ops.convert_to_numpy(self.attack_seed.state)

    def load_own_variables(self, store):
        if _ATTACK_SEED_KEY in store.keys():
            self.attack_seed.state.assign(store[_ATTACK_SEED_KEY])
            store = {key: store[key] for key in store.keys() if key != _ATTACK_SEED_KEY}
        super().load_own_variables(store)

    def get_config(self):
        return {
            **super().get_config(),
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "num_classes": self.num_classes,
            "head": self.head_kind,
            **self.head_options,
            "method": self.method.name,
            "loss_weights": dataclasses.asdict(self.loss_weights_config),
            "loss_form": dataclasses.asdict(self.loss_form),
            "attack": dataclasses.asdict(self.attack_config),
            "eval_attack": (
                None
                if self.eval_attack_config is None
                else dataclasses.asdict(self.eval_attack_config)
            ),
            "align_warmup_epochs": self.align_warmup_epochs,
            "epsilon_warmup_epochs": self.epsilon_warmup_epochs,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        weights = dict(config.get("loss_weights") or {})
        form = dict(config.get("loss_form") or {})
        for old_key, key in _FORM_KEYS_IN_OLD_FILES.items():
            if old_key in weights:
                form[key] = weights.pop(old_key)
        config.update(loss_weights=weights, loss_form=form)
        return cls(**config)


def inference_function(model):
    """The function images -> inference logits of `model`: `AdvDPNP.inference_logits` for our
    models (BatchNorms folded), `model(images, training=False)` for any other Keras model."""
    if isinstance(model, AdvDPNP):
        return model.inference_logits
    return lambda images: model(images, training=False)
