"""Class splits: which classes form task A and which task B, and how their labels are remapped.

Specs (the --splits flag):
    random:SEED   the paper's rule: np.random.seed(SEED); A = sorted(np.random.choice(C, C // 2,
                  replace=False)); B = the other classes.
    dissimilar    natural vs man-made (imagenet2012), upper-body garments vs the rest
                  (fashion_mnist); A is the first group.
    file:PATH     A's class ids, one per line ('#' starts a comment); B = the other classes.
    file:PATH_A+PATH_B   both halves explicitly; classes in neither are left out.
    all           A = B = every class: the paper's random-features networks, trained on all
                  1000 ImageNet classes (ALL_SPLIT; the grid trains one base, on B).

Each half's labels become 0..K-1 in the order of the original class ids.

Example:
    split = make_split("random:0", class_names, "fashion_mnist")
    split.classes("A")      # (1, 2, 4, 8, 9)
    split.label_map("A")    # {1: 0, 2: 1, 4: 2, 8: 3, 9: 4}
"""

import dataclasses
import json
import os
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from kerastransfer.errors import UsageError
from kerastransfer.workdir import files

HALVES = ("A", "B")
# The spec (and split name) whose two halves are both every class.
ALL_SPLIT = "all"

# ILSVRC2012 in the standard (sorted WordNet id) order: the paper's 449 natural classes.
IMAGENET_NATURAL = tuple(range(0, 398)) + tuple(range(936, 959)) + (970,) + tuple(range(972, 999))
# Fashion-MNIST: T-shirt/top, Pullover, Dress, Coat, Shirt.
FASHION_MNIST_UPPER_BODY = (0, 2, 3, 4, 6)

# dataset -> (number of classes, the A group of the dissimilar split)
_DISSIMILAR = {
    "imagenet2012": (1000, IMAGENET_NATURAL),
    "fashion_mnist": (10, FASHION_MNIST_UPPER_BODY),
}


@dataclasses.dataclass(frozen=True)
class ClassSplit:
    """Two disjoint groups of classes, A and B, of one dataset.

    Attributes:
        spec: the spec it was made from, e.g. "random:0".
        name: a file-system-safe id: "random0", "dissimilar", "file-<stem>".
        dataset: the dataset the class ids refer to.
        a_classes, b_classes: sorted original class ids of each half.
        class_names: the names of all the dataset's classes, indexed by class id.
    """

    spec: str
    name: str
    dataset: str
    a_classes: tuple[int, ...]
    b_classes: tuple[int, ...]
    class_names: tuple[str, ...]

    def classes(self, half: str) -> tuple[int, ...]:
        """Original class ids of `half` ("A" or "B"), sorted."""
        if half not in HALVES:
            raise ValueError(f"half must be 'A' or 'B', got {half!r}")
        return self.a_classes if half == "A" else self.b_classes

    def label_map(self, half: str) -> dict[int, int]:
        """{original class id: new label 0..K-1} for `half`, in the order of the ids."""
        return {c: i for i, c in enumerate(self.classes(half))}

    def half_names(self, half: str) -> list[str]:
        """Class names of `half`, indexed by new label."""
        return [self.class_names[c] for c in self.classes(half)]

    def to_json(self) -> dict[str, Any]:
        """Everything needed to reproduce the split: ids, names and label maps of both halves."""
        halves = {
            half: {
                "classes": list(self.classes(half)),
                "names": self.half_names(half),
                "label_map": {str(c): i for c, i in self.label_map(half).items()},
            }
            for half in HALVES
        }
        return {
            "spec": self.spec,
            "name": self.name,
            "dataset": self.dataset,
            "class_names": list(self.class_names),
            **halves,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ClassSplit":
        return cls(
            spec=data["spec"],
            name=data["name"],
            dataset=data["dataset"],
            a_classes=tuple(data["A"]["classes"]),
            b_classes=tuple(data["B"]["classes"]),
            class_names=tuple(data["class_names"]),
        )

    def save(self, path: str) -> None:
        """Writes `to_json()` to `path` atomically."""
        files.write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str) -> "ClassSplit":
        with open(path, encoding="utf-8") as f:
            return cls.from_json(json.load(f))


