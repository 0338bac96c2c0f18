"""A float32 copy of a mixed-precision model, for serving graphs that compute in float32."""

import keras


def compute_dtypes(model):
    """The compute dtypes of all of `model`'s layers."""
    return {layer.dtype_policy.compute_dtype for layer in model._flatten_layers()}


def _float32_policies(value):
    if isinstance(value, dict):
        if value.get("class_name") == "DTypePolicy" and value["config"]["name"].startswith(
                "mixed_"):
            return {**value, "config": {**value["config"], "name": "float32"}}
        return {key: _float32_policies(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_float32_policies(item) for item in value]
    return value


def float32_copy(model):
    """`model` itself if it computes in float32 throughout, else a float32 copy of it.

    The copy has the same weights (mixed policies keep variables in float32), so it is the
    same function evaluated without float16/bfloat16 rounding; onnxruntime cannot run a
    bfloat16 graph on CPU, and TF Serving clients expect float32.
    """
    if compute_dtypes(model) == {"float32"}:
        return model
    config = _float32_policies(keras.saving.serialize_keras_object(model))
    copy = keras.saving.deserialize_keras_object(config)
    copy.set_weights(model.get_weights())
    return copy
