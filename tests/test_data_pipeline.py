"""Pipelines per half: class filtering, label remapping, validation slices, tf.data batches."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from helpers.data_fixtures import image_tags, tagged_source
from kerastransfer.data import (
    Preprocessing,
    load_source,
    make_dataset,
    make_half_data,
    make_split,
    make_streaming_half,
)
from kerastransfer.errors import UsageError
from kerastransfer.models.preprocessing import IMAGENET_MEAN_RGB

SMALL = Preprocessing(image_size=(8, 8), channels=1)
CAFFENET = Preprocessing(
    image_size=(227, 227), channels=3, mean=IMAGENET_MEAN_RGB, resize_shorter=256
)


@pytest.fixture(scope="module")
def source():
    return tagged_source(num_classes=6, train_per_class=20, test_per_class=5)


@pytest.fixture(scope="module")
def split(source):
    return make_split("random:0", source.class_names, source.name)


def originals(split, half, images, labels):
    """Original class ids: from the image tags, and from the remapped labels."""
    tagged, _ = image_tags(images)
    return tagged, np.array(split.classes(half))[labels]


@pytest.mark.parametrize("half", ["A", "B"])
def test_half_data_keeps_only_its_classes_with_labels_0_to_k(source, split, half):
    data = make_half_data(source, split, half, validation_fraction=0.1, seed=0)
    assert (data.half, data.num_classes) == (half, 3)
    assert data.class_names == split.half_names(half)
    for x, y, per_class in (
        (data.train_x, data.train_y, 18),
        (data.val_x, data.val_y, 2),
        (data.test_x, data.test_y, 5),
    ):
        assert x.dtype == np.uint8 and x.shape[1:] == (8, 8, 1)
        assert y.dtype == np.int64 and np.bincount(y).tolist() == [per_class] * 3
        tagged, mapped = originals(split, half, x, y)
        assert np.array_equal(tagged, mapped)  # every image carries its own class
        assert set(tagged) == set(split.classes(half))  # and none of the other half


def test_validation_is_disjoint_fixed_by_seed_and_shared_by_halves(source, split):
    first = make_half_data(source, split, "A", validation_fraction=0.25, seed=0)
    train_ids, val_ids = image_tags(first.train_x)[1], image_tags(first.val_x)[1]
    assert not set(train_ids) & set(val_ids)
    assert len(train_ids) + len(val_ids) == 60  # nothing lost
    again = make_half_data(source, split, "A", validation_fraction=0.25, seed=0)
    assert np.array_equal(again.val_x, first.val_x) and np.array_equal(again.train_x, first.train_x)
    other_seed = make_half_data(source, split, "A", validation_fraction=0.25, seed=1)
    assert not np.array_equal(image_tags(other_seed.val_x)[1], val_ids)
    # A class keeps its validation images whichever half it lands in.
    other_split = make_split("random:1", source.class_names, source.name)
    c = sorted(set(split.classes("A")) & set(other_split.classes("A")))[0]
    other = make_half_data(source, other_split, "A", validation_fraction=0.25, seed=0)
    assert set(val_ids[image_tags(first.val_x)[0] == c]) == set(
        image_tags(other.val_x)[1][image_tags(other.val_x)[0] == c]
    )


def test_examples_per_class_keeps_the_first_k_after_validation(source, split):
    full = make_half_data(source, split, "B", seed=0)
    reduced = make_half_data(source, split, "B", seed=0, examples_per_class=5)
    assert np.bincount(reduced.train_y).tolist() == [5, 5, 5]
    assert np.array_equal(reduced.val_x, full.val_x)
    assert np.array_equal(reduced.test_x, full.test_x)
    for label in range(3):
        full_ids = image_tags(full.train_x[full.train_y == label])[1]
        assert np.array_equal(
            image_tags(reduced.train_x[reduced.train_y == label])[1], full_ids[:5]
        )


def test_max_examples_per_class_caps_every_split(source, split):
    data = make_half_data(
        source, split, "A", seed=0, validation_fraction=0.5, max_examples_per_class=3
    )
    for y in (data.train_y, data.val_y, data.test_y):
        assert np.bincount(y).tolist() == [3, 3, 3]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"validation_fraction": 1.0}, "validation fraction 1.0"),
        ({"examples_per_class": 0}, "examples_per_class=0"),
    ],
)
def test_bad_half_arguments(source, split, kwargs, message):
    with pytest.raises(UsageError, match=message):
        make_half_data(source, split, "A", **kwargs)


def test_split_of_another_dataset_is_refused(source):
    other = make_split("random:0", [f"other{c}" for c in range(6)], "other")
    with pytest.raises(UsageError, match="split random0 was made for the classes of other"):
        make_half_data(source, other, "A")


def epochs(ds, count):
    return [[(x.numpy(), y.numpy()) for x, y in ds] for _ in range(count)]


def flatten(epoch):
    return np.concatenate([x for x, _ in epoch]), np.concatenate([y for _, y in epoch])


def test_make_dataset_eval_keeps_order_and_normalizes(source, split):
    data = make_half_data(source, split, "A")
    ds = make_dataset(data.test_x, data.test_y, SMALL, batch_size=4, training=False)
    x, y = flatten(epochs(ds, 1)[0])
    assert x.dtype == np.float32 and x.shape == (15, 8, 8, 1)
    assert np.allclose(x, data.test_x / 255.0) and np.array_equal(y, data.test_y)
    assert ds.element_spec[1].dtype == tf.int64


def test_make_dataset_training_shuffles_deterministically(source, split):
    data = make_half_data(source, split, "A")

    def run(seed):
        ds = make_dataset(data.train_x, data.train_y, SMALL, batch_size=7, training=True, seed=seed)
        return [flatten(epoch) for epoch in epochs(ds, 2)]

    (x1, y1), (x2, y2) = run(0)
    assert sorted(image_tags(np.rint(x1 * 255))[1]) == sorted(image_tags(data.train_x)[1])
    assert not np.array_equal(y1, data.train_y) and not np.array_equal(x1, x2)  # reshuffled
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(run(0), [(x1, y1), (x2, y2)]))
    assert not np.array_equal(run(1)[0][0], x1)
    batches = epochs(
        make_dataset(
            data.train_x, data.train_y, SMALL, batch_size=7, training=True, drop_remainder=True
        ),
        1,
    )[0]
    assert [len(y) for _, y in batches] == [7] * (len(data.train_y) // 7)


def test_make_dataset_augments_deterministically():
    images = np.random.RandomState(0).randint(0, 256, (6, 40, 30, 3), dtype=np.uint8)
    labels = np.arange(6, dtype=np.int64)
    small_crops = Preprocessing(image_size=(24, 24), channels=3, resize_shorter=28)

    def run():
        ds = make_dataset(images, labels, small_crops, batch_size=4, training=True, seed=3)
        return [flatten(epoch) for epoch in epochs(ds, 2)]

    first = run()
    assert first[0][0].shape == (6, 24, 24, 3)
    for (x, y), (x_again, y_again) in zip(first, run()):
        assert np.array_equal(x, x_again) and np.array_equal(y, y_again)


def test_streaming_half_gives_caffenet_crops(tmp_path):
    for tar in ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"):
        (tmp_path / tar).touch()
    with tfds.testing.mock_data(num_examples=40):
        source = load_source("imagenet2012", data_dir=tmp_path / "tfds", manual_dir=tmp_path)
        split = make_split("random:0", source.class_names, source.name)
        all_labels = [int(y) for _, y in source.tf_dataset("train")]
        in_a = [y for y in all_labels if y in set(split.classes("A"))]
        for training in (True, False):
            ds = make_streaming_half(
                source,
                split,
                "A",
                CAFFENET,
                split_name="train",
                batch_size=8,
                training=training,
                seed=0,
            )
            x, y = flatten(epochs(ds, 1)[0])
            assert x.shape == (len(in_a), 227, 227, 3) and x.dtype == np.float32
            assert y.dtype == np.int64
            assert sorted(np.array(split.classes("A"))[y]) == sorted(in_a)


def test_streaming_half_matches_in_memory_half(source, split):
    data = make_half_data(source, split, "B", validation_fraction=0)
    ds = make_streaming_half(
        source, split, "B", SMALL, split_name="test", batch_size=4, training=False, seed=0
    )
    x, y = flatten(epochs(ds, 1)[0])
    assert np.allclose(x, data.test_x / 255.0) and np.array_equal(y, data.test_y)
