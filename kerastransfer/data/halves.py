"""A study's data per half: arrays held in memory, or batches streamed per use.

The study asks one object for a half's data and batches and never checks which kind it has:
`make_halves` picks in-memory halves for sources that fit (Fashion-MNIST, CIFAR, small
folders) and streamed halves for the rest (imagenet2012). With --eval_split=test nothing is
held out of training and the evaluations run on the test images.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf

from kerastransfer.data.pipeline import (
    ArrayBatches,
    gathered_batches,
    held_out_count,
    make_dataset,
    make_half_data,
    make_streaming_half,
    streamed_held_out_flags,
)
from kerastransfer.data.sources.image_folder import FLAT_FOLDER_TEST_EVERY
from kerastransfer.data.splits import ClassSplit
from kerastransfer.errors import UsageError

if TYPE_CHECKING:
    from kerastransfer.config import DataConfig
    from kerastransfer.data.pipeline import HalfData
    from kerastransfer.data.preprocessing import Preprocessing
    from kerastransfer.data.sources import DatasetSource

# Examples per evaluation batch (validation and test passes).
EVAL_BATCH = 512
# check_folder_classes looks for the least images a class needs up to this many.
MINIMUM_SEARCH_LIMIT = 1_000_000


def make_halves(
    source: DatasetSource,
    splits: dict[str, ClassSplit],
    preprocessing: Preprocessing,
    config: DataConfig,
) -> InMemoryHalves | StreamedHalves:
    """The halves of `source` under `splits` ({name: ClassSplit}); `config`: a DataConfig.

    Raises:
        UsageError: an image folder with a class too small to split (check_folder_classes).
    """
    check_folder_classes(source, config)
    kind: type[InMemoryHalves | StreamedHalves] = (
        InMemoryHalves if source.in_memory else StreamedHalves
    )
    return kind(source, splits, preprocessing, config)


def check_folder_classes(source: DatasetSource, config: DataConfig) -> None:
    """Refuses an image folder with a class that the study cannot give at least one training,
    one validation and one test image, in one line that names the class, its images and the
    least it needs (docs/errors.md states the rule).

    Raises:
        UsageError: such a class.
    """
    counts = source.folder
    if counts is None:
        return
    rule = _ClassSplitRule(source, config)
    for label, name in enumerate(source.class_names):
        train, test = counts.train[name], counts.test[name]
        if rule.enough(label, train, test):
            continue
        if counts.flat:
            least = rule.least(label, counts.flat_parts)
            raise UsageError(
                f"--image_dir={counts.root}: class {name!r} has {train + test} images, "
                f"{rule.needs(least)} (every {FLAT_FOLDER_TEST_EVERY}th image is a test "
                f"image): add images to {counts.root}/{name} or remove that folder"
            )
        remove = f"or remove the class ({counts.root}/train/{name} and test/{name})"
        if test < 1:
            raise UsageError(
                f"--image_dir={counts.root}: class {name!r} has no images in test/, so its "
                f"accuracy cannot be measured: add some to {counts.root}/test/{name} {remove}"
            )

        def parts(images: int, test: int = test) -> tuple[int, int]:
            return images, test

        least = rule.least(label, parts)
        raise UsageError(
            f"--image_dir={counts.root}: class {name!r} has {train} images in train/, "
            f"{rule.needs(least)} there: add images to {counts.root}/train/{name} {remove}"
        )


class _ClassSplitRule:
    """How the halves split one class of a source: its "train" images less a held-out share
    for validation, and its "test" images.

    The share is --validation_fraction of the class's "train" images: rounded to the nearest
    integer in memory (pipeline.held_out_count), picked by a hash of the class and each
    image's index when streamed (pipeline.streamed_held_out), none with --eval_split=test
    (the evaluations then run on the test images).
    """

    def __init__(self, source: DatasetSource, config: DataConfig) -> None:
        self.fraction = config.validation_fraction
        self.validates = config.eval_split == "validation"
        self.streamed = not source.in_memory
        # label -> held-out images among its first 1, 2, ...
        self._held_out_totals: dict[int, np.ndarray] = {}

    def held_out(self, label: int, images: int) -> int:
        """How many of a class's first `images` "train" images are held out."""
        if not self.validates or images == 0:
            return 0
        if not self.streamed:
            return held_out_count(images, self.fraction)
        totals = self._held_out_totals.get(label)
        if totals is None or len(totals) < images:
            flags = streamed_held_out_flags(label, max(2 * images, 64), self.fraction)
            totals = self._held_out_totals[label] = np.cumsum(flags)
        return int(totals[images - 1])

    def enough(self, label: int, train: int, test: int) -> bool:
        """Whether a class of `train` "train" and `test` "test" images gets at least one
        training, one validation (unless --eval_split=test) and one test image."""
        validation = self.held_out(label, train)
        has_validation = validation >= 1 or not self.validates
        return train - validation >= 1 and has_validation and test >= 1

    def least(self, label: int, parts: Callable[[int], tuple[int, int]]) -> int | None:
        """The smallest class size (images) that is enough, `parts(images)` giving its
        ("train", "test") images; None up to MINIMUM_SEARCH_LIMIT. Every part only grows
        with the class, so the first size that is enough is the least."""
        sizes = range(1, MINIMUM_SEARCH_LIMIT + 1)
        return next((n for n in sizes if self.enough(label, *parts(n))), None)

    def needs(self, least: int | None) -> str:
        """What a class smaller than `least` images (None: no size is enough) lacks."""
        parts = (
            f"one training, one validation (--validation_fraction={self.fraction}) and one "
            "test image"
            if self.validates
            else "one training and one test image, as --eval_split=test holds out none"
        )
        if least is None:
            return (
                f"and no class of up to {MINIMUM_SEARCH_LIMIT:,} images gets {parts}; raise "
                "--validation_fraction"
            )
        return f"fewer than the {least} a class needs for at least {parts}"


