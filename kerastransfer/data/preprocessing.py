"""Per-architecture image preprocessing, shared by the training pipelines and the exported graph.

One `Preprocessing` value describes how raw uint8 pixels become model input, so the
SavedModel served in production computes exactly what training saw.
"""

import dataclasses
from typing import Any

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """How raw pixels (0..255) become model input.

    Attributes:
        image_size: (height, width) the model takes.
        channels: channels the model takes (1 or 3).
        scale: multiply pixels by this after mean subtraction (1/255 maps to [0, 1]); one
            value, or one per channel (a per-channel standard deviation's inverse).
        mean: per-channel mean subtracted first, or None.
        resize_shorter: for large images: resize the shorter side to this before cropping
            (ImageNet: 256, then a 227 crop); None resizes straight to `image_size`.
        reverse_channels: reverse the channels last (RGB to BGR), for models trained on
            BGR input (the keras.applications ResNets, from Caffe).
    """

    image_size: tuple[int, int]
    channels: int
    scale: float | tuple[float, ...] = 1.0 / 255.0
    mean: tuple[float, ...] | None = None
    resize_shorter: int | None = None
    reverse_channels: bool = False

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Preprocessing":
        data = dict(data)
        data["image_size"] = tuple(data["image_size"])
        for key in ("mean", "scale"):
            if isinstance(data.get(key), list):
                data[key] = tuple(data[key])
        return cls(**data)

    def _normalize(self, images: tf.Tensor) -> tf.Tensor:
        images = tf.cast(images, tf.float32)
        if self.mean is not None:
            images = images - tf.constant(self.mean, tf.float32)
        images = images * tf.constant(self.scale, tf.float32)
        return tf.reverse(images, [-1]) if self.reverse_channels else images

    def _match_channels(self, images: tf.Tensor) -> tf.Tensor:
        """Grey to RGB by repeating, RGB to grey by the ITU-R 601 luma weights."""
        have = images.shape[-1]
        if have == self.channels or have is None:
            return images
        if have == 1 and self.channels == 3:
            return tf.image.grayscale_to_rgb(images)
        if have == 3 and self.channels == 1:
            return tf.image.rgb_to_grayscale(images)
        raise ValueError(f"cannot map {have} image channels to {self.channels}")

    def resize_shorter_side(self, images: tf.Tensor) -> tf.Tensor:
        """Resizes a batch so its shorter side is `resize_shorter`, keeping the aspect ratio."""
        shape = tf.shape(images)
        height, width = tf.cast(shape[-3], tf.float32), tf.cast(shape[-2], tf.float32)
        factor = self.resize_shorter / tf.minimum(height, width)
        new_size = tf.cast(tf.round(tf.stack([height * factor, width * factor])), tf.int32)
        return tf.image.resize(images, new_size)

    def eval_tf(self, images: tf.Tensor | np.ndarray) -> tf.Tensor:
        """Deterministic path (validation, test, serving): resize/center-crop and normalize.

        Args:
            images: uint8 or float tensor [..., H, W, C] with pixel values 0..255.
        Returns:
            float32 tensor [..., image_size[0], image_size[1], channels].
        """
        images = self._match_channels(tf.cast(images, tf.float32))
        if self.resize_shorter:
            images = self.resize_shorter_side(images)
            images = tf.image.resize_with_crop_or_pad(images, *self.image_size)
        elif images.shape[-3:-1] != tuple(self.image_size):
            images = tf.image.resize(images, self.image_size)
        return self._normalize(images)

    def train_tf(self, image: tf.Tensor, seed: int | None = None) -> tf.Tensor:
        """Training path for one image: random crop and mirror when `resize_shorter` is set.

        Without `resize_shorter` (small datasets) it equals `eval_tf`: no augmentation, which
        is what lets frozen-prefix features be cached.
        """
        if not self.resize_shorter:
            return self.eval_tf(image)
        image = self._match_channels(tf.cast(image, tf.float32))
        image = self.resize_shorter_side(image)
        image = tf.image.random_crop(image, (*self.image_size, self.channels), seed=seed)
        image = tf.image.random_flip_left_right(image, seed=seed)
        return self._normalize(image)

    @property
    def augments(self) -> bool:
        """True when training draws random crops/mirrors (frozen-prefix caching is then off)."""
        return bool(self.resize_shorter)
