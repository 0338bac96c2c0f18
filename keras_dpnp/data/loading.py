"""`load_dataset`: one entry point over digits, original archives and TFDS."""

import os

from keras_dpnp.data.archives import read_original_archives
from keras_dpnp.data.catalog import catalog_entry
from keras_dpnp.data.digits import load_digits_arrays
from keras_dpnp.data.info import DatasetInfo, Splits
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
) -> Splits:
    """Loads `name` as uint8 image / int64 label arrays with its `DatasetInfo`.

    digits always comes from scikit-learn (data_dir and manual_dir are
    ignored). The others come from the original archives in `manual_dir` when
    given, else from TFDS in `data_dir`, downloading only if `download` is set
    and the download host answers. A stratified validation split of
    `validation_fraction` is taken from train only, seeded by `seed`.
    """
    entry = catalog_entry(name)
    if name == "digits":
        train, test = load_digits_arrays()
        class_names, source = None, "scikit-learn bundled digits"
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
