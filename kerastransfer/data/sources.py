"""Where images come from: one `DatasetSource` per `--dataset` value.

Every source has a "train" and a "test" split of (uint8 image [H, W, C], int64 label) pairs.
"test" is where accuracy is reported: TFDS's "test" split, except for imagenet2012 whose
"test" reads the 50,000 official validation images, where the paper measured.

    --dataset=fashion_mnist   local Fashion-MNIST IDX files (Debian's dataset-fashion-mnist)
    --dataset=imagenet2012    TFDS imagenet2012, built from the two ILSVRC2012 tars in --manual_dir
    --dataset=image_folder    --image_dir=DIR with DIR/train/CLASS/* and DIR/test/CLASS/*, or
                              just DIR/CLASS/* (then every 5th image of a class, by file name,
                              is held out as test)
    --dataset=tfds:NAME       any registered TFDS image-classification dataset (downloads)

Example:
    source = load_source("fashion_mnist", data_dir="/tmp/tfds")
    images, labels = source.arrays("train")       # uint8 [60000, 28, 28, 1], int64 [60000]
"""

import dataclasses
import os
from collections.abc import Callable

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from kerastransfer.data import fashion_mnist
from kerastransfer.errors import UsageError

SPLITS = ("train", "test")
KNOWN_DATASETS = ("fashion_mnist", "imagenet2012", "image_folder", "tfds:NAME")

# Sources whose uint8 pixels take at most this many bytes are loaded into memory as arrays.
IN_MEMORY_BYTES = 4 * 2**30

IMAGENET_TARS = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")  # what tfds.ImageFolder reads
FLAT_FOLDER_TEST_EVERY = 5


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
    """

    name: str
    class_names: list
    image_shape: tuple | None
    in_memory: bool
    test_split_name: str
    reader: Callable[[str, tuple | None], tf.data.Dataset] = dataclasses.field(repr=False)
    _arrays: dict = dataclasses.field(default_factory=dict, init=False, repr=False)

    @property
    def num_classes(self):
        return len(self.class_names)

    def tf_dataset(self, split, *, classes=None):
        """(uint8 image [H, W, C], int64 label) pairs of `split` ("train" or "test"), in order.

        Args:
            split: "train" or "test".
            classes: keep only these class ids (original labels); the others are dropped
                before their images are decoded, which halves the decoding work of a half.
        """
        _check_split(split)
        return self.reader("train" if split == "train" else self.test_split_name, classes)

    def arrays(self, split):
        """uint8 images [N, H, W, C] and int64 labels [N] of `split`, read once and kept."""
        if not self.in_memory:
            raise ValueError(f"{self.name} does not fit in memory: stream it with tf_dataset()")
        _check_split(split)
        if split not in self._arrays:
            batches = list(self.tf_dataset(split).batch(8192).as_numpy_iterator())
            images = (
                np.concatenate([b[0] for b in batches])
                if batches
                else np.zeros((0, *self.image_shape), np.uint8)
            )
            labels = np.concatenate([b[1] for b in batches]) if batches else np.zeros(0, np.int64)
            self._arrays[split] = (images, labels)
        return self._arrays[split]


def load_source(name, *, data_dir=None, manual_dir=None, image_dir=None):
    """Returns the `DatasetSource` for a --dataset value, preparing TFDS data when needed.

    Args:
        name: "fashion_mnist", "imagenet2012", "image_folder" or "tfds:NAME".
        data_dir: TFDS data dir (None: TFDS's default, ~/tensorflow_datasets).
        manual_dir: folder with the raw files: Fashion-MNIST IDX files (default
            /usr/share/datasets/fashion-mnist) or the ILSVRC2012 tars.
        image_dir: the folder for "image_folder".
    Raises:
        UsageError: unknown name, or missing or broken files; the message says what to do.
    """
    if name == "fashion_mnist":
        builder = fashion_mnist.prepare(data_dir=data_dir, manual_dir=manual_dir)
        return _from_builder(name, builder, test_split_name="test")
    if name in ("imagenet2012", "tfds:imagenet2012"):  # needs the tars, never downloads
        return _imagenet2012(name, data_dir, manual_dir)
    if name == "image_folder":
        if not image_dir:
            raise UsageError("--dataset=image_folder needs --image_dir=DIR (DIR/CLASS/*.jpg)")
        return _image_folder(os.fspath(image_dir))
    if name.startswith("tfds:") and len(name) > len("tfds:"):
        return _registered_tfds(name, data_dir)
    raise UsageError(
        f"unknown --dataset={name!r}; known: {', '.join(KNOWN_DATASETS)} "
        "(e.g. --dataset=tfds:cifar100)"
    )


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def _from_builder(name, builder, *, test_split_name):
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

    def read(split_name, classes):
        # Decode images only after the class filter when the feature is encoded (JPEG, PNG).
        defer = classes is not None and isinstance(image_feature, tfds.features.Image)
        ds = builder.as_dataset(
            split=split_name,
            shuffle_files=False,
            decoders={image_key: tfds.decode.SkipDecoding()} if defer else None,
        )
        if classes is not None:
            keep = tf.constant(_class_mask(classes, len(class_names)))
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
        in_memory=_fits_memory(image_shape, num_examples),
        test_split_name=test_split_name,
        reader=read,
    )


def _fits_memory(image_shape, num_examples):
    """True for fixed-size images whose uint8 pixels take at most IN_MEMORY_BYTES."""
    return image_shape is not None and num_examples * int(np.prod(image_shape)) <= IN_MEMORY_BYTES


def _class_mask(classes, num_classes):
    """bool [num_classes], True for the ids in `classes`."""
    mask = np.zeros(num_classes, bool)
    mask[list(classes)] = True
    return mask


def _registered_tfds(name, data_dir):
    """TFDS's own builder for "tfds:NAME" (NAME may carry a config and version)."""
    tfds_name = name[len("tfds:") :]
    try:
        builder = tfds.builder(tfds_name, data_dir=data_dir)
    except tfds.core.DatasetNotFoundError:
        raise UsageError(
            f"--dataset={name}: TFDS has no dataset {tfds_name!r}; see "
            "https://www.tensorflow.org/datasets/catalog for names"
        ) from None
    builder.download_and_prepare()
    splits = set(builder.info.splits)  # empty under tfds.testing.mock_data: all names work
    test_split_name = "validation" if splits and "test" not in splits else "test"
    if splits and not {"train", test_split_name} <= splits:
        raise UsageError(
            f"--dataset={name} has splits {', '.join(sorted(splits))}; kerastransfer needs "
            "train and test (or validation)"
        )
    return _from_builder(name, builder, test_split_name=test_split_name)


def _imagenet2012(name, data_dir, manual_dir):
    """TFDS imagenet2012, built from the ILSVRC2012 tars the user downloaded by hand."""
    builder = tfds.builder("imagenet2012", data_dir=data_dir)
    if builder.is_prepared():
        missing = [s for s in ("train", "validation") if s not in builder.info.splits]
        if missing:
            raise UsageError(
                f"imagenet2012 in {builder.data_dir} lacks split(s) {', '.join(missing)}; "
                f"delete that folder and rebuild from a --manual_dir holding "
                f"{' and '.join(IMAGENET_TARS)}"
            )
    else:
        manual_dir = os.fspath(manual_dir or builder.data_dir_root / "downloads" / "manual")
        missing = [t for t in IMAGENET_TARS if not os.path.isfile(os.path.join(manual_dir, t))]
        if missing:
            raise UsageError(
                f"--dataset=imagenet2012 needs {' and '.join(IMAGENET_TARS)} in the manual dir "
                f"{manual_dir}; missing {', '.join(missing)}: download them from "
                "https://image-net.org and pass --manual_dir=DIR"
            )
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
        )
    return _from_builder(name, builder, test_split_name="validation")


