"""--dataset=image_folder: images in class sub-folders of --image_dir.

Either DIR/train/CLASS/* and DIR/test/CLASS/* (read by TFDS ImageFolder), or a flat
DIR/CLASS/*, of which every FLAT_FOLDER_TEST_EVERY-th image of a class (by file name) is
held out as test.
"""

import dataclasses
import os
from collections.abc import Collection, Iterable

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from kerastransfer import registry
from kerastransfer.data.sources.source import DatasetSource, class_mask, fits_memory, from_builder
from kerastransfer.errors import UsageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")  # what tfds.ImageFolder reads
FLAT_FOLDER_TEST_EVERY = 5


@dataclasses.dataclass(frozen=True)
class FolderCounts:
    """How many images of each class an image folder's source puts in "train" and "test".

    Attributes:
        root: --image_dir.
        flat: True for DIR/CLASS/* (every FLAT_FOLDER_TEST_EVERY-th image is a test image),
            False for DIR/train/CLASS/* and DIR/test/CLASS/*.
        train, test: {class name: its images in the source's "train" / "test" split}.
    """

    root: str
    flat: bool
    train: dict[str, int]
    test: dict[str, int]

    @staticmethod
    def flat_parts(images: int) -> tuple[int, int]:
        """(train, test): how a flat folder's class of `images` images is split."""
        test = images // FLAT_FOLDER_TEST_EVERY
        return images - test, test


@registry.DATASETS.register("image_folder")
def load(
    name: str, *, data_dir: str | None, manual_dir: str | None, image_dir: str | None
) -> DatasetSource:
    if not image_dir:
        raise UsageError("--dataset=image_folder needs --image_dir=DIR (DIR/CLASS/*.jpg)")
    return _image_folder(os.fspath(image_dir))


def _image_folder(root: str) -> DatasetSource:
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
        counts = FolderCounts(
            root,
            flat=False,
            train={c: len(files[c]) for c in files},
            test={c: len(files_test.get(c, [])) for c in files},
        )
        files = {c: files[c] + files_test.get(c, []) for c in files}
    else:
        parts = {c: FolderCounts.flat_parts(len(files[c])) for c in files}
        counts = FolderCounts(
            root,
            flat=True,
            train={c: train for c, (train, _) in parts.items()},
            test={c: test for c, (_, test) in parts.items()},
        )
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
        source = from_builder("image_folder", builder, test_split_name="test")
        return dataclasses.replace(source, folder=counts)

    # split -> (paths, labels)
    splits: dict[str, tuple[list[str], list[int]]] = {"train": ([], []), "test": ([], [])}
    for label, class_name in enumerate(class_names):
        for i, path in enumerate(files[class_name], 1):
            paths, labels = splits["test" if i % FLAT_FOLDER_TEST_EVERY == 0 else "train"]
            paths.append(path)
            labels.append(label)

    def decode(path: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        return tf.ensure_shape(image, image_shape or (None, None, 3)), label

    def read(split_name: str, classes: Collection[int] | None) -> tf.data.Dataset:
        paths = np.array(splits[split_name][0], dtype=str)
        labels = np.array(splits[split_name][1], dtype=np.int64)
        if classes is not None:
            keep = class_mask(classes, len(class_names))[labels]
            paths, labels = paths[keep], labels[keep]
        ds = tf.data.Dataset.from_tensor_slices((paths, labels))
        return ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    total = sum(len(f) for f in files.values())
    return DatasetSource(
        name="image_folder",
        class_names=class_names,
        image_shape=image_shape,
        in_memory=fits_memory(image_shape, total),
        test_split_name="test",
        reader=read,
        folder=counts,
    )


def _list_images(folder: str) -> dict[str, list[str]]:
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


def _common_shape(paths: Iterable[str]) -> tuple[int, int, int] | None:
    """(H, W, 3) when every image has that size (read from headers only), else None.

    Images are decoded to 3 channels, as tfds.ImageFolder does.
    """
    sizes: set[tuple[int, int]] = set()
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
