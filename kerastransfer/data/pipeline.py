"""tf.data pipelines for one half (A or B) of a class split.

In-memory sources (Fashion-MNIST, CIFAR, small folders): `make_half_data` cuts numpy arrays
into train / validation / test for a half, `make_dataset` turns arrays into batches.
Sources too large for memory (imagenet2012): `make_streaming_half` filters, remaps and
preprocesses the TFDS stream directly.

Example:
    source = load_source("fashion_mnist")
    split = make_split("random:0", source.class_names, source.name)
    data = make_half_data(source, split, "B", seed=0)
    train = make_dataset(data.train_x, data.train_y, preprocessing, batch_size=256,
                         training=True, seed=0)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from kerastransfer.errors import UsageError

if TYPE_CHECKING:
    from kerastransfer.data.preprocessing import Preprocessing
    from kerastransfer.data.sources import DatasetSource
    from kerastransfer.data.splits import ClassSplit

# Examples preprocessed per map call when there is no augmentation (vectorized is faster).
_PREPROCESS_CHUNK = 1024
# Shuffle buffer of streamed training data: TFDS wrote the records shuffled already.
STREAM_SHUFFLE_BUFFER = 10_000
# Streamed validation hold-out: an example is held out when the hash of (class, its index
# within the class) falls in the first round(fraction * HOLDOUT_BUCKETS) buckets.
HOLDOUT_BUCKETS = 10_000
STREAM_PARTS = ("all", "train", "validation")
# What turns a batch of inputs into model input (e.g. Preprocessing.eval_tf).
Transform = Callable[[np.ndarray | tf.Tensor], tf.Tensor]


@dataclasses.dataclass
class HalfData:
    """One half's examples with labels remapped to 0..num_classes-1.

    Attributes:
        half: "A" or "B".
        num_classes: classes in the half.
        class_names: their names, indexed by new label.
        train_x, val_x, test_x: uint8 images [N, H, W, C].
        train_y, val_y, test_y: int64 labels [N] in 0..num_classes-1.
    """

    half: str
    num_classes: int
    class_names: list[str]
    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def make_half_data(
    source: DatasetSource,
    split: ClassSplit,
    half: str,
    *,
    validation_fraction: float = 0.1,
    seed: int = 0,
    examples_per_class: int | None = None,
    max_examples_per_class: int | None = None,
) -> HalfData:
    """Cuts an in-memory source into one half's train, validation and test arrays.

    Validation is, for every class, a fixed `validation_fraction` of its training images
    chosen by (`seed`, class id): the same seed gives the same images in every run, whichever
    half the class is in. Training keeps the rest, in the source's order.

    Args:
        source: a DatasetSource with `in_memory` True.
        split: the ClassSplit; `half` ("A" or "B") picks its classes.
        validation_fraction: share of each class's training images held out, 0 <= f < 1.
        seed: picks the validation images.
        examples_per_class: keep only the first k training images of every class (after the
            validation images are taken out): the paper's reduced-volume study.
        max_examples_per_class: cap train, validation and test at this many per class (first
            ones), for smoke runs.
    """
    if not 0 <= validation_fraction < 1:
        raise UsageError(f"validation fraction {validation_fraction} must be in [0, 1)")
    for flag, value in (
        ("examples_per_class", examples_per_class),
        ("max_examples_per_class", max_examples_per_class),
    ):
        if value is not None and value < 1:
            raise UsageError(f"{flag}={value} must be a positive integer")
    classes, remap = _half_classes(source, split, half)
    images, labels = source.arrays("train")
    train_idx: list[np.ndarray] = []
    val_idx: list[np.ndarray] = []
    for c in classes:
        idx = np.flatnonzero(labels == c)
        num_val = held_out_count(len(idx), validation_fraction)
        is_val = np.zeros(len(idx), bool)
        is_val[np.random.RandomState([seed, c]).permutation(len(idx))[:num_val]] = True
        train_idx.append(idx[~is_val][:examples_per_class][:max_examples_per_class])
        val_idx.append(idx[is_val][:max_examples_per_class])
    test_images, test_labels = source.arrays("test")
    test_idx = [np.flatnonzero(test_labels == c)[:max_examples_per_class] for c in classes]

    def take(
        x: np.ndarray, y: np.ndarray, parts: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        idx = np.sort(np.concatenate(parts))
        return x[idx], remap[y[idx]]

    train_x, train_y = take(images, labels, train_idx)
    val_x, val_y = take(images, labels, val_idx)
    test_x, test_y = take(test_images, test_labels, test_idx)
    return HalfData(
        half=half,
        num_classes=len(classes),
        class_names=split.half_names(half),
        train_x=train_x,
        train_y=train_y,
        val_x=val_x,
        val_y=val_y,
        test_x=test_x,
        test_y=test_y,
    )


def held_out_count(num_examples: int, validation_fraction: float) -> int:
    """How many of a class's `num_examples` training images an in-memory half holds out
    for validation: the fraction rounded to the nearest integer (Python's round, halves to
    even: 5 images at 0.1 hold out none)."""
    return int(round(num_examples * validation_fraction))


def streamed_held_out(
    labels: tf.Tensor, indices: tf.Tensor, validation_fraction: float
) -> tf.Tensor:
    """Whether a streamed half holds out image `indices` (0, 1, ... within its class, in
    stream order) of class `labels` (its id in the source) for validation: a hash of
    "label/index" falls in the first round(fraction * HOLDOUT_BUCKETS) buckets. Elementwise
    on int64 tensors (a scalar label goes with any indices)."""
    keys = tf.strings.join(
        [tf.strings.as_string(labels), tf.strings.as_string(indices)], separator="/"
    )
    buckets = tf.strings.to_hash_bucket_fast(keys, HOLDOUT_BUCKETS)
    return buckets < round(validation_fraction * HOLDOUT_BUCKETS)


def streamed_held_out_flags(
    label: int, num_examples: int, validation_fraction: float
) -> np.ndarray:
    """bool [num_examples]: which of images 0..num_examples-1 of class `label` the streamed
    hold-out picks (read without the images)."""
    indices = tf.range(num_examples, dtype=tf.int64)
    return streamed_held_out(tf.constant(label, tf.int64), indices, validation_fraction).numpy()


def _half_classes(
    source: DatasetSource, split: ClassSplit, half: str
) -> tuple[tuple[int, ...], np.ndarray]:
    """The half's class ids, and int64 [num_classes]: each id's new label (-1: other half)."""
    if tuple(split.class_names) != tuple(source.class_names):
        raise UsageError(
            f"split {split.name} was made for the classes of {split.dataset}, which differ "
            f"from those of {source.name}; make the split again for this dataset"
        )
    classes = split.classes(half)
    remap = np.full(source.num_classes, -1, np.int64)
    remap[list(classes)] = np.arange(len(classes))
    return classes, remap


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    preprocessing: Preprocessing,
    *,
    batch_size: int,
    training: bool,
    seed: int = 0,
    cache: bool = True,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batches of (float32 model input, int64 label) from in-memory arrays.

    Without augmentation the preprocessed examples are cached in memory (`cache`), so the
    resize and normalization run once; mind the size: N * height * width * channels * 4
    bytes. Training reshuffles every epoch; the sequence of epochs is fixed by `seed`.
    With augmentation (`preprocessing.augments`) training runs `train_tf` per image in one
    thread, so the random crops and mirrors are also fixed by `seed`.

    Args:
        images: uint8 [N, H, W, C]; labels: int64 [N].
        preprocessing: a Preprocessing.
        batch_size: examples per batch.
        training: shuffle (and augment, if the preprocessing does).
        seed: shuffle and augmentation seed.
        cache: keep the preprocessed examples in memory (ignored when augmenting).
        drop_remainder: drop the last, smaller batch.
    """
    ds = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int64)))
    augment = training and preprocessing.augments
    if augment:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)

        def train_map(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return preprocessing.train_tf(image, seed=seed), label

        ds = ds.map(train_map)  # sequential: stateful random ops stay deterministic
    else:

        def eval_map(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return preprocessing.eval_tf(image), label

        ds = ds.batch(_PREPROCESS_CHUNK).map(eval_map, num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.unbatch()
        if cache:
            ds = ds.cache()
        if training:
            ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def gathered_batches(
    inputs: np.ndarray | tf.Tensor,
    labels: np.ndarray | tf.Tensor,
    batch_size: int,
    *,
    shuffle_seed: int | None = None,
    transform: Transform | None = None,
) -> tf.data.Dataset:
    """Batches of (inputs, labels) gathered from in-memory arrays or tensors.

    Only indices are shuffled (every pass, fixed by `shuffle_seed`) and each batch is one
    gather, then `transform` (e.g. `Preprocessing.eval_tf`) on the whole batch: no
    per-example work and no shuffle buffer holding a second copy of the data. The order
    equals that of `make_dataset` with the same seed (both shuffle N elements with it).
    """
    x, y = tf.convert_to_tensor(inputs), tf.convert_to_tensor(labels, tf.int64)
    order = tf.data.Dataset.range(len(labels))
    if shuffle_seed is not None:
        order = order.shuffle(len(labels), seed=shuffle_seed, reshuffle_each_iteration=True)
    transform = transform or (lambda batch: batch)
    return order.batch(batch_size).map(
        lambda idx: (transform(tf.gather(x, idx)), tf.gather(y, idx))
    )


class ArrayBatches:
    """Evaluation batches of in-memory inputs: re-iterable, each batch made when it is used.

    Unlike a cached tf.data pipeline it holds no preprocessed copy of the images and builds
    no iterator per pass: slicing arrays costs nothing, and `transform` (e.g.
    `Preprocessing.eval_tf`) runs on one batch at a time, so nothing larger than a batch is
    ever held in float32.
    """

    def __init__(
        self,
        inputs: np.ndarray,
        labels: np.ndarray | Sequence[int],
        batch_size: int,
        transform: Transform | None = None,
    ) -> None:
        self.inputs, self.labels = inputs, np.asarray(labels, np.int64)
        self.batch_size = batch_size
        self.transform = transform or tf.convert_to_tensor

    def __len__(self) -> int:
        return len(self.labels)

    def __iter__(self) -> Iterator[tuple[tf.Tensor, tf.Tensor]]:
        for start in range(0, len(self.labels), self.batch_size):
            end = start + self.batch_size
            yield self.transform(self.inputs[start:end]), tf.constant(self.labels[start:end])


def make_streaming_half(
    source: DatasetSource,
    split: ClassSplit,
    half: str,
    preprocessing: Preprocessing,
    *,
    split_name: str,
    batch_size: int,
    training: bool,
    seed: int,
    part: str = "all",
    validation_fraction: float = 0.0,
    examples_per_class: int | None = None,
    max_examples_per_class: int | None = None,
) -> tf.data.Dataset:
    """Batches of (float32 model input, int64 label) of one half, streamed from the source.

    For sources that do not fit in memory (imagenet2012): the other half's examples are
    dropped before their images are decoded, labels are remapped to 0..K-1, then training
    shuffles (buffer STREAM_SHUFFLE_BUFFER) and augments per image with `train_tf` (random
    crop and mirror), evaluation center-crops with `eval_tf`. Preprocessing runs in parallel,
    so the crops are not bit-reproducible; the shuffle order is fixed by `seed`.

    Args:
        source: a DatasetSource.
        split: the ClassSplit; `half` ("A" or "B") picks its classes.
        preprocessing: a Preprocessing.
        split_name: "train" or "test" (imagenet2012's "test" is its validation set).
        batch_size: examples per batch.
        training: shuffle and augment.
        seed: shuffle seed (and op seed of the random crops).
        part: "all" examples of `split_name`, or, of "train", the "validation" examples held
            out (`validation_fraction` of each class, chosen by a hash of the class and the
            example's index within it, so the same images whichever half the class is in)
            or the "train" examples that remain.
        validation_fraction: share held out, 0 <= f < 1 (approximate per class: hashed).
        examples_per_class: keep the first k examples of each class (after the hold-out).
        max_examples_per_class: cap every class at this many (smoke runs).
    """
    if part not in STREAM_PARTS or (part != "all" and split_name != "train"):
        raise ValueError(
            f"part must be one of {STREAM_PARTS} (train/validation of split "
            f"'train' only), got {part!r} of {split_name!r}"
        )
    classes, remap = _half_classes(source, split, half)
    remap = tf.constant(remap)
    ds = source.tf_dataset(split_name, classes=classes)
    limits = [k for k in (examples_per_class, max_examples_per_class) if k]
    if part != "all" or limits:
        ds = _select_per_class(
            ds, source.num_classes, part, validation_fraction, min(limits) if limits else None
        )
    if training:
        ds = ds.shuffle(STREAM_SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)

    def preprocess(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = (
            preprocessing.train_tf(image, seed=seed) if training else (preprocessing.eval_tf(image))
        )
        return image, tf.gather(remap, label)

    ds = ds.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE, deterministic=not training)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _select_per_class(
    ds: tf.data.Dataset, num_classes: int, part: str, validation_fraction: float, limit: int | None
) -> tf.data.Dataset:
    """Per class, in stream order: the hold-out `part` of each class, then its first `limit`.

    Examples are numbered within their class by a running count (`scan`), which is what
    makes the hold-out and the first-k choice independent of the other classes.
    """

    def number(counts, example):
        image, label = example
        return (
            tf.tensor_scatter_nd_add(counts, [[label]], tf.ones([1], tf.int64)),
            (image, label, tf.gather(counts, label)),
        )

    def held_out(image, label, index):
        return streamed_held_out(label, index, validation_fraction)

    zeros = tf.zeros([num_classes], tf.int64)
    ds = ds.scan(zeros, number)
    if part != "all":
        keep = (
            held_out
            if part == "validation"
            else (lambda *example: tf.logical_not(held_out(*example)))
        )
        ds = ds.filter(keep).map(lambda image, label, index: (image, label))
        ds = ds.scan(zeros, number)  # number again among the kept examples
    if limit:
        ds = ds.filter(lambda image, label, index: index < limit)
    return ds.map(lambda image, label, index: (image, label))
