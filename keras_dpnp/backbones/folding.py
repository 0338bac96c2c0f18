"""A functional backbone's inference pass with each BatchNorm folded into the convolution before it.

In inference mode BatchNorm is the affine map x·s + o (s = γ/√(σ² + ε), o = β − μ·s), so a
convolution followed by it equals one convolution with kernel W·s and bias o. The PGD attack of a
training step runs the backbone in inference mode and needs only input gradients: folded, each
conv → BatchNorm → ReLU becomes one fused convolution forward and one input-gradient convolution
backward, instead of three forward kernels and a BatchNorm gradient that also computes the unused
γ and β gradients. On a CPU, float32 3×3 convolutions on maps of at most 16 pixels run in
Winograd's form (`winograd.py`), which oneDNN computes twice as fast there, and a float32
stride-1 convolution of a one-channel image takes its input gradient from `single_channel.py`,
twice as fast as oneDNN's. The function is the same up to rounding (the folded kernel is
rounded once to the compute dtype).
"""

import collections

import keras
import tensorflow as tf

from keras_dpnp import compat, hardware
from keras_dpnp.backbones import single_channel, winograd
from keras_dpnp.backbones.fused_batch_norm import FusedBatchNormalization
from keras_dpnp.backbones.symmetric_conv import SymmetricPaddingConv2D

# Output maps up to this many pixels, where oneDNN's direct float32 kernels fall behind.
WINOGRAD_MAX_PIXELS = 16


def _read_layer_names(structure):
    """Names of the layers whose outputs a serialised call node reads."""
    if isinstance(structure, dict):
        if structure.get("class_name") == "__keras_tensor__":
            return [structure["config"]["keras_history"][0]]
        return [name for value in structure.values() for name in _read_layer_names(value)]
    if isinstance(structure, (list, tuple)):
        return [name for item in structure for name in _read_layer_names(item)]
    return []


def _graph(config):
    """(inputs by layer name, None for layers called more than once; readers per layer name)."""
    inputs, readers = {}, collections.Counter()
    for layer in config["layers"]:
        nodes = layer["inbound_nodes"]
        names = _read_layer_names(nodes)
        inputs[layer["name"]] = names if len(nodes) == 1 else None
        readers.update(names)
    outputs = config["output_layers"]
    for output in [outputs] if isinstance(outputs[0], str) else outputs:
        readers[output[0]] += 1
    return inputs, readers


def _is_plain_conv(layer):
    return (
        type(layer) in (keras.layers.Conv2D, SymmetricPaddingConv2D)
        and layer.data_format == "channels_last"
        and layer.groups == 1
        and layer.activation is keras.activations.linear
        and not getattr(layer, "lora_enabled", False)
        and getattr(layer.dtype_policy, "quantization_mode", None) is None
    )


def _is_foldable_batchnorm(layer):
    return (
        isinstance(layer, keras.layers.BatchNormalization)
        and layer.axis in (-1, 3)
        and not getattr(layer, "renorm", False)
    )


def _winograd_suits(conv):
    _, height, width, _ = conv.input.shape
    return (
        type(conv) is keras.layers.Conv2D
        and conv.compute_dtype == "float32"
        and winograd.applies(
            conv.kernel_size, conv.strides, conv.dilation_rate, conv.padding, height, width
        )
        and height * width <= WINOGRAD_MAX_PIXELS
    )


def _single_channel_suits(conv):
    return (
        type(conv) is keras.layers.Conv2D
        and conv.compute_dtype == "float32"
        and single_channel.applies(
            conv.kernel_size, conv.strides, conv.dilation_rate, conv.padding, conv.input.shape[-1]
        )
    )


def _computes_on_one_thread():
    """Whether TensorFlow's intra-op pool has one thread (set so, or one core to run on)."""
    threads = tf.config.threading.get_intra_op_parallelism_threads()
    return (threads or hardware.usable_cores()) == 1


def _scale_offset(batchnorm):
    """float32 (s, o) with `batchnorm(x, training=False) == x * s + o` for image input."""
    if isinstance(batchnorm, FusedBatchNormalization):
        epsilon = batchnorm.image_epsilon()
    else:
        epsilon = batchnorm.epsilon
    variance = tf.cast(batchnorm.moving_variance, tf.float32)
    scale = tf.math.rsqrt(variance + epsilon)
    if batchnorm.scale:
        scale *= tf.cast(batchnorm.gamma, tf.float32)
    offset = -tf.cast(batchnorm.moving_mean, tf.float32) * scale
    if batchnorm.center:
        offset += tf.cast(batchnorm.beta, tf.float32)
    return scale, offset


