"""Synthetic data for the data-layer tests: tiny IDX files, PNG folders, in-memory sources.

Every synthetic image carries its own identity in its first pixels, so a test can tell where
an image came from after any filtering or shuffling:
    pixel (0, 0, 0) = class id, (0, 1, 0) and (0, 2, 0) = the example index (low, high byte).
"""

import os

import numpy as np
import tensorflow as tf
from PIL import Image

from kerastransfer.data import fashion_mnist, idx
from kerastransfer.data.sources import DatasetSource


def tagged_images(labels, shape, seed=0):
    """uint8 images [N, *shape] with random pixels and each one's label and index tagged."""
    labels = np.asarray(labels)
    images = np.random.RandomState(seed).randint(0, 256, (len(labels), *shape), dtype=np.uint8)
    index = np.arange(len(labels))
    images[:, 0, 0, 0] = labels
    images[:, 0, 1, 0] = index % 256
    images[:, 0, 2, 0] = index // 256
    return images


def image_tags(images):
    """(class ids, example indices) read back from images made by `tagged_images`."""
    images = np.asarray(images)
    labels = images[:, 0, 0, 0].astype(np.int64)
    index = images[:, 0, 1, 0].astype(np.int64) + 256 * images[:, 0, 2, 0].astype(np.int64)
    return labels, index


def cycling_labels(num_examples, num_classes):
    return np.arange(num_examples) % num_classes


def write_fashion_mnist_files(manual_dir, num_train=40, num_test=20):
    """Writes the four Fashion-MNIST IDX .gz files with tagged 28x28 images.

    Returns {"train": (images [N, 28, 28], labels), "test": (...)} as written.
    """
    written = {}
    for split, num in (("train", num_train), ("test", num_test)):
        labels = cycling_labels(num, 10).astype(np.uint8)
        images = tagged_images(labels, (28, 28, 1), seed=len(split))[..., 0]
        images_name, labels_name = fashion_mnist.FILES[split]
        idx.write_idx(os.path.join(manual_dir, images_name), images)
        idx.write_idx(os.path.join(manual_dir, labels_name), labels)
        written[split] = (images, labels)
    return written


def write_png(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path)


def write_image_folder(root, images_per_class, sizes=((8, 8),), seed=0):
    """A user's folder: PNGs of random pixels (not tagged) root/CLASS/00.png, 01.png, ...,
    `images_per_class` {class: count}; image i of a class is sizes[i % len(sizes)] (h, w), so
    two sizes make a folder that streams."""
    rng = np.random.default_rng(seed)
    for name, count in images_per_class.items():
        for i in range(count):
            height, width = sizes[i % len(sizes)]
            pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            write_png(os.path.join(root, name, f"{i:02d}.png"), pixels)


def array_source(train, test, class_names, name="synthetic"):
    """An in-memory DatasetSource over (images, labels) pairs, for tests without TFDS."""
    splits = {"train": train, "test": test}

    def read(split_name, classes):
        images, labels = splits[split_name]
        if classes is not None:
            keep = np.isin(labels, classes)
            images, labels = images[keep], labels[keep]
        return tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int64)))

    return DatasetSource(
        name=name,
        class_names=list(class_names),
        image_shape=train[0].shape[1:],
        in_memory=True,
        test_split_name="test",
        reader=read,
    )


def tagged_source(num_classes=6, train_per_class=20, test_per_class=5, shape=(8, 8, 1)):
    """An array_source whose images carry their class and index (see `tagged_images`)."""
    train_labels = cycling_labels(num_classes * train_per_class, num_classes)
    test_labels = cycling_labels(num_classes * test_per_class, num_classes)
    return array_source(
        (tagged_images(train_labels, shape, seed=1), train_labels),
        (tagged_images(test_labels, shape, seed=2), test_labels),
        [f"class{c}" for c in range(num_classes)],
    )
