"""Per-channel statistics of uint8 images."""

import numpy as np

_CHUNK = 4096


def channel_mean_std(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 [N, H, W, C] images on the [0, 1] scale."""
    chunks = (images[start : start + _CHUNK] for start in range(0, len(images), _CHUNK))
    return mean_std_of_chunks(chunks, images.shape[-1])


def mean_std_of_chunks(chunks, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std on the [0, 1] scale over uint8 chunks [n, H, W, `channels`]."""
    total = np.zeros(channels)
    total_sq = np.zeros(channels)
    count = 0
    for images in chunks:
        chunk = images.reshape(-1, channels).astype(np.float64) / 255.0
        total += chunk.sum(axis=0)
        total_sq += np.square(chunk).sum(axis=0)
        count += len(chunk)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - np.square(mean), 0.0))
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)
