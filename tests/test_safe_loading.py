"""Model files are loaded with Keras's safe mode: a file carrying Python code is refused."""

import keras
import pytest

from keras_dpnp.evaluation import loading
from keras_dpnp.exporting import ExportError
from keras_dpnp.exporting.source import load_model_file


@pytest.fixture
def code_carrying_model(tmp_path):
    inputs = keras.Input((4,))
    outputs = keras.layers.Lambda(lambda x: x * 2.0)(inputs)
    path = str(tmp_path / "lambda.keras")
    keras.Model(inputs, outputs).save(path)
    return path


def test_evaluation_refuses_a_model_file_that_carries_code(code_carrying_model):
    with pytest.raises(loading.ModelLoadError, match=r"could not load .*lambda\.keras"):
        loading.load_model(code_carrying_model)


def test_export_refuses_a_model_file_that_carries_code(code_carrying_model):
    with pytest.raises(ExportError, match=r"could not load .*lambda\.keras"):
        load_model_file(code_carrying_model)
