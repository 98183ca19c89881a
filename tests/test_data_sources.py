"""Dataset sources: IDX files, the local Fashion-MNIST builder, TFDS datasets, image folders."""

import gzip
import os
import re
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

from helpers.data_fixtures import write_fashion_mnist_files, write_image_folder, write_png
from kerastransfer.config import DataConfig
from kerastransfer.data import Preprocessing, fashion_mnist, idx, make_split
from kerastransfer.data.halves import check_folder_classes
from kerastransfer.data.pipeline import make_half_data, make_streaming_half
from kerastransfer.data.sources import load_source
from kerastransfer.errors import UsageError

REAL_FASHION_MNIST = fashion_mnist.DEFAULT_MANUAL_DIR
needs_real_files = pytest.mark.skipif(
    not all(
        os.path.isfile(os.path.join(REAL_FASHION_MNIST, name))
        for pair in fashion_mnist.FILES.values()
        for name in pair
    ),
    reason="dataset-fashion-mnist is not installed",
)


# --- IDX files ---


@pytest.mark.parametrize("name", ["x-idx3-ubyte.gz", "x-idx3-ubyte"])
def test_idx_round_trip(tmp_path, name):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    idx.write_idx(tmp_path / name, array)
    assert np.array_equal(idx.read_idx(tmp_path / name), array)


def test_truncated_idx_names_the_file_and_sizes(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    idx.write_idx(path, np.zeros((10, 28, 28), np.uint8))
    data = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(data[:1000]))
    with pytest.raises(
        UsageError,
        match=f"truncated IDX file {path}: expected 7840 bytes.*found {1000 - 16}; reinstall",
    ):
        idx.read_idx(path, hint="reinstall")


def test_cut_gzip_stream_names_the_file(tmp_path):
    path = tmp_path / "labels.gz"
    idx.write_idx(path, np.random.RandomState(0).randint(0, 256, 5000).astype(np.uint8))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(UsageError, match=f"truncated IDX file {path}"):
        idx.read_idx(path)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x08\x03\x00\x00", "bad magic number"),
        (b"\x00\x00\x0d\x01\x00\x00\x00\x01" + b"\x00" * 4, "element type 0x0d"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x02" + b"\x01\x02\x03", "1 unexpected bytes"),
        (b"\x00\x00\x08\x02\x00\x00", "header is incomplete"),
    ],
)
def test_corrupt_idx_files(tmp_path, content, message):
    path = tmp_path / "bad.idx"
    path.write_bytes(content)
    with pytest.raises(UsageError, match=message) as error:
        idx.read_idx(path)
    assert str(path) in str(error.value)


@needs_real_files
def test_real_fashion_mnist_idx_files():
    train = idx.read_idx(os.path.join(REAL_FASHION_MNIST, "train-labels-idx1-ubyte.gz"))
    test = idx.read_idx(os.path.join(REAL_FASHION_MNIST, "t10k-images-idx3-ubyte.gz"))
    assert train.shape == (60000,) and np.bincount(train).tolist() == [6000] * 10
    assert test.shape == (10000, 28, 28)


# --- the local Fashion-MNIST builder ---


def test_builder_prepares_once_and_reads_the_cache_afterwards(tmp_path):
    manual, data_dir = tmp_path / "manual", tmp_path / "tfds"
    written = write_fashion_mnist_files(manual, num_train=40, num_test=20)
    source = load_source("fashion_mnist", data_dir=data_dir, manual_dir=manual)
    assert source.class_names == list(fashion_mnist.CLASS_NAMES)
    assert (source.image_shape, source.in_memory, source.num_classes) == ((28, 28, 1), True, 10)
    for split in ("train", "test"):
        images, labels = source.arrays(split)
        assert images.dtype == np.uint8 and labels.dtype == np.int64
        assert np.array_equal(images[..., 0], written[split][0])  # the files' order is kept
        assert np.array_equal(labels, written[split][1])

    shutil.rmtree(manual)  # a second load must not need, or read, the IDX files
    again = load_source("fashion_mnist", data_dir=data_dir, manual_dir=manual)
    assert np.array_equal(again.arrays("train")[0][..., 0], written["train"][0])
    assert len(list(again.tf_dataset("test"))) == 20


