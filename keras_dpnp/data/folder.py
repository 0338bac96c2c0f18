"""A folder of images with one subfolder per class, as train and test splits.

Layouts: `<root>/train/<class>/...` with `<root>/test/<class>/...`, or the class folders in
`<root>/train/` or `<root>` alone, in which case a seeded stratified test split is held out.
Splits whose decoded images exceed the in-memory limit stay on disk as `ImageFiles`.
"""

import os

import numpy as np
import tensorflow as tf

from keras_dpnp.data.image_files import IMAGE_EXTENSIONS, ImageFiles
from keras_dpnp.data.info import SourceSplits
from keras_dpnp.data.splitting import stratified_holdout

# Fixed, like digits' test split, so every run and every evaluation sees the same test images.
FOLDER_TEST_SEED = 0
MEGABYTE = 2**20


class FolderDataError(ValueError):
    """The image folder does not hold a usable data set."""


def load_folder(
    root: str,
    *,
    image_size: tuple[int, int] | None = None,
    test_fraction: float = 0.2,
    max_in_memory_mb: float = 4096.0,
    split_seed: int = FOLDER_TEST_SEED,
) -> SourceSplits:
    """Reads the image folder `root` (see the module docstring for its layouts).

    Args:
        root: the folder.
        image_size: (height, width) every image is resized to; None: the images' own size,
            which must then be the same for all.
        test_fraction: the share held out as test when there is no `test/` folder.
        max_in_memory_mb: a split whose decoded images take more is streamed from disk.
        split_seed: seed of that held-out test split.

    Returns:
        `SourceSplits`, images grey (1 channel) when every image is grey, else RGB.
    """
    class_names, (paths, labels), (test_paths, test_labels), note = _listed_splits(
        root, test_fraction, split_seed
    )
    all_paths = np.concatenate([paths, test_paths])
    image_shape = _common_shape(root, all_paths, scan_image_shapes(all_paths), image_size)
    limit = max_in_memory_mb * MEGABYTE
    train = (_in_memory_or_streamed(ImageFiles(paths, image_shape), limit), labels)
    test = (_in_memory_or_streamed(ImageFiles(test_paths, image_shape), limit), test_labels)
    streamed = [
        name
        for name, (images, _) in (("train", train), ("test", test))
        if isinstance(images, ImageFiles)
    ]
    if streamed:
        note += f"; {' and '.join(streamed)} streamed from disk"
    source = f"image folder {os.path.abspath(root)} ({note})"
    return SourceSplits(train, test, class_names, image_shape, source)


def _listed_splits(root: str, test_fraction: float, split_seed: int):
    """(class names, (train paths, labels), (test paths, labels), how test was chosen)."""
    train_dir, test_dir = _split_folders(root)
    class_names, paths, labels = list_class_images(train_dir)
    if test_dir is not None:
        test_classes, test_paths, test_labels = list_class_images(test_dir)
        _check_same_classes(train_dir, class_names, test_dir, test_classes)
        return class_names, (paths, labels), (test_paths, test_labels), "train/ and test/ folders"
    train_idx, test_idx = _held_out_test(labels, test_fraction, split_seed)
    note = f"no test/ folder: seeded stratified {test_fraction:.0%} test split, seed {split_seed}"
    return (
        class_names,
        (paths[train_idx], labels[train_idx]),
        (paths[test_idx], labels[test_idx]),
        note,
    )


def _split_folders(root: str) -> tuple[str, str | None]:
    """(folder of the training class folders, folder of the test class folders or None)."""
    if not os.path.isdir(root):
        raise FolderDataError(f"--dataset=folder:{root}: no such folder")
    train_dir, test_dir = os.path.join(root, "train"), os.path.join(root, "test")
    if os.path.isdir(train_dir):
        return train_dir, test_dir if os.path.isdir(test_dir) else None
    if os.path.isdir(test_dir):
        raise FolderDataError(
            f"{root} has a test/ folder but no train/ folder; put the "
            f"training class folders in {train_dir}"
        )
    return root, None