def make_split(spec: str, class_names: Sequence[str], dataset_name: str) -> ClassSplit:
    """Returns the ClassSplit that `spec` describes for a dataset with `class_names`.

    Args:
        spec: "random:SEED", "dissimilar", "file:PATH", "file:PATH_A+PATH_B" or "all".
        class_names: names of all classes, indexed by class id.
        dataset_name: the --dataset value ("tfds:" prefixes and TFDS versions are ignored
            when looking up the dissimilar split).
    Raises:
        UsageError: malformed spec, unreadable file, unknown or duplicated class id, a class
            in both halves, or an empty half; the message names the bad value.
    """
    num_classes = len(class_names)
    if num_classes < 2:
        raise UsageError(f"{dataset_name} has {num_classes} classes; a split needs at least 2")
    kind, _, arg = str(spec).partition(":")
    if kind == "random" and re.fullmatch(r"\d+", arg) and int(arg) < 2**32:
        a = _random_half(num_classes, int(arg))
        name, b = f"random{int(arg)}", _complement(a, num_classes)
    elif spec == ALL_SPLIT:
        everything = list(range(num_classes))
        return ClassSplit(
            spec=ALL_SPLIT,
            name=ALL_SPLIT,
            dataset=dataset_name,
            a_classes=tuple(everything),
            b_classes=tuple(everything),
            class_names=tuple(class_names),
        )
    elif spec == "dissimilar":
        a, name = _dissimilar_half(dataset_name, num_classes), "dissimilar"
        b = _complement(a, num_classes)
    elif kind == "file" and arg:
        a_path, plus, b_path = arg.partition("+")
        if plus and not (a_path and b_path):
            raise UsageError(f"--splits={spec}: write file:PATH_A+PATH_B with both paths")
        a = _read_class_file(a_path, num_classes)
        b = _read_class_file(b_path, num_classes) if plus else _complement(a, num_classes)
        stems = [_safe_stem(p) for p in ((a_path, b_path) if plus else (a_path,))]
        name = "file-" + "-".join(stems)
    else:
        raise UsageError(
            f"malformed --splits={spec!r}: use random:SEED (SEED an integer 0..2**32-1), "
            "dissimilar, file:PATH, file:PATH_A+PATH_B or all"
        )
    overlap = sorted(set(a) & set(b))
    if overlap:
        raise UsageError(f"--splits={spec}: class ids {overlap} are in both A and B")
    for half, ids in zip(HALVES, (a, b)):
        if not ids:
            raise UsageError(f"--splits={spec}: half {half} has no classes")
    return ClassSplit(
        spec=str(spec),
        name=name,
        dataset=dataset_name,
        a_classes=tuple(a),
        b_classes=tuple(b),
        class_names=tuple(class_names),
    )


def _random_half(num_classes: int, seed: int) -> list[int]:
    """The paper's rule, on a private RandomState so the global numpy RNG is left alone
    (RandomState(seed).choice draws exactly what np.random.seed(seed); np.random.choice does)."""
    chosen = np.random.RandomState(seed).choice(num_classes, num_classes // 2, replace=False)
    return sorted(int(c) for c in chosen)


def _complement(a: Iterable[int], num_classes: int) -> list[int]:
    return sorted(set(range(num_classes)) - set(a))


def _dissimilar_half(dataset_name: str, num_classes: int) -> list[int]:
    base = dataset_name.removeprefix("tfds:").split(":")[0].split("/")[0]
    if base not in _DISSIMILAR:
        raise UsageError(
            f"--splits=dissimilar is defined for {' and '.join(_DISSIMILAR)}, not "
            f"{dataset_name}; list one half's class ids in a file and use --splits=file:PATH"
        )
    expected, a = _DISSIMILAR[base]
    if num_classes != expected:
        raise UsageError(
            f"--splits=dissimilar for {base} expects {expected} classes, {dataset_name} has "
            f"{num_classes}; use --splits=file:PATH"
        )
    return sorted(a)


def _read_class_file(path: str, num_classes: int) -> list[int]:
    """Sorted class ids listed in `path`, one per line; '#' starts a comment."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read split file {path}: {e}") from None
    ids: list[int] = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if not re.fullmatch(r"\d+", text) or int(text) >= num_classes:
            raise UsageError(
                f"{path} line {number}: {text!r} is not a class id; use integers "
                f"0..{num_classes - 1}, one per line"
            )
        if int(text) in ids:
            raise UsageError(
                f"{path} line {number}: class id {text} is listed twice; list each class once"
            )
        ids.append(int(text))
    return sorted(ids)


def _safe_stem(path: str) -> str:
    stem = os.path.splitext(os.path.basename(path))[0]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem) or "split"
