"""`load_dataset`: one entry point over digits, original archives and TFDS."""

import os

from keras_dpnp.data.archives import read_original_archives
from keras_dpnp.data.catalog import catalog_entry
from keras_dpnp.data.digits import load_digits_arrays
from keras_dpnp.data.idx import find_split_files, read_idx_splits
from keras_dpnp.data.info import DatasetInfo, Splits
from keras_dpnp.data.sources import is_prefixed, load_prefixed
from keras_dpnp.data.splitting import split_validation
from keras_dpnp.data.stats import channel_mean_std
from keras_dpnp.data.tfds_source import load_tfds_arrays


def load_dataset(
    name: str,
    *,
    data_dir: str | None = None,
    manual_dir: str | None = None,
    validation_fraction: float = 0.0,
    seed: int = 0,
    download: bool = True,
    tfds_split_train: str = "train",
    tfds_split_test: str = "test",
    image_size: int | tuple[int, int] | str | None = None,
    folder_test_fraction: float = 0.2,
    max_in_memory_mb: float = 4096.0,
) -> Splits:
    """Loads `name` as uint8 image / int64 label arrays with its `DatasetInfo`.

    digits always comes from scikit-learn (data_dir and manual_dir are
    ignored). The others come from the original files in `manual_dir` when
    given; else, when neither folder is given and an operating-system package
    installed the original files (Fashion-MNIST: Debian's dataset-fashion-mnist),
    from there; else from TFDS in `data_dir`, downloading only if `download` is
    set and the download host answers. A stratified validation split of
    `validation_fraction` is taken from train only, seeded by `seed`.

    `tfds:<name>` reads any TFDS image-classification set (its `tfds_split_train` and
    `tfds_split_test` splits) and `folder:<path>` a folder with one subfolder of images per
    class (a seeded stratified `folder_test_fraction` test split unless it has `test/`; a split
    decoding to more than `max_in_memory_mb` stays on disk as `ImageFiles`); both resize their
    images to `image_size` (SIDE or (HEIGHT, WIDTH)) when given.
    """
    if is_prefixed(name):
        return load_prefixed(
            name,
            data_dir=data_dir,
            download=download,
            validation_fraction=validation_fraction,
            seed=seed,
            tfds_split_train=tfds_split_train,
            tfds_split_test=tfds_split_test,
            image_size=image_size,
            folder_test_fraction=folder_test_fraction,
            max_in_memory_mb=max_in_memory_mb,
        )
    entry = catalog_entry(name)
    system_dir = None if data_dir or manual_dir else _installed_dir(entry)
    if name == "digits":
        train, test = load_digits_arrays()
        class_names, source = None, "scikit-learn bundled digits"
    elif entry.original_format == "idx" and (manual_dir or system_dir):
        folder = os.path.abspath(manual_dir or system_dir)
        train, test = read_idx_splits(folder)
        class_names, source = None, f"original IDX files in {folder}"
    elif manual_dir is not None:
        train, test, class_names = read_original_archives(name, manual_dir)
        source = f"archive {', '.join(entry.archives)} (manual_dir={os.path.abspath(manual_dir)})"
    else:
        train, test, class_names, prepared_dir = load_tfds_arrays(entry, data_dir, download)
        source = f"TFDS {name} (data_dir={prepared_dir})"
    class_names = entry.class_names or class_names

    train, validation = split_validation(*train, validation_fraction, seed)
    mean, std = channel_mean_std(train[0])
    info = DatasetInfo(
        name=name,
        num_classes=entry.num_classes,
        image_shape=entry.image_shape,
        mean=mean,
        std=std,
        class_names=tuple(class_names),
        augment=entry.augment,
        source=source,
    )
    return Splits(train=train, validation=validation, test=test, info=info)


def _installed_dir(entry) -> str | None:
    """The first of the entry's system folders that holds all of its original files."""
    return next((folder for folder in entry.system_dirs if find_split_files(folder)), None)