class _Halves:
    def __init__(
        self,
        source: DatasetSource,
        splits: dict[str, ClassSplit],
        preprocessing: Preprocessing,
        config: DataConfig,
    ) -> None:
        self.source, self.splits = source, splits
        self.preprocessing, self.config = preprocessing, config
        self._halves: dict[tuple[str, str], Any] = {}

    def _make(self, split: ClassSplit, half: str) -> Any:
        """The data of one half (a subclass's own kind: HalfData or StreamedHalf)."""
        raise NotImplementedError

    def half(self, split: str, half: str) -> Any:
        """The data of `half` ("A" or "B") of split `split`, made once."""
        key = (split, half)
        if key not in self._halves:
            self._halves[key] = self._make(self.splits[split], half)
        return self._halves[key]


class InMemoryHalves(_Halves):
    """Halves as arrays (HalfData); batches gathered by shuffled index."""

    in_memory = True

    def _make(self, split: ClassSplit, half: str) -> HalfData:
        c = self.config
        held_out = c.validation_fraction if c.eval_split == "validation" else 0.0
        arrays = make_half_data(
            self.source,
            split,
            half,
            validation_fraction=held_out,
            seed=0,
            examples_per_class=c.examples_per_class or None,
            max_examples_per_class=c.max_examples_per_class or None,
        )
        if c.eval_split == "test":
            arrays = dataclasses.replace(arrays, val_x=arrays.test_x, val_y=arrays.test_y)
        return arrays

    @staticmethod
    def train_size(half: HalfData) -> int:
        """Training images of a half: what --epochs counts."""
        return len(half.train_y)

    @staticmethod
    def eval_size(half: HalfData, part: str) -> int:
        """Images of a half's "val" or "test" evaluations."""
        return len(half.val_y if part == "val" else half.test_y)

    def train_batches(
        self, half: HalfData, seed: int, skip: int, batch_size: int
    ) -> tf.data.Dataset:
        """Endless training batches, from batch `skip` on when a killed run resumes."""
        prep = self.preprocessing
        if prep.augments:
            ds = make_dataset(
                half.train_x, half.train_y, prep, batch_size=batch_size, training=True, seed=seed
            )
        else:
            ds = gathered_batches(
                half.train_x, half.train_y, batch_size, shuffle_seed=seed, transform=prep.eval_tf
            )
        return ds.repeat().skip(skip).prefetch(tf.data.AUTOTUNE)

    def eval_batches(self, half: HalfData, part: str) -> ArrayBatches:
        """Batches of a half's "val" (what --eval_split names) or "test" images."""
        x, y = (half.val_x, half.val_y) if part == "val" else (half.test_x, half.test_y)
        return ArrayBatches(x, y, EVAL_BATCH, transform=self.preprocessing.eval_tf)

    def sample_batches(self, half: HalfData, count: int) -> ArrayBatches:
        """Batches of `count` training images drawn at random (seed 0, the same every
        time), without augmentation: what the transferability estimators score."""
        count = min(count, len(half.train_y))
        chosen = np.sort(np.random.default_rng(0).choice(len(half.train_y), count, replace=False))
        return ArrayBatches(
            half.train_x[chosen], half.train_y[chosen], EVAL_BATCH, self.preprocessing.eval_tf
        )


