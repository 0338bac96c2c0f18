"""Static facts about the supported datasets."""

import dataclasses

DATASETS: tuple[str, ...] = (
    "digits",
    "fashion_mnist",
    "mnist",
    "cifar10",
    "cifar100",
    "svhn_cropped",
)

DIGITS_TEST_SIZE = 450
DIGITS_TEST_SEED = 0

_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/"
_SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"
_FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
_IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


@dataclasses.dataclass(frozen=True)
class CatalogEntry:
    """What a dataset looks like and where its original files come from."""

    name: str
    num_classes: int
    image_shape: tuple[int, int, int]
    augment: str
    # Original files, by name, with their official download URLs.
    archives: dict[str, str]
    # None when the names come from the data itself (CIFAR-100).
    class_names: tuple[str, ...] | None
    # How the original files are stored: "idx", "cifar_binary", "svhn_mat" or "" (none).
    original_format: str = ""
    # Folders where an operating-system package installs the original files, and how.
    system_dirs: tuple[str, ...] = ()
    system_install: str = ""


_DIGIT_NAMES = tuple(str(digit) for digit in range(10))

CATALOG: dict[str, CatalogEntry] = {
    "digits": CatalogEntry(
        name="digits",
        num_classes=10,
        image_shape=(8, 8, 1),
        augment="none",
        archives={},
        class_names=_DIGIT_NAMES,
    ),
    "fashion_mnist": CatalogEntry(
        name="fashion_mnist",
        num_classes=10,
        image_shape=(28, 28, 1),
        augment="none",
        archives={name: _FASHION_MNIST_URL + name for name in _IDX_FILES},
        class_names=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        original_format="idx",
        # Debian's and Ubuntu's package dataset-fashion-mnist.
        system_dirs=("/usr/share/datasets/fashion-mnist",),
        system_install="apt-get install dataset-fashion-mnist",
    ),
    "mnist": CatalogEntry(
        name="mnist",
        num_classes=10,
        image_shape=(28, 28, 1),
        augment="none",
        archives={name: _MNIST_URL + name for name in _IDX_FILES},
        class_names=_DIGIT_NAMES,
        original_format="idx",
    ),
    "cifar10": CatalogEntry(
        name="cifar10",
        num_classes=10,
        image_shape=(32, 32, 3),
        augment="crop_flip",
        archives={"cifar-10-binary.tar.gz": _CIFAR_URL + "cifar-10-binary.tar.gz"},
        original_format="cifar_binary",
        class_names=(
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ),
    ),
    "cifar100": CatalogEntry(
        name="cifar100",
        num_classes=100,
        image_shape=(32, 32, 3),
        augment="crop_flip",
        archives={"cifar-100-binary.tar.gz": _CIFAR_URL + "cifar-100-binary.tar.gz"},
        original_format="cifar_binary",
        class_names=None,
    ),
    "svhn_cropped": CatalogEntry(
        name="svhn_cropped",
        num_classes=10,
        image_shape=(32, 32, 3),
        augment="crop",
        archives={
            "train_32x32.mat": _SVHN_URL + "train_32x32.mat",
            "test_32x32.mat": _SVHN_URL + "test_32x32.mat",
        },
        original_format="svhn_mat",
        class_names=_DIGIT_NAMES,
    ),
}


def catalog_entry(name: str) -> CatalogEntry:
    """Returns the entry for `name`, or raises ValueError naming the known ones."""
    if name not in CATALOG:
        raise ValueError(
            f"Unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}, or "
            "tfds:<name> (any TFDS image-classification set) and folder:<path> "
            "(a folder with one subfolder of images per class)."
        )
    return CATALOG[name]