def test_missing_files_say_how_to_get_them(tmp_path):
    manual = tmp_path / "manual"
    write_fashion_mnist_files(manual)
    os.remove(manual / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(UsageError) as error:
        load_source("fashion_mnist", data_dir=tmp_path / "tfds", manual_dir=manual)
    message = str(error.value)
    for part in (
        str(manual / "t10k-labels-idx1-ubyte.gz"),
        "--manual_dir",
        "apt-get install -y dataset-fashion-mnist",
        "--dataset=tfds:fashion_mnist",
    ):
        assert part in message
    assert "\n" not in message


def test_truncated_file_fails_the_prepare_and_leaves_nothing_behind(tmp_path):
    manual, data_dir = tmp_path / "manual", tmp_path / "tfds"
    write_fashion_mnist_files(manual)
    images = manual / "train-images-idx3-ubyte.gz"
    images.write_bytes(gzip.compress(gzip.decompress(images.read_bytes())[:1000]))
    with pytest.raises(UsageError, match=f"truncated IDX file {images}.*dataset-fashion-mnist"):
        load_source("fashion_mnist", data_dir=data_dir, manual_dir=manual)
    write_fashion_mnist_files(manual)  # repaired: the next load prepares from scratch
    assert (
        len(load_source("fashion_mnist", data_dir=data_dir, manual_dir=manual).arrays("train")[1])
        == 40
    )


def test_mismatched_label_file_is_rejected(tmp_path):
    manual = tmp_path / "manual"
    write_fashion_mnist_files(manual)
    idx.write_idx(manual / "train-labels-idx1-ubyte.gz", np.zeros(39, np.uint8))
    with pytest.raises(UsageError, match="39 labels for 40 images"):
        load_source("fashion_mnist", data_dir=tmp_path / "tfds", manual_dir=manual)


@pytest.mark.slow
@needs_real_files
def test_real_fashion_mnist_builds(tmp_path):
    source = load_source("fashion_mnist", data_dir=tmp_path / "tfds")
    images, labels = source.arrays("train")
    assert images.shape == (60000, 28, 28, 1) and len(source.arrays("test")[1]) == 10000
    assert labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]  # the published file order
    assert source.class_names[0] == "T-shirt/top" and source.class_names[9] == "Ankle boot"


# --- other sources ---


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(
        UsageError, match="'mnist'.*fashion_mnist, imagenet2012, image_folder, tfds:NAME"
    ):
        load_source("mnist")
    with pytest.raises(UsageError, match="needs --image_dir"):
        load_source("image_folder")


def test_tfds_dataset_via_mock_data(tmp_path):
    with tfds.testing.mock_data(num_examples=12):
        source = load_source("tfds:fashion_mnist", data_dir=tmp_path)
        assert source.class_names == list(fashion_mnist.CLASS_NAMES)  # same as the local copy
        assert (source.image_shape, source.in_memory) == ((28, 28, 1), True)
        images, labels = source.arrays("test")
        assert images.shape == (12, 28, 28, 1) and images.dtype == np.uint8
        assert labels.dtype == np.int64 and labels.max() < 10
        kept = [int(y) for _, y in source.tf_dataset("train", classes=(1, 3, 5, 7, 9))]
        assert kept == [y for y in source.arrays("train")[1] if y % 2]


def test_unknown_tfds_dataset():
    with pytest.raises(UsageError, match="no dataset 'no_such_set'"):
        load_source("tfds:no_such_set")


def test_imagenet2012_needs_both_tars(tmp_path):
    (tmp_path / "ILSVRC2012_img_train.tar").touch()
    with pytest.raises(UsageError, match="missing ILSVRC2012_img_val.tar.*--manual_dir"):
        load_source("imagenet2012", data_dir=tmp_path / "tfds", manual_dir=tmp_path)


