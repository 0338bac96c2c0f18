"""CIFAR-10-C's digital corruptions on float batches [N, H, W, C] in [0, 1]: brightness,
contrast, elastic transform, pixelate, JPEG.

Each takes (images, severity 1..5, numpy Generator); parameters are those of CIFAR-10-C's
generation script (make_cifar_c.py). Elastic's parameters are fractions of the image side, as
in the script; pixelate and JPEG go through PIL on 8-bit images, as the script does.
"""

import io

import numpy as np
from PIL import Image
from scipy import ndimage

BRIGHTNESS = (0.05, 0.1, 0.15, 0.2, 0.3)  # added to the HSV value
CONTRAST = (0.75, 0.5, 0.4, 0.3, 0.15)  # kept share of each channel's deviation from its mean
# (displacement α, smoothing σ, affine jitter), each × the image side
ELASTIC = (
    (0.0, 0.0, 0.08),
    (0.05, 0.2, 0.07),
    (0.08, 0.06, 0.06),
    (0.1, 0.04, 0.05),
    (0.1, 0.03, 0.03),
)
PIXELATE = (0.95, 0.9, 0.85, 0.75, 0.65)  # side of the coarse image, as a share
JPEG_QUALITY = (80, 65, 58, 50, 40)


def brightness(images, severity, rng):
    """Raises the HSV value (the largest channel) by a constant, keeping hue and saturation:
    every channel scales by new value / old value; black pixels become grey."""
    value = images.max(axis=-1, keepdims=True)
    raised = np.clip(value + BRIGHTNESS[severity - 1], 0.0, 1.0)
    scale = np.divide(raised, value, out=np.zeros_like(value), where=value > 0)
    return np.where(value > 0, images * scale, raised)


def contrast(images, severity, rng):
    means = images.mean(axis=(1, 2), keepdims=True)
    return np.clip((images - means) * CONTRAST[severity - 1] + means, 0.0, 1.0)


def _affine_through(source, target):
    """The 2×3 affine map sending three (row, col) points `source` onto `target`."""
    homogeneous = np.hstack([source, np.ones((3, 1))])
    return np.linalg.solve(homogeneous, target).T


def _resample(images, rows, cols, mode):
    """Bilinear samples images[n, rows[n], cols[n], c] for float coordinate maps [N, H, W]."""
    count, height, width, channels = images.shape
    shape = (count, height, width, channels)
    coordinates = (
        np.broadcast_to(np.arange(count)[:, None, None, None], shape),
        np.broadcast_to(rows[..., None], shape),
        np.broadcast_to(cols[..., None], shape),
        np.broadcast_to(np.arange(channels), shape),
    )
    return ndimage.map_coordinates(images, coordinates, order=1, mode=mode)


def elastic_transform(images, severity, rng):
    """A random affine jitter of three points around the centre, then a smooth random
    displacement field (uniform noise blurred by σ, scaled by α)."""
    count, height, width = images.shape[:3]
    side = min(height, width)
    alpha, sigma, jitter = (side * value for value in ELASTIC[severity - 1])
    centre = np.array([height // 2, width // 2], np.float64)
    arm = side // 3
    anchors = np.array([centre + arm, [centre[0] + arm, centre[1] - arm], centre - arm])
    rows, cols = np.meshgrid(
        np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64), indexing="ij"
    )
    source_rows = np.empty((count, height, width))
    source_cols = np.empty((count, height, width))
    for index in range(count):
        moved = anchors + rng.uniform(-jitter, jitter, size=anchors.shape)
        # The affine sends anchors to moved points; each output pixel reads the inverse image.
        inverse = _affine_through(moved, anchors)
        source_rows[index] = inverse[0, 0] * rows + inverse[0, 1] * cols + inverse[0, 2]
        source_cols[index] = inverse[1, 0] * rows + inverse[1, 1] * cols + inverse[1, 2]
    warped = _resample(images, source_rows, source_cols, mode="mirror")

    def displacement():
        noise = rng.uniform(-1.0, 1.0, size=(count, height, width))
        return (
            ndimage.gaussian_filter(noise, (0, sigma, sigma), mode="reflect", truncate=3.0) * alpha
        )

    d_cols, d_rows = displacement(), displacement()
    moved = _resample(warped, rows + d_rows, cols + d_cols, mode="reflect")
    return np.clip(moved, 0.0, 1.0)


def _through_pil(images, change):
    """Applies `change` (PIL image -> PIL image) to each 8-bit image (grey, RGB, or each
    channel alone for other channel counts) and returns floats in [0, 1]."""
    pixels = np.rint(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)
    channels = pixels.shape[-1]
    result = np.empty(pixels.shape, np.float64)
    for index, image in enumerate(pixels):
        if channels == 3:
            result[index] = np.asarray(change(Image.fromarray(image, "RGB")))
        else:
            for channel in range(channels):
                grey = Image.fromarray(np.ascontiguousarray(image[..., channel]), "L")
                result[index, ..., channel] = np.asarray(change(grey))
    return result / 255.0


def pixelate(images, severity, rng):
    height, width = images.shape[1:3]
    share = PIXELATE[severity - 1]
    coarse = (max(1, int(width * share)), max(1, int(height * share)))
    return _through_pil(
        images, lambda image: image.resize(coarse, Image.BOX).resize((width, height), Image.BOX)
    )


def jpeg_compression(images, severity, rng):
    quality = JPEG_QUALITY[severity - 1]

    def round_trip(image):
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        return Image.open(buffer).convert(image.mode)

    return _through_pil(images, round_trip)
