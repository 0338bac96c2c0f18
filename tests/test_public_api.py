"""The public API: every name in `keras_dpnp.__all__` resolves, the heavy ones only on use."""

import subprocess
import sys

import pytest

import keras_dpnp


@pytest.mark.parametrize("name", keras_dpnp.__all__)
def test_every_public_name_resolves(name):
    assert getattr(keras_dpnp, name) is not None


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        keras_dpnp.not_a_name  # noqa: B018


def test_import_does_not_load_the_export_or_attack_libraries():
    code = (
        "import sys, keras_dpnp; "
        "print(sorted(m for m in ('onnx', 'tf2onnx', 'cleverhans') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stderr[-1000:]