def test_imagenet2012_test_split_is_validation(tmp_path):
    for tar in ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"):
        (tmp_path / tar).touch()
    with tfds.testing.mock_data(num_examples=3):
        source = load_source("imagenet2012", data_dir=tmp_path / "tfds", manual_dir=tmp_path)
        assert (source.num_classes, source.image_shape, source.in_memory) == (1000, None, False)
        assert source.test_split_name == "validation"
        image, label = next(iter(source.tf_dataset("test")))
        assert image.shape[-1] == 3 and 0 <= int(label) < 1000


def make_image_folder(root, sizes, layout):
    """Writes PNGs root/[split/]CLASS/i.png; `sizes` lists one (h, w) per image of a class."""
    rng = np.random.RandomState(0)
    for c, name in enumerate(["cat", "dog", "eel"]):
        for i, (h, w) in enumerate(sizes):
            split = ("train" if i < len(sizes) - 2 else "test") if layout == "split" else ""
            pixels = rng.randint(0, 256, (h, w, 3), dtype=np.uint8)
            pixels[0, 0] = c
            write_png(os.path.join(root, split, name, f"{i}.png"), pixels)


@pytest.mark.parametrize("layout, num_train, num_test", [("split", 4, 2), ("flat", 5, 1)])
def test_image_folder(tmp_path, layout, num_train, num_test):
    make_image_folder(tmp_path, [(6, 8)] * 6, layout)
    source = load_source("image_folder", image_dir=tmp_path)
    assert source.class_names == ["cat", "dog", "eel"]
    assert (source.image_shape, source.in_memory) == ((6, 8, 3), True)
    for split, per_class in (("train", num_train), ("test", num_test)):
        images, labels = source.arrays(split)
        assert images.shape == (3 * per_class, 6, 8, 3)
        assert np.bincount(labels).tolist() == [per_class] * 3
        assert np.array_equal(images[:, 0, 0, 0], labels)  # each image under its own class


def test_image_folder_of_mixed_sizes_streams(tmp_path):
    make_image_folder(tmp_path, [(6, 8), (9, 5), (6, 8), (7, 7)], "split")
    source = load_source("image_folder", image_dir=tmp_path)
    assert (source.image_shape, source.in_memory) == (None, False)
    shapes = {tuple(image.shape) for image, _ in source.tf_dataset("train", classes=(2,))}
    assert shapes == {(6, 8, 3), (9, 5, 3)}