class FoldedInference:
    """`backbone(images, training=False)` with BatchNorm folded into the preceding convolutions.

    Build it with `FoldedInference.of(backbone)` (None when there is nothing to fold). Compute
    `weights = folded.folded_weights()` once per set of weights (e.g. before an attack's loop),
    then call `folded(images, weights)` as often as needed.
    """

    def __init__(self, backbone, batchnorm_of):
        self.backbone = backbone
        self._batchnorm_of = batchnorm_of
        self._absorbed = {layer.name for layer in batchnorm_of.values()}
        on_cpu = not tf.config.list_logical_devices("GPU")
        self.winograd_layers = {
            name for name in batchnorm_of if on_cpu and _winograd_suits(backbone.get_layer(name))
        }
        self.single_channel_layers = {
            name
            for name in batchnorm_of
            if on_cpu and _single_channel_suits(backbone.get_layer(name))
        }
        # Forward and input gradient only: on one thread the padded form's oneDNN input
        # gradient beats the explicit padding's fallback (docs/speed.md), on two it does not.
        self.pads_first = on_cpu and _computes_on_one_thread()

    @classmethod
    def of(cls, backbone):
        """The folded pass of a functional `backbone`, or None (another kind of model, or no
        convolution followed only by a BatchNorm)."""
        if not compat.can_run_through_graph(backbone):
            return None
        try:
            config = backbone.get_config()
            inputs, readers = _graph(config)
        except (NotImplementedError, KeyError, TypeError, IndexError, ValueError):
            return None
        layer = backbone.get_layer
        batchnorm_of = {}
        for name, sources in inputs.items():
            if sources is None or len(sources) != 1 or not _is_foldable_batchnorm(layer(name)):
                continue
            conv = layer(sources[0])
            if (
                _is_plain_conv(conv)
                and inputs.get(conv.name) is not None
                and readers[conv.name] == 1
            ):
                batchnorm_of[conv.name] = layer(name)
        if not batchnorm_of:
            return None
        return cls(backbone, batchnorm_of)

    @property
    def folded_layers(self):
        """{convolution name: name of the BatchNorm folded into it}."""
        return {conv: batchnorm.name for conv, batchnorm in self._batchnorm_of.items()}

    def folded_weights(self):
        """{convolution name: (kernel · s, o)} in each convolution's compute dtype (the kernel as
        a `Winograd3x3` for `winograd_layers`, a `SingleChannelConv` for
        `single_channel_layers`)."""
        weights = {}
        for name, batchnorm in self._batchnorm_of.items():
            conv = self.backbone.get_layer(name)
            scale, offset = _scale_offset(batchnorm)
            if conv.use_bias:
                offset += tf.cast(conv.bias, tf.float32) * scale
            kernel = tf.cast(conv.kernel, tf.float32) * scale
            if name in self.winograd_layers:
                kernel = winograd.Winograd3x3(kernel, conv.compute_dtype)
            elif name in self.single_channel_layers:
                kernel = single_channel.SingleChannelConv(kernel, conv.compute_dtype)
            else:
                kernel = tf.cast(kernel, conv.compute_dtype)
            weights[name] = (kernel, tf.cast(offset, conv.compute_dtype))
        return weights

    def _conv(self, conv, x, kernel, bias):
        if isinstance(kernel, (winograd.Winograd3x3, single_channel.SingleChannelConv)):
            y = kernel(x)
        elif isinstance(conv, SymmetricPaddingConv2D):
            y = conv.convolution_op(tf.cast(x, kernel.dtype), kernel, pad_first=self.pads_first)
        else:
            y = tf.nn.conv2d(
                tf.cast(x, kernel.dtype),
                kernel,
                strides=conv.strides,
                padding=conv.padding.upper(),
                dilations=conv.dilation_rate,
            )
        return tf.nn.bias_add(y, bias)

    def __call__(self, images, weights):
        def operation_fn(operation):
            if operation.name in weights:
                return lambda x, **_: self._conv(operation, x, *weights[operation.name])
            if operation.name in self._absorbed:
                return lambda x, **_: x
            return lambda *args, **kwargs: operation(*args, training=False, **kwargs)

        images = tf.cast(images, self.backbone.inputs[0].dtype)
        # Keras's own loop over the functional graph, with our operation in place of each folded
        # pair; the tests compare it with `backbone(x, training=False)` for every backbone.
        return compat.run_through_graph(self.backbone, images, operation_fn)
