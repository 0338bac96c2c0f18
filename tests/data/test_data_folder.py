"""`folder:<path>` data sets: class folders of PNG and JPEG images written by the tests."""

import os

import numpy as np
import pytest
import tensorflow as tf

from keras_dpnp.data import load_dataset
from keras_dpnp.data.folder import FolderDataError, load_folder


def write_image(path, pixels):
    """Writes uint8 `pixels` [H, W, C] as PNG, or as JPEG when `path` ends in .jpg."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    encode = tf.io.encode_jpeg if path.endswith(".jpg") else tf.io.encode_png
    tf.io.write_file(path, encode(np.asarray(pixels, np.uint8)))


def write_classes(folder, counts, shape=(6, 6, 3), value=None):
    """One folder per class name in `counts` with that many PNGs; image k of class c is
    filled with `value(c, k)` (default: a value unique to each image)."""
    value = value or (lambda label, index: 10 + 20 * label + index)
    for label, (name, count) in enumerate(sorted(counts.items())):
        for index in range(count):
            write_image(
                os.path.join(folder, name, f"{index:03d}.png"), np.full(shape, value(label, index))
            )


def test_class_names_are_the_sorted_folder_names_and_labels_follow_them(tmp_path):
    write_classes(
        tmp_path / "train", {"zebra": 2, "ant": 3, "moth": 2}, value=lambda label, index: 50 * label
    )
    write_classes(
        tmp_path / "test", {"zebra": 1, "ant": 1, "moth": 1}, value=lambda label, index: 50 * label
    )
    (tmp_path / "train" / "ant" / ".DS_Store").write_bytes(b"\x00\x01")
    write_image(str(tmp_path / "train" / ".thumbnails" / "x.png"), np.zeros((6, 6, 3)))
    splits = load_dataset(f"folder:{tmp_path}")
    assert splits.info.class_names == ("ant", "moth", "zebra")
    assert splits.info.num_classes == 3 and splits.info.name == f"folder:{tmp_path}"
    images, labels = splits.train
    assert images.shape == (7, 6, 6, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(images[:, 0, 0, 0], 50 * labels)
    np.testing.assert_array_equal(splits.test[1], [0, 1, 2])
    assert "train/ and test/ folders" in splits.info.source


def test_mean_and_std_come_from_the_training_split(tmp_path):
    write_classes(tmp_path / "train", {"a": 2, "b": 2}, value=lambda label, index: 100 * label)
    write_classes(tmp_path / "test", {"a": 1, "b": 1}, value=lambda label, index: 255)
    info = load_dataset(f"folder:{tmp_path}").info
    np.testing.assert_allclose(info.mean, [50 / 255] * 3)
    np.testing.assert_allclose(info.std, [50 / 255] * 3)


def test_image_size_resizes_images_of_other_sizes(tmp_path):
    write_image(str(tmp_path / "a" / "big.png"), np.full((9, 7, 3), 40))
    write_image(str(tmp_path / "a" / "small.jpg"), np.full((4, 4, 3), 200))
    write_image(str(tmp_path / "b" / "wide.png"), np.full((5, 12, 3), 90))
    write_image(str(tmp_path / "b" / "exact.png"), np.full((6, 5, 3), 130))
    splits = load_dataset(f"folder:{tmp_path}", image_size="6,5", folder_test_fraction=0.25)
    assert splits.info.image_shape == (6, 5, 3)
    images = np.concatenate([splits.train[0], splits.test[0]])
    assert images.shape == (4, 6, 5, 3)
    # A flat image stays flat when resized (JPEG may shift it by a level or two).
    np.testing.assert_allclose(sorted(images[:, 3, 2, 0]), [40, 90, 130, 200], atol=2)
    assert load_dataset(f"folder:{tmp_path}", image_size=3).info.image_shape == (3, 3, 3)


def test_images_of_differing_sizes_need_image_size(tmp_path):
    write_image(str(tmp_path / "a" / "one.png"), np.zeros((8, 8, 3)))
    write_image(str(tmp_path / "b" / "two.png"), np.zeros((6, 9, 3)))
    with pytest.raises(FolderDataError, match="differ in size") as error:
        load_dataset(f"folder:{tmp_path}")
    message = str(error.value)
    assert "--image_size" in message and "one.png is 8×8" in message and "\n" not in message


def test_grey_images_give_one_channel(tmp_path):
    write_image(str(tmp_path / "a" / "x.png"), np.full((5, 5, 1), 30))
    write_image(str(tmp_path / "a" / "y.jpg"), np.full((5, 5, 1), 60))
    write_image(str(tmp_path / "b" / "z.png"), np.full((5, 5, 1), 90))
    splits = load_dataset(f"folder:{tmp_path}", folder_test_fraction=0.3)
    assert splits.info.image_shape == (5, 5, 1) and len(splits.info.mean) == 1
    assert splits.train[0].shape[-1] == splits.test[0].shape[-1] == 1


def test_any_colour_image_makes_all_rgb_and_alpha_is_dropped(tmp_path):
    train = tmp_path / "train"
    write_image(str(train / "a" / "grey.png"), np.full((4, 4, 1), 70))
    write_image(str(train / "a" / "rgba.png"), np.tile([[[10, 20, 30, 0]]], (4, 4, 1)))
    write_image(str(train / "b" / "rgb.png"), np.tile([[[200, 100, 50]]], (4, 4, 1)))
    write_image(str(train / "b" / "grey2.png"), np.full((4, 4, 1), 5))
    write_classes(tmp_path / "test", {"a": 1, "b": 1}, shape=(4, 4, 1))
    splits = load_dataset(f"folder:{tmp_path}")
    images = splits.train[0]
    assert splits.info.image_shape == (4, 4, 3) and images.shape == (4, 4, 4, 3)
    # Class a: grey.png, rgba.png; class b: grey2.png, rgb.png (sorted within the class).
    np.testing.assert_array_equal(
        images[:, 0, 0], [[70] * 3, [10, 20, 30], [5] * 3, [200, 100, 50]]
    )
    assert splits.test[0].shape == (2, 4, 4, 3)


def _folder_with_unique_images(root, counts):
    write_classes(root, counts, shape=(2, 2, 1), value=lambda label, index: 100 * label + index)


def test_without_test_folder_a_seeded_stratified_split_is_held_out(tmp_path):
    _folder_with_unique_images(tmp_path, {"a": 10, "b": 5})
    splits = load_dataset(f"folder:{tmp_path}")
    assert len(splits.test[1]) == 3 and len(splits.train[1]) == 12
    assert np.bincount(splits.test[1]).tolist() == [2, 1]
    assert "seeded stratified 20% test split, seed 0" in splits.info.source
    test_ids = set(splits.test[0][:, 0, 0, 0].tolist())
    assert not test_ids & set(splits.train[0][:, 0, 0, 0].tolist())
    again = load_dataset(f"folder:{tmp_path}", seed=7, validation_fraction=0.2)
    assert set(again.test[0][:, 0, 0, 0].tolist()) == test_ids
    assert len(again.validation[1]) == 2 and len(again.train[1]) == 10


def test_the_split_seed_and_fraction_choose_the_held_out_images(tmp_path):
    _folder_with_unique_images(tmp_path, {"a": 10, "b": 10})

    def held_out(**options):
        test = load_folder(str(tmp_path), **options).test[0]
        return sorted(test[:, 0, 0, 0].tolist())

    assert held_out(split_seed=3) == held_out(split_seed=3)
    assert held_out(split_seed=3) != held_out(split_seed=4)
    half = load_folder(str(tmp_path), test_fraction=0.5).test[1]
    assert np.bincount(half).tolist() == [5, 5]


def test_train_folder_without_test_folder_is_split(tmp_path):
    _folder_with_unique_images(tmp_path / "train", {"a": 5, "b": 5})
    splits = load_dataset(f"folder:{tmp_path}", folder_test_fraction=0.4)
    assert splits.info.class_names == ("a", "b")
    assert np.bincount(splits.test[1]).tolist() == [2, 2]


def _assert_refused(root, needle):
    with pytest.raises(FolderDataError) as error:
        load_dataset(f"folder:{root}")
    message = str(error.value)
    assert needle in message and "\n" not in message


def test_an_empty_class_folder_is_named(tmp_path):
    write_classes(tmp_path, {"a": 2})
    os.makedirs(tmp_path / "b")
    _assert_refused(tmp_path, f"class folder {tmp_path / 'b'} holds no images")


def test_a_non_image_file_is_named(tmp_path):
    write_classes(tmp_path, {"a": 2, "b": 2})
    (tmp_path / "a" / "notes.txt").write_text("hello")
    _assert_refused(tmp_path, f"{tmp_path / 'a' / 'notes.txt'} is not an image")


def test_a_corrupt_image_is_named(tmp_path):
    write_classes(tmp_path, {"a": 2, "b": 2})
    (tmp_path / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    _assert_refused(tmp_path, f"{tmp_path / 'b' / 'broken.png'} cannot be read as an image")


def test_fewer_than_two_classes_are_refused(tmp_path):
    write_classes(tmp_path, {"a": 3, ".hidden": 2})
    _assert_refused(tmp_path, f"{tmp_path} holds 1 class folder(s)")


def test_train_and_test_class_folders_must_match(tmp_path):
    write_classes(tmp_path / "train", {"cat": 1, "dog": 1, "owl": 1})
    write_classes(tmp_path / "test", {"cat": 1, "dog": 1, "emu": 1})
    with pytest.raises(FolderDataError, match="only in train/: owl; only in test/: emu"):
        load_dataset(f"folder:{tmp_path}")


def test_missing_folder_and_test_without_train_are_refused(tmp_path):
    with pytest.raises(FolderDataError, match="no such folder"):
        load_dataset(f"folder:{tmp_path / 'nowhere'}")
    write_classes(tmp_path / "test", {"a": 1, "b": 1})
    with pytest.raises(FolderDataError, match="test/ folder but no train/"):
        load_dataset(f"folder:{tmp_path}")


def test_a_class_folder_not_named_in_utf8_is_refused(tmp_path):
    write_classes(tmp_path, {"a": 2})
    os.mkdir(os.fsencode(tmp_path) + b"/caf\xe9")
    _assert_refused(
        tmp_path,
        f"{tmp_path}: the class folder b'caf\\xe9' is not named in UTF-8; rename it",
    )