@dataclasses.dataclass(frozen=True)
class StreamedHalf:
    """One half of a source too large for memory; its batches are streamed per use."""

    split: ClassSplit
    half: str

    @property
    def num_classes(self) -> int:
        return len(self.split.classes(self.half))

    @property
    def class_names(self) -> list[str]:
        return self.split.half_names(self.half)


class StreamedHalves(_Halves):
    """Halves streamed from the source per use (--train_steps sizes their runs)."""

    in_memory = False

    def _make(self, split: ClassSplit, half: str) -> StreamedHalf:
        return StreamedHalf(split, half)

    @staticmethod
    def train_size(half: StreamedHalf) -> int:
        return 0

    @staticmethod
    def eval_size(half: StreamedHalf, part: str) -> None:
        """Unknown without a pass over the stream: None."""
        return None

    def train_batches(
        self, half: StreamedHalf, seed: int, skip: int, batch_size: int
    ) -> tf.data.Dataset:
        """Endless training batches. A resumed run does not replay the `skip` batches (that
        would decode them all again): it reshuffles with a seed moved by `skip` instead."""
        return self._training_images(
            half, batch_size=batch_size, training=True, seed=seed + skip
        ).repeat()

    def sample_batches(self, half: StreamedHalf, count: int) -> tf.data.Dataset:
        """The first `count` training images of the stream, without augmentation."""
        images = self._training_images(half, batch_size=EVAL_BATCH, training=False, seed=0)
        return images.unbatch().take(count).batch(EVAL_BATCH)

    def _training_images(
        self, half: StreamedHalf, *, batch_size: int, training: bool, seed: int
    ) -> tf.data.Dataset:
        """One pass over the half's training images (all its images with --eval_split=test)."""
        c = self.config
        return make_streaming_half(
            self.source,
            half.split,
            half.half,
            self.preprocessing,
            split_name="train",
            batch_size=batch_size,
            training=training,
            seed=seed,
            part="train" if c.eval_split == "validation" else "all",
            validation_fraction=c.validation_fraction,
            examples_per_class=c.examples_per_class or None,
            max_examples_per_class=c.max_examples_per_class or None,
        )

    def eval_batches(self, half: StreamedHalf, part: str) -> tf.data.Dataset:
        c = self.config
        held_out = part == "val" and c.eval_split == "validation"
        return make_streaming_half(
            self.source,
            half.split,
            half.half,
            self.preprocessing,
            split_name="train" if held_out else "test",
            batch_size=EVAL_BATCH,
            training=False,
            seed=0,
            part="validation" if held_out else "all",
            validation_fraction=c.validation_fraction,
            max_examples_per_class=c.max_examples_per_class or None,
        )