def _image_folder(root):
    """Images in class subfolders: TFDS ImageFolder for root/{train,test}/CLASS/*, or a
    flat root/CLASS/* with every FLAT_FOLDER_TEST_EVERY-th image (by file name) as test.

    The images' headers are read once to learn whether they share one size (then the source
    has an `image_shape` and may be in memory) or not (then it must be streamed and resized).
    """
    if not os.path.isdir(root):
        raise UsageError(f"--image_dir={root} is not a folder")
    split_layout = os.path.isdir(os.path.join(root, "train"))
    if split_layout and not os.path.isdir(os.path.join(root, "test")):
        raise UsageError(f"--image_dir={root} has train/ but no test/: add {root}/test/CLASS/*")
    files = _list_images(os.path.join(root, "train") if split_layout else root)
    if split_layout:
        files_test = _list_images(os.path.join(root, "test"))
        unknown = sorted(set(files_test) - set(files))
        if unknown:
            raise UsageError(f"{root}/test has classes missing from train/: {', '.join(unknown)}")
        files = {c: files[c] + files_test.get(c, []) for c in files}
    class_names = sorted(files)
    if len(class_names) < 2 or any(not f for f in files.values()):
        empty = [c for c in class_names if not files[c]]
        raise UsageError(
            f"--image_dir={root} needs at least 2 class subfolders with "
            f"{'/'.join(IMAGE_EXTENSIONS)} images; found classes {class_names}"
            + (f", empty: {', '.join(empty)}" if empty else "")
        )
    image_shape = _common_shape([p for c in class_names for p in files[c]])

    if split_layout:
        builder = tfds.ImageFolder(root, shape=image_shape)
        return _from_builder("image_folder", builder, test_split_name="test")

    splits = {"train": ([], []), "test": ([], [])}  # split -> (paths, labels)
    for label, class_name in enumerate(class_names):
        for i, path in enumerate(files[class_name], 1):
            paths, labels = splits["test" if i % FLAT_FOLDER_TEST_EVERY == 0 else "train"]
            paths.append(path)
            labels.append(label)

    def decode(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        return tf.ensure_shape(image, image_shape or (None, None, 3)), label

    def read(split_name, classes):
        paths = np.array(splits[split_name][0], dtype=str)
        labels = np.array(splits[split_name][1], dtype=np.int64)
        if classes is not None:
            keep = _class_mask(classes, len(class_names))[labels]
            paths, labels = paths[keep], labels[keep]
        ds = tf.data.Dataset.from_tensor_slices((paths, labels))
        return ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    total = sum(len(f) for f in files.values())
    return DatasetSource(
        name="image_folder",
        class_names=class_names,
        image_shape=image_shape,
        in_memory=_fits_memory(image_shape, total),
        test_split_name="test",
        reader=read,
    )


def _list_images(folder):
    """{class folder name: sorted image paths} for the subfolders of `folder`."""
    return {
        entry.name: sorted(
            os.path.join(entry.path, f)
            for f in os.listdir(entry.path)
            if f.lower().endswith(IMAGE_EXTENSIONS)
        )
        for entry in os.scandir(folder)
        if entry.is_dir()
    }


def _common_shape(paths):
    """(H, W, 3) when every image has that size (read from headers only), else None.

    Images are decoded to 3 channels, as tfds.ImageFolder does.
    """
    sizes = set()
    for path in paths:
        try:
            with Image.open(path) as image:
                sizes.add(image.size)
        except OSError as e:
            raise UsageError(f"unreadable image {path}: {e}; remove or replace it") from None
        if len(sizes) > 1:
            return None
    ((width, height),) = sizes
    return (height, width, 3)
