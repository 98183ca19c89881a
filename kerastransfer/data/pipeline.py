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

import dataclasses

import numpy as np
import tensorflow as tf

from kerastransfer.errors import UsageError

# Examples preprocessed per map call when there is no augmentation (vectorized is faster).
_PREPROCESS_CHUNK = 1024
# Shuffle buffer of streamed training data: TFDS wrote the records shuffled already.
STREAM_SHUFFLE_BUFFER = 10_000
# Streamed validation hold-out: an example is held out when the hash of (class, its index
# within the class) falls in the first round(fraction * HOLDOUT_BUCKETS) buckets.
HOLDOUT_BUCKETS = 10_000
STREAM_PARTS = ("all", "train", "validation")


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
    class_names: list
    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def make_half_data(
    source,
    split,
    half,
    *,
    validation_fraction=0.1,
    seed=0,
    examples_per_class=None,
    max_examples_per_class=None,
):
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
    train_idx, val_idx = [], []
    for c in classes:
        idx = np.flatnonzero(labels == c)
        num_val = int(round(len(idx) * validation_fraction))
        is_val = np.zeros(len(idx), bool)
        is_val[np.random.RandomState([seed, c]).permutation(len(idx))[:num_val]] = True
        train_idx.append(idx[~is_val][:examples_per_class][:max_examples_per_class])
        val_idx.append(idx[is_val][:max_examples_per_class])
    test_images, test_labels = source.arrays("test")
    test_idx = [np.flatnonzero(test_labels == c)[:max_examples_per_class] for c in classes]

    def take(x, y, idx):
        idx = np.sort(np.concatenate(idx))
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


def _half_classes(source, split, half):
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
    images, labels, preprocessing, *, batch_size, training, seed=0, cache=True, drop_remainder=False
):
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

        def train_map(image, label):
            return preprocessing.train_tf(image, seed=seed), label

        ds = ds.map(train_map)  # sequential: stateful random ops stay deterministic
    else:

        def eval_map(image, label):
            return preprocessing.eval_tf(image), label

        ds = ds.batch(_PREPROCESS_CHUNK).map(eval_map, num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.unbatch()
        if cache:
            ds = ds.cache()
        if training:
            ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def gathered_batches(inputs, labels, batch_size, *, shuffle_seed=None, transform=None):
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

    def __init__(self, inputs, labels, batch_size, transform=None):
        self.inputs, self.labels = inputs, np.asarray(labels, np.int64)
        self.batch_size = batch_size
        self.transform = transform or tf.convert_to_tensor

    def __len__(self):
        return len(self.labels)

    def __iter__(self):
        for start in range(0, len(self.labels), self.batch_size):
            end = start + self.batch_size
            yield self.transform(self.inputs[start:end]), tf.constant(self.labels[start:end])


def make_streaming_half(
    source,
    split,
    half,
    preprocessing,
    *,
    split_name,
    batch_size,
    training,
    seed,
    part="all",
    validation_fraction=0.0,
    examples_per_class=None,
    max_examples_per_class=None,
):
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

    def preprocess(image, label):
        image = (
            preprocessing.train_tf(image, seed=seed) if training else (preprocessing.eval_tf(image))
        )
        return image, tf.gather(remap, label)

    ds = ds.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE, deterministic=not training)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _select_per_class(ds, num_classes, part, validation_fraction, limit):
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
        key = tf.strings.format("{}/{}", (label, index))
        bucket = tf.strings.to_hash_bucket_fast(key, HOLDOUT_BUCKETS)
        return bucket < round(validation_fraction * HOLDOUT_BUCKETS)

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
