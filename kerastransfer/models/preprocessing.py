"""What an architecture expects of its input: size, channels, scale, mean, channel order; each
family's input_spec (models/family.py) is built from these.

Plain values (no TensorFlow here): the data layer turns them into a data.Preprocessing, which
the training pipelines and the exported SavedModel both apply.
"""

from collections.abc import Callable
from typing import TypedDict

import numpy as np

# Per-channel RGB mean of the ILSVRC2012 training set, in 0..255 pixel units (Caffe's reference
# model subtracted a mean image; its channel means are these values).
IMAGENET_MEAN_RGB = (123.68, 116.779, 103.939)


class _InputSize(TypedDict):
    image_size: tuple[int, int]
    channels: int


class Normalization(TypedDict, total=False):
    """How pixels 0..255 are normalized: `(x - mean) * scale`, then the channel order
    reversed or not (`affine_of` gives all three; none: data.Preprocessing's defaults)."""

    mean: tuple[float, ...] | None
    scale: float | tuple[float, ...]
    reverse_channels: bool


class InputSpec(_InputSize, Normalization, total=False):
    """The data.Preprocessing arguments of a model's input (a family's `input_spec`): its
    size and channels always, the rest where the model needs other than the defaults."""

    resize_shorter: int


def input_size(
    image_size: int, source_image_shape: tuple[int, ...] | None, channels: int | None = None
) -> InputSpec:
    """{"image_size": (H, W), "channels": C} of a model's input: --image_size, else the
    dataset's own size; the dataset's channels unless the model takes `channels`.

    Images of varying sizes (`source_image_shape` None) are resized to --image_size, else to
    224 x 224, with 3 channels.
    """
    if source_image_shape is None:
        side = image_size or 224
        return {"image_size": (side, side), "channels": 3}
    height, width = (image_size, image_size) if image_size else source_image_shape[:2]
    return {"image_size": (height, width), "channels": channels or source_image_shape[2]}


def affine_of(function: Callable[[np.ndarray], np.ndarray]) -> Normalization:
    """{"mean", "scale", "reverse_channels"} with which data.Preprocessing computes what
    `function` does to RGB pixels 0..255: `(x - mean) * scale`, then the channel order
    reversed or not.

    Found by probing `function` with one pixel per channel and checked on random pixels.

    Raises:
        ValueError: `function` is not a per-channel affine map with at most a channel reversal.
    """
    probe = np.zeros((4, 1, 1, 3), np.float32)
    probe[1:, 0, 0] = 255.0 * np.eye(3)
    out = np.asarray(function(probe.copy()), np.float64).reshape(4, 3)
    offset, response = out[0], out[1:] - out[0]  # response[input channel, output channel]
    reverse = not np.allclose(response, np.diag(np.diag(response)))  # not channel-wise
    if reverse:
        offset, response = offset[::-1], response[:, ::-1]
    scale = np.diag(response) / 255.0
    mean = -offset / scale
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype(np.float32)
    expected = np.asarray(function(pixels.copy()), np.float64)
    ours = (pixels - mean) * scale
    if not np.allclose(ours[..., ::-1] if reverse else ours, expected, rtol=1e-4, atol=1e-3):
        raise ValueError(f"{function} is not a per-channel affine map of the pixels")
    scales = _rounded(scale)
    return {
        "mean": None if np.allclose(mean, 0) else _rounded(mean),
        "scale": scales[0] if len(set(scales)) == 1 else scales,
        "reverse_channels": reverse,
    }


def _rounded(values: np.ndarray) -> tuple[float, ...]:
    """A tuple of floats to 6 significant digits, as readable in config and metadata files."""
    return tuple(float(f"{value:.6g}") for value in values)