def list_class_images(folder: str) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """(sorted class names, image paths, int64 labels) of the class subfolders of `folder`.

    Hidden files and folders are skipped; files in `folder` itself are not images of a class.
    """
    classes = tuple(
        sorted(
            entry.name
            for entry in os.scandir(folder)
            if entry.is_dir() and not entry.name.startswith(".")
        )
    )
    _check_utf8_names(folder, classes)
    if len(classes) < 2:
        raise FolderDataError(
            f"{folder} holds {len(classes)} class folder(s); a classification data set needs "
            f"at least 2 (one subfolder of images per class)"
        )
    paths, labels = [], []
    for label, name in enumerate(classes):
        images = _class_images(os.path.join(folder, name))
        paths += images
        labels += [label] * len(images)
    return classes, np.asarray(paths, dtype=str), np.asarray(labels, dtype=np.int64)


def _check_utf8_names(folder: str, classes: tuple[str, ...]) -> None:
    """Refuses a class folder whose name is not UTF-8: class names go into JSON files."""
    for name in classes:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError as error:
            raise FolderDataError(
                f"{folder}: the class folder {os.fsencode(name)!r} is not named in UTF-8; "
                f"rename it (class names are written into JSON files)"
            ) from error


def _class_images(folder: str) -> list[str]:
    """The sorted image files under one class folder (subfolders included)."""
    images = []
    for parent, subfolders, files in os.walk(folder):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        for name in files:
            if name.startswith("."):
                continue
            path = os.path.join(parent, name)
            if not name.lower().endswith(IMAGE_EXTENSIONS):
                raise FolderDataError(
                    f"{path} is not an image (expected {', '.join(IMAGE_EXTENSIONS)}); move it "
                    f"out of the class folder"
                )
            images.append(path)
    if not images:
        raise FolderDataError(f"class folder {folder} holds no images; add some or remove it")
    return sorted(images)


def _check_same_classes(train_dir, train_classes, test_dir, test_classes):
    if train_classes == test_classes:
        return
    only_train = sorted(set(train_classes) - set(test_classes))
    only_test = sorted(set(test_classes) - set(train_classes))
    raise FolderDataError(
        f"{train_dir} and {test_dir} hold different class folders (only in train/: "
        f"{', '.join(only_train) or 'none'}; only in test/: {', '.join(only_test) or 'none'}); "
        f"give both the same class folders"
    )


def _held_out_test(labels: np.ndarray, test_fraction: float, seed: int):
    """(train indices, test indices) of a stratified `test_fraction` hold-out."""
    if not 0.0 < test_fraction < 1.0:
        raise FolderDataError(f"--folder_test_fraction must be in (0, 1), got {test_fraction}")
    test_size = min(max(1, round(test_fraction * len(labels))), len(labels) - 1)
    return stratified_holdout(labels, test_size, seed)


def scan_image_shapes(paths: np.ndarray) -> np.ndarray:
    """The (height, width, channels) of each image file as stored, [N, 3].

    Raises `FolderDataError` naming an unreadable or corrupt file.
    """

    def shape_of(path):
        image = tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
        return path, tf.shape(image)

    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(paths, tf.string))
    dataset = dataset.map(shape_of, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()
    shapes = {path.decode(): shape for path, shape in dataset.as_numpy_iterator()}
    unreadable = [path for path in paths if path not in shapes]
    if unreadable:
        more = f" (and {len(unreadable) - 1} more)" if len(unreadable) > 1 else ""
        raise FolderDataError(
            f"{unreadable[0]}{more} cannot be read as an image (corrupt or "
            f"not really PNG, JPEG, BMP or GIF); replace or remove it"
        )
    return np.stack([shapes[path] for path in paths])


def _common_shape(root, paths, shapes, image_size) -> tuple[int, int, int]:
    """(H, W, C): `image_size` or the one size all images share; C 1 if all are grey, else 3."""
    channels = 1 if np.all(shapes[:, 2] <= 2) else 3
    if image_size is not None:
        return (*image_size, channels)
    sizes, first = np.unique(shapes[:, :2], axis=0, return_index=True)
    if len(sizes) > 1:
        examples = "; ".join(
            f"{paths[index]} is {height}×{width}"
            for (height, width), index in zip(sizes[:2], first[:2])
        )
        raise FolderDataError(
            f"the images in {root} differ in size ({examples}); pass --image_size=SIDE or "
            f"--image_size=HEIGHT,WIDTH (e.g. --image_size={sizes[0][0]}) to resize them all"
        )
    return (int(sizes[0][0]), int(sizes[0][1]), channels)


def _in_memory_or_streamed(files: ImageFiles, limit_bytes: float):
    """The decoded uint8 array of `files`, or `files` itself when it would exceed the limit."""
    return files if files.nbytes > limit_bytes else files.decode()
