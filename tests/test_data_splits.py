"""Class splits: the paper's random rule, the dissimilar splits, split files, split.json."""

import json

import numpy as np
import pytest

from kerastransfer.data import fashion_mnist
from kerastransfer.data.splits import IMAGENET_NATURAL, ClassSplit, make_split
from kerastransfer.errors import UsageError

IMAGENET_NAMES = [f"n{i:08d}" for i in range(1000)]
FASHION_NAMES = list(fashion_mnist.CLASS_NAMES)


def assert_partition(split, num_classes):
    a, b = set(split.classes("A")), set(split.classes("B"))
    assert not a & b
    assert a | b == set(range(num_classes))
    assert list(split.classes("A")) == sorted(a) and list(split.classes("B")) == sorted(b)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_split_follows_the_paper_rule(seed):
    split = make_split(f"random:{seed}", IMAGENET_NAMES, "imagenet2012")
    np.random.seed(seed)
    expected = sorted(np.random.choice(1000, 500, replace=False))
    assert list(split.classes("A")) == expected
    assert len(split.classes("B")) == 500
    assert_partition(split, 1000)
    assert split.name == f"random{seed}"


def test_random_split_seed0_starts_as_published():
    split = make_split("random:0", IMAGENET_NAMES, "imagenet2012")
    assert split.classes("A")[:5] == (1, 2, 5, 6, 8)
    assert split.classes("B")[:4] == (0, 3, 4, 7)


def test_fashion_mnist_random_seed0():
    split = make_split("random:0", FASHION_NAMES, "fashion_mnist")
    assert split.classes("A") == (1, 2, 4, 8, 9)
    assert split.classes("B") == (0, 3, 5, 6, 7)
    assert split.half_names("A") == ["Trouser", "Pullover", "Coat", "Bag", "Ankle boot"]


def test_random_split_is_repeatable_and_leaves_global_rng_alone():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    first = make_split("random:7", IMAGENET_NAMES, "imagenet2012")
    assert np.array_equal(np.random.get_state()[1], before)
    assert make_split("random:7", IMAGENET_NAMES, "imagenet2012") == first
    assert make_split("random:8", IMAGENET_NAMES, "imagenet2012") != first


def test_odd_class_count_gives_a_the_smaller_half():
    split = make_split("random:0", [str(i) for i in range(7)], "seven")
    assert (len(split.classes("A")), len(split.classes("B"))) == (3, 4)
    assert_partition(split, 7)


def test_imagenet_dissimilar_is_natural_vs_man_made():
    split = make_split("dissimilar", IMAGENET_NAMES, "imagenet2012")
    assert (len(split.classes("A")), len(split.classes("B"))) == (449, 551)
    assert split.classes("A") == tuple(IMAGENET_NATURAL)
    for natural in (0, 397, 936, 958, 970, 972, 998):
        assert natural in split.classes("A")
    for man_made in (398, 935, 959, 969, 971, 999):
        assert man_made in split.classes("B")
    assert_partition(split, 1000)
    # A TFDS-registered copy of the same dataset has the same classes.
    tfds_copy = make_split("dissimilar", IMAGENET_NAMES, "tfds:imagenet2012:5.1.0")
    assert tfds_copy.classes("A") == split.classes("A")


def test_fashion_mnist_dissimilar_is_upper_body_vs_rest():
    split = make_split("dissimilar", FASHION_NAMES, "fashion_mnist")
    assert split.half_names("A") == ["T-shirt/top", "Pullover", "Dress", "Coat", "Shirt"]
    assert split.classes("B") == (1, 5, 7, 8, 9)
    assert split.name == "dissimilar"


def test_dissimilar_undefined_elsewhere():
    with pytest.raises(UsageError, match="cifar10.*file:PATH"):
        make_split("dissimilar", FASHION_NAMES, "tfds:cifar10")
    with pytest.raises(UsageError, match="expects 1000 classes"):
        make_split("dissimilar", FASHION_NAMES, "imagenet2012")


def test_label_maps_are_0_to_k_in_id_order():
    split = make_split("random:0", FASHION_NAMES, "fashion_mnist")
    assert split.label_map("A") == {1: 0, 2: 1, 4: 2, 8: 3, 9: 4}
    assert split.label_map("B") == {0: 0, 3: 1, 5: 2, 6: 3, 7: 4}
    with pytest.raises(ValueError, match="'C'"):
        split.classes("C")


def test_split_json_round_trip(tmp_path):
    split = make_split("random:3", FASHION_NAMES, "fashion_mnist")
    path = tmp_path / "split.json"
    split.save(path)
    data = json.loads(path.read_text())
    assert data["A"]["classes"] == list(split.classes("A"))
    assert data["B"]["names"] == split.half_names("B")
    assert data["B"]["label_map"] == {str(c): i for c, i in split.label_map("B").items()}
    assert data["dataset"] == "fashion_mnist"
    assert ClassSplit.load(path) == split


def test_file_split_with_comments_and_complement(tmp_path):
    path = tmp_path / "my half.txt"
    path.write_text("# shoes\n5\n7  # sneaker\n\n9\n")
    split = make_split(f"file:{path}", FASHION_NAMES, "fashion_mnist")
    assert split.classes("A") == (5, 7, 9)
    assert split.classes("B") == (0, 1, 2, 3, 4, 6, 8)
    assert split.name == "file-my_half"


def test_file_split_with_explicit_b_may_leave_classes_out(tmp_path):
    (tmp_path / "a.txt").write_text("0\n1\n")
    (tmp_path / "b.txt").write_text("8\n9\n")
    split = make_split(
        f"file:{tmp_path / 'a.txt'}+{tmp_path / 'b.txt'}", FASHION_NAMES, "fashion_mnist"
    )
    assert (split.classes("A"), split.classes("B")) == ((0, 1), (8, 9))
    assert split.name == "file-a-b"


@pytest.mark.parametrize(
    "a_text, b_text, message",
    [
        ("3\n12\n", None, "'12' is not a class id"),
        ("3\nshirt\n", None, "'shirt' is not a class id"),
        ("3\n4\n3\n", None, "line 3: class id 3 is listed twice"),
        ("# nothing\n", None, "half A has no classes"),
        ("\n".join(map(str, range(10))), None, "half B has no classes"),
        ("1\n2\n", "2\n5\n", r"class ids \[2\] are in both A and B"),
    ],
)
def test_bad_split_files(tmp_path, a_text, b_text, message):
    (tmp_path / "a.txt").write_text(a_text)
    spec = f"file:{tmp_path / 'a.txt'}"
    if b_text is not None:
        (tmp_path / "b.txt").write_text(b_text)
        spec += f"+{tmp_path / 'b.txt'}"
    with pytest.raises(UsageError, match=message):
        make_split(spec, FASHION_NAMES, "fashion_mnist")


def test_missing_split_file_is_named(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(UsageError, match=f"cannot read split file {missing}"):
        make_split(f"file:{missing}", FASHION_NAMES, "fashion_mnist")


@pytest.mark.parametrize(
    "spec",
    [
        "random",
        "random:",
        "random:x",
        "random:-1",
        "banana",
        "file:",
        "file:a.txt+",
        "dissimilar:1",
        "random:99999999999",
    ],
)
def test_malformed_specs_are_named(spec):
    with pytest.raises(UsageError) as error:
        make_split(spec, FASHION_NAMES, "fashion_mnist")
    assert spec in str(error.value)
