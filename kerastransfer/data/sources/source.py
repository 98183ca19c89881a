"""The `DatasetSource` every --dataset loader returns, and the one that reads a prepared TFDS
builder (Fashion-MNIST, imagenet2012, tfds:NAME, an image folder with train/ and test/).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Protocol

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from kerastransfer.errors import UsageError

if TYPE_CHECKING:
    from kerastransfer.data.sources.image_folder import FolderCounts

SPLITS = ("train", "test")

# Sources whose uint8 pixels take at most this many bytes are loaded into memory as arrays.
IN_MEMORY_BYTES = 4 * 2**30


@dataclasses.dataclass(eq=False)
class DatasetSource:
    """A labelled image dataset with a "train" and a "test" split.

    Attributes:
        name: the --dataset value it was loaded from.
        class_names: name of every class, indexed by label.
        image_shape: (H, W, C) shared by every image, or None when sizes vary.
        in_memory: True when `arrays` may be used (the pixels fit comfortably in memory);
            False means stream with `tf_dataset` (imagenet2012).
        test_split_name: the underlying split that "test" reads ("validation" for imagenet2012).
        reader: reader(split_name, classes) -> tf.data.Dataset of (uint8 image, int64 label)
            of the underlying split, keeping only `classes` (original ids) unless None.
        folder: for --dataset=image_folder, how many images of each class its "train" and
            "test" splits hold (image_folder.FolderCounts), known without reading an image;
            None for other sources.
    """

    name: str
    class_names: list[str]
    image_shape: tuple[int, ...] | None
    in_memory: bool
    test_split_name: str
    reader: Callable[[str, Collection[int] | None], tf.data.Dataset] = dataclasses.field(repr=False)
    folder: FolderCounts | None = None
    _arrays: dict[str, tuple[np.ndarray, np.ndarray]] = dataclasses.field(
        default_factory=dict, init=False, repr=False
    )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def tf_dataset(self, split: str, *, classes: Collection[int] | None = None) -> tf.data.Dataset:
        """(uint8 image [H, W, C], int64 label) pairs of `split` ("train" or "test"), in order.

        Args:
            split: "train" or "test".
            classes: keep only these class ids (original labels); the others are dropped
                before their images are decoded, which halves the decoding work of a half.
        """
        _check_split(split)
        return self.reader("train" if split == "train" else self.test_split_name, classes)

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """uint8 images [N, H, W, C] and int64 labels [N] of `split`, read once and kept."""
        if not self.in_memory:
            raise ValueError(f"{self.name} does not fit in memory: stream it with tf_dataset()")
        _check_split(split)
        if split not in self._arrays:
            assert self.image_shape is not None  # fits_memory: in memory means one shape
            batches = list(self.tf_dataset(split).batch(8192).as_numpy_iterator())
            images = (
                np.concatenate([b[0] for b in batches])
                if batches
                else np.zeros((0, *self.image_shape), np.uint8)
            )
            labels = np.concatenate([b[1] for b in batches]) if batches else np.zeros(0, np.int64)
            self._arrays[split] = (images, labels)
        return self._arrays[split]


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def from_builder(
    name: str, builder: tfds.core.DatasetBuilder, *, test_split_name: str
) -> DatasetSource:
    """A source reading a prepared TFDS builder's supervised (image, label) pairs."""
    image_key, label_key = builder.info.supervised_keys or (None, None)
    features = builder.info.features
    if not (
        label_key in features
        and isinstance(features[label_key], tfds.features.ClassLabel)
        and image_key in features
        and len(features[image_key].shape) == 3
        and features[image_key].np_dtype == np.uint8
    ):
        raise UsageError(
            f"--dataset={name} is not an image classification dataset (supervised keys "
            f"{builder.info.supervised_keys}); pick one with uint8 images and a class label"
        )
    image_feature, class_names = features[image_key], list(features[label_key].names)
    shape = tuple(image_feature.shape)
    image_shape = shape if None not in shape else None
    num_examples = sum(s.num_examples for s in builder.info.splits.values())

    def read(split_name: str, classes: Collection[int] | None) -> tf.data.Dataset:
        # Decode images only after the class filter when the feature is encoded (JPEG, PNG).
        defer = classes is not None and isinstance(image_feature, tfds.features.Image)
        ds = builder.as_dataset(
            split=split_name,
            shuffle_files=False,
            decoders={image_key: tfds.decode.SkipDecoding()} if defer else None,
        )
        if classes is not None:
            keep = tf.constant(class_mask(classes, len(class_names)))
            ds = ds.filter(lambda example: tf.gather(keep, example[label_key]))

        def to_pair(example):
            image = example[image_key]
            if defer:
                image = image_feature.decode_example(image)
            return image, tf.cast(example[label_key], tf.int64)

        return ds.map(to_pair, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    return DatasetSource(
        name=name,
        class_names=class_names,
        image_shape=image_shape,
        in_memory=fits_memory(image_shape, num_examples),
        test_split_name=test_split_name,
        reader=read,
    )


def fits_memory(image_shape: tuple[int, ...] | None, num_examples: int) -> bool:
    """True for fixed-size images whose uint8 pixels take at most IN_MEMORY_BYTES."""
    return image_shape is not None and num_examples * int(np.prod(image_shape)) <= IN_MEMORY_BYTES


def class_mask(classes: Collection[int], num_classes: int) -> np.ndarray:
    """bool [num_classes], True for the ids in `classes`."""
    mask = np.zeros(num_classes, bool)
    mask[list(classes)] = True
    return mask


class Loader(Protocol):
    """What a --dataset source registers in registry.DATASETS: its loader."""

    def __call__(
        self,
        name: str,
        *,
        data_dir: str | None,
        manual_dir: str | None,
        image_dir: str | None,
    ) -> DatasetSource: ...
