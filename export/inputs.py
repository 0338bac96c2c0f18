"""Images for the predictor: `.npy` arrays and picture files, checked against the model's input.

numpy (and Pillow, for pictures) only: no TensorFlow on this path. Sizes are read from a file's
header and checked before its data is decoded, so a header that claims billions of pixels is
refused, not allocated.
"""

import dataclasses
import math
import os
import warnings

import numpy as np

PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
UINT8_SCALE = 255.0
# The most values one .npy file may hold: 2**28 is 1 GiB as the float32 the model takes, far
# more than a predictor classifies at once (a million 128×128 RGB images fit in 13 % of it).
MAX_ARRAY_VALUES = 2**28


class InputError(ValueError):
    """An input does not fit the model; the message says what is wrong and how to fix it."""


@dataclasses.dataclass(frozen=True)
class PictureConversion:
    """Opt-in changes to a picture before it is checked against the model's input.

    Args:
        mode: `L` (grayscale, ITU-R 601-2 luma) or `RGB` to convert every picture to; None
            keeps its own mode.
        size: (height, width) to resize every picture to (bilinear with Pillow's
            antialiasing, the aspect ratio not kept); None keeps its own size.
    """

    mode: str | None = None
    size: tuple[int, int] | None = None


def convert_picture(picture, conversion):
    """The Pillow image `picture` converted as `conversion` says (a no-op for None)."""
    if conversion is None:
        return picture
    from PIL import Image

    if conversion.mode and picture.mode != conversion.mode:
        picture = picture.convert(conversion.mode)
    height, width = conversion.size or (picture.height, picture.width)
    if (picture.height, picture.width) != (height, width):
        picture = picture.resize((width, height), resample=Image.Resampling.BILINEAR)
    return picture


