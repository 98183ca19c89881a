"""A study's data per half: arrays held in memory, or batches streamed per use.

The study asks one object for a half's data and batches and never checks which kind it has:
`make_halves` picks in-memory halves for sources that fit (Fashion-MNIST, CIFAR, small
folders) and streamed halves for the rest (imagenet2012). With --eval_split=test nothing is
held out of training and the evaluations run on the test images.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from kerastransfer.data.pipeline import (
    ArrayBatches,
    gathered_batches,
    make_dataset,
    make_half_data,
    make_streaming_half,
)
from kerastransfer.data.splits import ClassSplit

# Examples per evaluation batch (validation and test passes).
EVAL_BATCH = 512


def make_halves(source, splits, preprocessing, config):
    """The halves of `source` under `splits` ({name: ClassSplit}); `config`: a DataConfig."""
    kind = InMemoryHalves if source.in_memory else StreamedHalves
    return kind(source, splits, preprocessing, config)


class _Halves:
    def __init__(self, source, splits, preprocessing, config):
        self.source, self.splits = source, splits
        self.preprocessing, self.config = preprocessing, config
        self._halves = {}

    def half(self, split, half):
        """The data of `half` ("A" or "B") of split `split`, made once."""
        key = (split, half)
        if key not in self._halves:
            self._halves[key] = self._make(self.splits[split], half)
        return self._halves[key]


class InMemoryHalves(_Halves):
    """Halves as arrays (HalfData); batches gathered by shuffled index."""

    in_memory = True

    def _make(self, split, half):
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
    def train_size(half):
        """Training images of a half: what --epochs counts."""
        return len(half.train_y)

    @staticmethod
    def eval_size(half, part):
        """Images of a half's "val" or "test" evaluations."""
        return len(half.val_y if part == "val" else half.test_y)

    def train_batches(self, half, seed, skip, batch_size):
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

    def eval_batches(self, half, part):
        """Batches of a half's "val" (what --eval_split names) or "test" images."""
        x, y = (half.val_x, half.val_y) if part == "val" else (half.test_x, half.test_y)
        return ArrayBatches(x, y, EVAL_BATCH, transform=self.preprocessing.eval_tf)

    def sample_batches(self, half, count):
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
    def num_classes(self):
        return len(self.split.classes(self.half))

    @property
    def class_names(self):
        return self.split.half_names(self.half)


class StreamedHalves(_Halves):
    """Halves streamed from the source per use (--train_steps sizes their runs)."""

    in_memory = False

    def _make(self, split, half):
        return StreamedHalf(split, half)

    @staticmethod
    def train_size(half):
        return 0

    @staticmethod
    def eval_size(half, part):
        """Unknown without a pass over the stream: None."""
        return None

    def train_batches(self, half, seed, skip, batch_size):
        """Endless training batches. A resumed run does not replay the `skip` batches (that
        would decode them all again): it reshuffles with a seed moved by `skip` instead."""
        return self._training_images(
            half, batch_size=batch_size, training=True, seed=seed + skip
        ).repeat()

    def sample_batches(self, half, count):
        """The first `count` training images of the stream, without augmentation."""
        images = self._training_images(half, batch_size=EVAL_BATCH, training=False, seed=0)
        return images.unbatch().take(count).batch(EVAL_BATCH)

    def _training_images(self, half, *, batch_size, training, seed):
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

    def eval_batches(self, half, part):
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
