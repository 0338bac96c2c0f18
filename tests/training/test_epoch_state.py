"""The backup unit: complete or ignored, verified on load, restored exactly."""

import dataclasses
import errno
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_model
from keras_dpnp import files
from keras_dpnp.training import epoch_state


def _compiled(seed=0):
    keras.utils.set_random_seed(seed)
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.AdamW(0.01))
    model.optimizer.build(model.trainable_variables)
    return model


def _state(model, epoch):
    rows = [{"epoch": index, "loss": 1.0 / (index + 1)} for index in range(epoch)]
    return epoch_state.capture(model, epoch, 0.5, max(epoch - 1, 1), rows)


@pytest.fixture(scope="module")
def states():
    """The states after epochs 1 and 2 of models of different weights, and an epoch 3."""
    return {epoch: _state(_compiled(seed=epoch), epoch) for epoch in (1, 2, 3)}


@pytest.fixture
def store(tmp_path, states):
    """A backup folder holding the units of epochs 1 and 2."""
    found = epoch_state.EpochStateStore(str(tmp_path / "backup"))
    for epoch in (1, 2):
        found.commit(epoch, epoch_state.encode(states[epoch]))
    return found


def test_a_unit_reads_back_as_written(store, states):
    state = store.latest()
    assert state.epoch == 2 and state.best == 0.5 and state.best_epoch == 1
    assert [row["epoch"] for row in state.history] == [0, 1]
    expected = states[2]
    assert len(state.paths) == len(expected.paths) == len(state.values)
    for saved, value in zip(state.values, expected.values, strict=True):
        np.testing.assert_array_equal(saved, value)
    assert sorted(os.listdir(store.folder)) == ["epoch-0001", "epoch-0002"]


def test_no_best_yet_survives_the_round_trip(tmp_path, states):
    found = epoch_state.EpochStateStore(str(tmp_path))
    state = dataclasses.replace(states[1], best=-math.inf, best_epoch=0)
    found.commit(1, epoch_state.encode(state))
    assert found.latest().best == -math.inf


@pytest.mark.parametrize("name", [epoch_state.VARIABLES_FILE, epoch_state.STATE_FILE])
@pytest.mark.parametrize("keep", [0, 1, 0.5, -1])
def test_a_truncated_unit_is_skipped_with_a_warning(store, capsys, name, keep):
    path = os.path.join(store.unit_path(2), name)
    data = open(path, "rb").read()
    cut = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    with open(path, "wb") as f:
        f.write(data[:cut])
    assert store.latest().epoch == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: skipping the damaged backup ")
    assert "epoch-0002" in lines[0]


def test_a_unit_without_its_manifest_is_skipped(store, capsys):
    os.remove(os.path.join(store.unit_path(2), epoch_state.MANIFEST_FILE))
    assert store.latest().epoch == 1
    assert "epoch-0002" in capsys.readouterr().err
    os.remove(os.path.join(store.unit_path(1), epoch_state.MANIFEST_FILE))
    assert store.latest() is None


def test_a_write_that_fails_midway_leaves_the_units_before_it(store, states, monkeypatch):
    write, written = files.write_durably, []

    def fill_up(path, payload):
        if written:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(path)
        write(path, payload)

    monkeypatch.setattr(files, "write_durably", fill_up)
    with pytest.raises(OSError, match="No space left"):
        store.commit(3, epoch_state.encode(states[3]))
    assert sorted(os.listdir(store.folder)) == ["epoch-0001", "epoch-0002"]
    assert store.latest().epoch == 2


def test_restore_puts_back_weights_optimizer_and_seed(store, states):
    model = _compiled(seed=7)
    epoch_state.restore(model, store.load(1))
    expected = states[1]
    restored = epoch_state.capture(model, 1, 0.5, 1, [])
    assert any("seed_generator_state" in path for path in restored.paths)
    assert any("iteration" in path for path in restored.paths)
    for value, wanted in zip(restored.values, expected.values, strict=True):
        np.testing.assert_array_equal(value, wanted)


def test_a_unit_of_another_model_is_refused(store):
    keras.utils.set_random_seed(0)
    other = tiny_model(feature_dim=4)
    other.compile(optimizer=keras.optimizers.AdamW(0.01))
    other.optimizer.build(other.trainable_variables)
    with pytest.raises(epoch_state.IncompatibleUnitError, match="shapes do not match the model's"):
        epoch_state.restore(other, store.load(2))


def test_prune_keeps_only_the_epochs_asked_for(store, states):
    store.commit(3, epoch_state.encode(states[3]))
    store.prune({3, 1})
    assert store.epochs() == [3, 1]


def test_capture_and_restore_work_on_mirrored_variables(store):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = _compiled(seed=5)
    assert isinstance(model.weights[0].value, tf.distribute.DistributedValues)
    epoch_state.restore(model, store.load(2))
    restored = epoch_state.capture(model, 2, 0.5, 1, [])
    for value, wanted in zip(restored.values, store.load(2).values, strict=True):
        np.testing.assert_array_equal(value, wanted)