def _npy_header(path):
    """(shape, dtype, bytes of data after the header) of the .npy file at `path`."""
    with open(path, "rb") as f:
        try:
            major, _ = np.lib.format.read_magic(f)
            read_header = (
                np.lib.format.read_array_header_1_0
                if major == 1
                else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read_header(f)
        except ValueError as error:
            raise InputError(
                f"{path}: not a .npy file ({error}); save arrays with numpy.save"
            ) from error
        return shape, dtype, os.fstat(f.fileno()).st_size - f.tell()


def _check_npy_size(path, shape, dtype, data_bytes):
    """Refuses a header that claims more values than allowed, or more bytes than the file has."""
    values = math.prod(shape)
    if values > MAX_ARRAY_VALUES:
        raise InputError(
            f"{path}: the header claims an array of {list(shape)} ({values:,} values), over "
            f"the predictor's limit of {MAX_ARRAY_VALUES:,}; split it into smaller files"
        )
    if values * dtype.itemsize > data_bytes:
        raise InputError(
            f"{path}: cannot read the array (the header claims {list(shape)} {dtype}, "
            f"{values * dtype.itemsize:,} bytes; the file holds {data_bytes:,}); "
            f"the file may be truncated"
        )


def _read_npy(path):
    shape, dtype, data_bytes = _npy_header(path)
    if dtype.hasobject:
        raise InputError(
            f"{path}: holds Python objects, which are never unpickled; save a numeric array"
        )
    _check_npy_size(path, shape, dtype, data_bytes)
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise InputError(
            f"{path}: cannot read the array ({error}); the file may be truncated"
        ) from error


def _open_picture(path, image_shape, resizing=False):
    """The picture at `path`, opened (its header read, its pixels not yet decoded) and, unless
    `resizing`, checked to have the model's height and width."""
    try:
        from PIL import Image
    except ImportError as error:
        raise InputError(
            f"{path}: reading pictures needs Pillow (pip install pillow); "
            f"or give the images as .npy arrays"
        ) from error
    with warnings.catch_warnings():
        # Pillow warns above 89 M pixels and raises above twice that; the size check below
        # refuses any picture that is not the model's size, so its warning adds nothing.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            picture = Image.open(path)
        except Image.DecompressionBombError as error:
            model_size = _size(image_shape[:2])
            raise InputError(f"{path}: {error}; the model takes {model_size}") from error
    width, height = picture.size
    if not resizing and (height, width) != tuple(image_shape[:2]):
        picture.close()
        raise InputError(
            f"{path}: images are {height}×{width}, the model takes "
            f"{_size(image_shape[:2])}; resize them first (pictures: pass --resize)"
        )
    return picture


def _read_picture(path, image_shape, conversion=None):
    channels = image_shape[-1]
    resizing = conversion is not None and conversion.size is not None
    try:
        with _open_picture(path, image_shape, resizing) as picture:
            if picture.mode == "1":
                picture = picture.convert("L")
            elif picture.mode == "P":
                picture = picture.convert("RGB")
            picture = convert_picture(picture, conversion)
            if picture.mode not in ("L", "RGB"):
                raise InputError(
                    f"{path}: image mode {picture.mode} is not supported; save it "
                    f"as 8-bit grayscale (L) or RGB, or pass --grayscale or --rgb"
                )
            if picture.mode == "RGB" and channels == 1:
                raise InputError(
                    f"{path}: the image is RGB (3 channels), the model takes "
                    f"grayscale (1 channel); pass --grayscale to convert it"
                )
            array = np.asarray(picture, dtype=np.uint8)
    except InputError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        # Pillow's decoders report damaged files as any of these.
        raise InputError(f"{path}: cannot read the image ({error})") from error
    return array[..., np.newaxis] if array.ndim == 2 else array


def read_file(path, image_shape, conversion=None):
    """The raw array in `path`: a batch [N, H, W, C], or one image [H, W, C] or [H, W].

    A picture is converted as the `PictureConversion` says first (arrays never are).
    """
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".npy":
        return _read_npy(path)
    if suffix in PICTURE_SUFFIXES:
        return _read_picture(path, image_shape, conversion)
    raise InputError(
        f"{path}: unsupported file type {suffix or '(none)'}; give .npy arrays "
        f"or pictures ({', '.join(PICTURE_SUFFIXES)})"
    )


def _size(shape):
    return "×".join(str(int(size)) for size in shape)


def to_model_input(array, image_shape, label):
    """float32 [N, H, W, C] in [0, 1] from one image [H, W, C] or a batch [N, H, W, C].

    uint8 arrays are taken as 0..255 and divided by 255; floating arrays must already lie in
    [0, 1]. Anything else raises `InputError`.
    """
    array = np.asarray(array)
    if array.ndim == 3:
        array = array[np.newaxis]
    if array.ndim != 4:
        hint = "; add a channel axis (x[..., None])" if array.ndim == 2 else ""
        raise InputError(
            f"{label}: an array of rank {array.ndim} {list(array.shape)}; give "
            f"one image [H, W, C] or a batch [N, H, W, C]{hint}"
        )
    height, width, channels = image_shape
    if array.shape[-1] != channels:
        raise InputError(
            f"{label}: images have {array.shape[-1]} channel(s), the model takes "
            f"{channels} (channels last: [N, H, W, C]; pictures: pass --rgb or --grayscale)"
        )
    if tuple(array.shape[1:3]) != (height, width):
        raise InputError(
            f"{label}: images are {_size(array.shape[1:3])}, the model takes "
            f"{height}×{width}; resize them first (pictures: pass --resize)"
        )
    if array.shape[0] == 0:
        raise InputError(f"{label}: holds no images")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / UINT8_SCALE
    if not np.issubdtype(array.dtype, np.floating):
        raise InputError(
            f"{label}: dtype {array.dtype} is not supported; give float32 in "
            f"[0, 1] or uint8 in [0, 255]"
        )
    if not np.all(np.isfinite(array)):
        raise InputError(f"{label}: contains NaN or infinite values")
    low, high = float(array.min()), float(array.max())
    if low < 0.0 or high > 1.0:
        raise InputError(
            f"{label}: values span [{low:.4g}, {high:.4g}], the model takes "
            f"[0, 1]; divide 0..255 data by 255 (or pass it as uint8)"
        )
    return array.astype(np.float32)


def load_images(path, image_shape, conversion=None):
    """(names, float32 [N, H, W, C]) for the file at `path`; a batch's names are `path[i]`.

    `conversion`: a `PictureConversion` applied to pictures (None: none).
    """
    raw = read_file(path, image_shape, conversion)
    images = to_model_input(raw, image_shape, path)
    if np.ndim(raw) == 4:
        return [f"{path}[{index}]" for index in range(len(images))], images
    return [path], images