def test_bad_image_folders(tmp_path):
    with pytest.raises(UsageError, match="is not a folder"):
        load_source("image_folder", image_dir=tmp_path / "nope")
    write_png(str(tmp_path / "train" / "cat" / "0.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(UsageError, match="has train/ but no test/"):
        load_source("image_folder", image_dir=tmp_path)
    os.makedirs(tmp_path / "test" / "cat")
    with pytest.raises(UsageError, match=r"at least 2 class subfolders.*\['cat'\]"):
        load_source("image_folder", image_dir=tmp_path)


# --- image folders the study cannot split ---


def folder_source(root, images_per_class, sizes=((8, 8),)):
    write_image_folder(str(root), images_per_class, sizes)
    return load_source("image_folder", image_dir=root)


def refusal(source, **data_flags):
    """The one line check_folder_classes refuses `source` with, or None."""
    try:
        check_folder_classes(source, DataConfig(**data_flags))
    except UsageError as error:
        assert "\n" not in str(error)
        return str(error)
    return None


def test_a_flat_folder_class_needs_one_image_in_training_validation_and_test(tmp_path):
    # Every 5th image is a test image, then round(0.1 x the rest) validation: 6 images give
    # 1 test and round(0.5) = 0 validation (Python rounds halves to even), 7 give 1 and 1.
    six = folder_source(tmp_path / "six", {"ants": 40, "bees": 40, "rare": 6})
    assert refusal(six) == (
        f"--image_dir={tmp_path / 'six'}: class 'rare' has 6 images, fewer than the 7 a class "
        "needs for at least one training, one validation (--validation_fraction=0.1) and one "
        "test image (every 5th image is a test image): add images to "
        f"{tmp_path / 'six'}/rare or remove that folder"
    )
    assert refusal(six, validation_fraction=0.2) is None  # round(1.0) = 1 validation image
    assert "fewer than the 5 a class needs for at least one training and one test image" in (
        refusal(folder_source(tmp_path / "four", {"ants": 40, "rare": 4}), eval_split="test")
    )
    seven = folder_source(tmp_path / "seven", {"ants": 40, "bees": 40, "rare": 7})
    assert refusal(seven) is None
    split = make_split("random:0", seven.class_names, "image_folder")
    rare = seven.class_names.index("rare")
    half = next(h for h in "AB" if rare in split.classes(h))
    parts = make_half_data(seven, split, half, validation_fraction=0.1)
    label = split.classes(half).index(rare)
    counts = [int(np.sum(y == label)) for y in (parts.train_y, parts.val_y, parts.test_y)]
    assert counts == [5, 1, 1]


def test_a_train_test_folder_class_needs_enough_in_train_and_one_in_test(tmp_path):
    write_image_folder(str(tmp_path / "train"), {"ants": 20, "rare": 5})
    write_image_folder(str(tmp_path / "test"), {"ants": 5, "rare": 1})
    source = load_source("image_folder", image_dir=tmp_path)
    assert refusal(source) == (
        f"--image_dir={tmp_path}: class 'rare' has 5 images in train/, fewer than the 6 a "
        "class needs for at least one training, one validation (--validation_fraction=0.1) "
        f"and one test image there: add images to {tmp_path}/train/rare or remove the class "
        f"({tmp_path}/train/rare and test/rare)"
    )
    shutil.rmtree(tmp_path / "test" / "rare")
    write_image_folder(str(tmp_path / "train"), {"rare": 6})
    assert refusal(load_source("image_folder", image_dir=tmp_path)) == (
        f"--image_dir={tmp_path}: class 'rare' has no images in test/, so its accuracy cannot "
        f"be measured: add some to {tmp_path}/test/rare or remove the class "
        f"({tmp_path}/train/rare and test/rare)"
    )


def streamed_parts(source, validation_fraction=0.1):
    """{class name: [training, validation, test] images} as the streamed halves cut them."""
    split = make_split("all", source.class_names, "image_folder")
    preprocessing = Preprocessing(image_size=(8, 8), channels=3)
    counts = {name: [0, 0, 0] for name in source.class_names}
    for position, (split_name, part) in enumerate(
        (("train", "train"), ("train", "validation"), ("test", "all"))
    ):
        for _, labels in make_streaming_half(
            source,
            split,
            "B",
            preprocessing,
            split_name=split_name,
            batch_size=64,
            training=False,
            seed=0,
            part=part,
            validation_fraction=validation_fraction,
        ):
            for label in labels.numpy():
                counts[split.half_names("B")[label]][position] += 1
    return counts


def test_a_streamed_folder_class_needs_what_the_hashed_hold_out_picks(tmp_path):
    """Images of two sizes stream, and their validation images are picked by a hash of the
    class and each image's index: the least a class needs is the size at which the real
    streamed halves give it one image of each part."""
    sizes = ((8, 8), (9, 7))
    small = folder_source(tmp_path / "small", {"ants": 40, "bees": 40, "rare": 2}, sizes)
    assert not small.in_memory
    least = int(re.search(r"fewer than the (\d+) a class needs", refusal(small)).group(1))
    below = folder_source(tmp_path / "below", {"ants": 40, "bees": 40, "rare": least - 1}, sizes)
    assert f"class 'rare' has {least - 1} images, fewer than the {least}" in refusal(below)
    enough = folder_source(tmp_path / "enough", {"ants": 40, "bees": 40, "rare": least}, sizes)
    assert refusal(enough) is None
    parts = streamed_parts(enough)
    assert min(parts["rare"]) >= 1 and sum(parts["rare"]) == least
    assert min(streamed_parts(below)["rare"]) == 0
