"""What the AutoAttack attacks share: input checks and running only on unfooled points."""

import threading

import numpy as np
import pytest
import tensorflow as tf

from keras_dpnp.attacks.batching import check_inputs, check_num_targets, run_on_unfooled


@pytest.mark.parametrize(
    "x,y,epsilon,norm,message",
    [
        (np.zeros((2, 4, 4)), [0, 1], 0.1, "linf", r"images must be \[N, H, W, C\]"),
        (np.zeros((2, 4, 4, 1)), [0.0, 1.0], 0.1, "linf", "labels must be 2 integers"),
        (np.full((2, 4, 4, 1), 2.0), [0, 1], 0.1, "linf", r"images must lie in \[0, 1\]"),
        (np.zeros((2, 4, 4, 1)), [0, 1], 0.0, "linf", "epsilon must be > 0"),
        (np.zeros((2, 4, 4, 1)), [0, 1], 0.1, "l1", "norm must be one of"),
    ],
)
def test_bad_inputs_are_refused(x, y, epsilon, norm, message):
    with pytest.raises(ValueError, match=message):
        check_inputs(x, np.asarray(y), epsilon, norm)


def test_inputs_come_back_as_float32_images_and_int64_labels():
    x, y = check_inputs(np.zeros((2, 4, 4, 1), np.float64), np.array([0, 1], np.int32), 0.1, "l2")
    assert (x.dtype, y.dtype) == (np.float32, np.int64)
    check_num_targets(9, 10)
    with pytest.raises(ValueError, match=r"num_targets must be in \[1, 9\]"):
        check_num_targets(10, 10)


def test_each_pass_attacks_only_the_points_still_unfooled():
    x = np.arange(6, dtype=np.float32).reshape(6, 1, 1, 1)
    y = np.zeros(6, np.int64)
    calls = []

    def run_batch(images, labels, rank, seed):
        calls.append((int(rank), images.numpy().ravel().tolist()))
        # Rank 0 fools the even points, rank 1 the rest; fooled points become -1.
        fooled = tf.equal(
            tf.math.floormod(tf.reshape(images, [-1]), 2.0), tf.cast(rank, tf.float32)
        )
        return tf.where(tf.reshape(fooled, [-1, 1, 1, 1]), -1.0, images), fooled

    seen = []
    out, fooled = run_on_unfooled(
        run_batch, x, y, ranks=[0, 1], seed=0, batch_size=4, progress=seen.append
    )
    # Six points in two batches of three rather than four and two; three odd ones left.
    assert calls == [(0, [0, 1, 2]), (0, [3, 4, 5]), (1, [1, 3, 5])]
    assert fooled.all() and (out == -1).all()
    # Work in points: (attacked + fooled × passes left) / passes; 2 + 1 of 6 fooled at rank 0.
    assert seen == [2.5, 2.0, 1.5]
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        run_on_unfooled(run_batch, x, y, ranks=[0], seed=0, batch_size=0)


def test_batches_run_at_once_and_the_result_does_not_depend_on_how_many():
    x = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)
    y = np.zeros(10, np.int64)
    both_running = threading.Barrier(2, timeout=30)

    def run_batch(images, labels, rank, seed):  # depends on the batch's seed; fools odd points
        if concurrent:
            both_running.wait()  # only passes while another batch runs at the same time
        shifted = images + tf.cast(seed[1], tf.float32) / 100
        return shifted, tf.equal(tf.math.floormod(tf.reshape(images, [-1]), 2.0), 1.0)

    concurrent = False
    alone = run_on_unfooled(run_batch, x, y, ranks=[0, 1], seed=0, batch_size=2)
    concurrent = True
    seen = []
    at_once = run_on_unfooled(
        run_batch, x, y, ranks=[0], seed=0, batch_size=5, workers=2, progress=seen.append
    )
    assert sorted(seen) == [5.0, 5.0]
    concurrent = False
    again = run_on_unfooled(run_batch, x, y, ranks=[0, 1], seed=0, batch_size=2, workers=3)
    for first, second in zip(alone, again):
        np.testing.assert_array_equal(first, second)
    assert at_once[1].tolist() == [False, True] * 5
    with pytest.raises(ValueError, match="workers must be >= 1, got 0"):
        run_on_unfooled(run_batch, x, y, ranks=[0], seed=0, batch_size=2, workers=0)


def test_the_work_of_nine_target_passes_adds_up_to_the_points():
    x = np.zeros((7, 1, 1, 1), np.float32)
    y = np.zeros(7, np.int64)

    def run_batch(images, labels, rank, seed):  # rank 3 fools the first point of each batch
        hit = tf.logical_and(tf.equal(rank, 3), tf.range(tf.shape(images)[0]) == 0)
        return images, hit

    seen = []
    run_on_unfooled(run_batch, x, y, ranks=range(1, 10), seed=0, batch_size=3, progress=seen.append)
    assert seen[0] == pytest.approx(3 / 9)
    assert round(sum(seen), 6) == 7
