"""Frozen-prefix caching: train only the layers above a frozen prefix on its cached outputs.

When blocks 1..n are frozen and nothing random happens before the cut, their output for an
image never changes, so it is computed once (batched inference) and only the suffix trains.
Stochastic layers (dropout) after the cache point belong to the suffix and keep drawing
fresh masks, so caching stops before the first of them. Evaluation, saved weights and export
use the full model: the suffix shares its layer objects with it.

Features live in memory when they fit the budget (`--cache_budget_mb`), else in a tf.data
file cache. In memory, `FeatureStore` also remembers the last features of each (base, data)
pair, so the frozen runs at n = 1, 2, ... of one base compute only the new block each time.
"""

import math
import os
import shutil
import time
from collections.abc import Callable, Hashable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from kerastransfer import data, flops, surgery

STOCHASTIC = (
    keras.layers.Dropout,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
    keras.layers.SpatialDropout2D,
    keras.layers.AlphaDropout,
)
# Frozen prefixes cheaper than this share of the forward pass are computed every step instead
# of cached: that saves under a third of the share per training step (caffenet_small's conv1
# is 6% of its forward pass; caffenet's conv1 at 227x227 is 15%).
MIN_PREFIX_SHARE = 0.10
# Images per inference batch while computing features.
FEATURE_BATCH = 512
# Bases whose features are kept for the next n: the plan trains one target half at a time,
# whose frozen runs copy from two bases (BnB from B, AnB from A); features of earlier splits
# and directions are not needed again.
KEPT_BASES = 2
# Smallest shuffle buffer of file-cached features, whatever the budget.
MIN_SHUFFLE_BUFFER = 1024


def is_chain(model: keras.Model) -> bool:
    """True when every layer takes exactly the previous layer's output (no branches)."""
    layers = model.layers
    return all(layer.input is before.output for before, layer in zip(layers, layers[1:]))


def cache_layer(model: keras.Model, n: int) -> keras.layers.Layer | None:
    """The layer whose output is cached for a run frozen at n, or None if caching is off.

    The cache point is the last layer of the frozen prefix that has no stochastic layer at or
    before it (n=7 in caffenet caches fc6's output: drop6 keeps drawing masks in the suffix).
    A prefix under MIN_PREFIX_SHARE of the forward FLOPs is not cached: it would save next
    to nothing and its features can be the largest of all (caffenet_small's pool1 holds 4x
    the input pixels).
    """
    if not is_chain(model):
        return None
    chosen = None
    for layer in surgery.block_layers(model, n):
        if isinstance(layer, STOCHASTIC):
            break
        if layer.trainable and layer.weights:
            return None  # not a frozen prefix
        chosen = layer
    if chosen is None or (
        flops.forward_flops(model, chosen) < MIN_PREFIX_SHARE * flops.forward_flops(model)
    ):
        return None
    return chosen


def split_model(model: keras.Model, layer: keras.layers.Layer) -> tuple[keras.Model, keras.Model]:
    """(prefix, suffix): prefix maps inputs to `layer`'s output; suffix maps that onward.

    The suffix reuses the model's own layer objects, so training it trains the model.
    """
    prefix = keras.Model(model.input, layer.output, name=f"{model.name}_prefix")
    return prefix, _segment(model, layer, model.layers[-1], "suffix")


def _segment(
    model: keras.Model, first: keras.layers.Layer, last: keras.layers.Layer, name: str
) -> keras.Model:
    """The chain of layers after `first` up to and including `last`, as a model whose input
    is `first`'s output."""
    layers = model.layers
    x = features = keras.Input(
        first.output.shape[1:], dtype=first.output.dtype, name="cached_features"
    )
    for later in layers[layers.index(first) + 1 : layers.index(last) + 1]:
        x = later(x)
    return keras.Model(features, x, name=f"{model.name}_{name}")


def feature_bytes(layer: keras.layers.Layer, count: int) -> int:
    """Memory that `count` outputs of `layer` take."""
    shape = layer.output.shape[1:]
    return count * math.prod(shape) * tf.as_dtype(layer.output.dtype).size


def predict(model: keras.Model, batches: tf.data.Dataset | tf.Tensor | np.ndarray) -> tf.Tensor:
    """`model`'s outputs, as one tensor, for a dataset of input batches or for a tensor or
    array of inputs. Peak memory is twice the outputs (the batches, then their
    concatenation), not three times as with `model.predict` and a conversion."""
    if not isinstance(batches, tf.data.Dataset):
        batches = tf.data.Dataset.from_tensor_slices(batches).batch(FEATURE_BATCH)
    spec = tf.TensorSpec([None, *model.input.shape[1:]], model.input.dtype)
    call = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    return tf.concat([call(x) for x in batches.prefetch(1)], axis=0)


class FeatureStore:
    """Cached prefix outputs of the frozen runs of a study.

    In memory (when a run's features fit `budget_bytes`), the last features of each `key`
    (a base network and the data it sees) are kept, so the next run frozen at a higher block
    of the same base starts from them and computes only the blocks in between; the oldest
    kept features go when more than KEPT_BASES keys are kept or all of them together pass
    the budget. Larger features go to a
    tf.data file cache under `cache_dir`, one folder per run, removed by `release`.
    """

    def __init__(self, budget_bytes: int, cache_dir: str) -> None:
        self.budget_bytes = budget_bytes
        self.cache_dir = cache_dir
        # key -> (the layers' names up to the cached one, {part: features tensor}), oldest first
        self._kept: dict[Hashable, tuple[tuple[str, ...], dict[str, tf.Tensor]]] = {}

    def fits(self, layer: keras.layers.Layer, count: int) -> bool:
        """True when `count` examples' features of `layer` fit in memory."""
        return feature_bytes(layer, count) <= self.budget_bytes

    def in_memory(
        self,
        model: keras.Model,
        layer: keras.layers.Layer,
        parts: dict[str, tf.data.Dataset],
        key: Hashable | None = None,
    ) -> dict[str, tf.Tensor]:
        """{part: features of `layer` (a tensor)} for `parts` = {part: input batches}.

        With a `key`, starts from the features kept under it when they come from a layer at
        or before `layer` in this model (the same frozen blocks of the same base).
        """
        names = [later.name for later in model.layers]
        kept_path, kept = self._kept.pop(key, ((), None))
        # Kept features continue only along the same layers: a name alone is not enough (a
        # linear probe's flatten has one name at every n, on another block's output).
        if (
            kept is not None
            and list(kept_path) == names[: len(kept_path)]
            and len(kept_path) <= names.index(layer.name) + 1
        ):
            start = model.get_layer(kept_path[-1])
            middle = None if start is layer else _segment(model, start, layer, "middle")
            features = {
                part: kept[part] if middle is None else predict(middle, kept[part])
                for part in parts
            }
        else:
            kept = None  # not needed: let it go before the new features take its memory
            prefix = keras.Model(model.input, layer.output)
            features = {part: predict(prefix, batches) for part, batches in parts.items()}
        if key is not None:
            self._kept[key] = (tuple(names[: names.index(layer.name) + 1]), features)
            while len(self._kept) > KEPT_BASES or (
                len(self._kept) > 1 and self._kept_bytes() > self.budget_bytes
            ):
                del self._kept[next(iter(self._kept))]
        return features

    def _kept_bytes(self) -> int:
        return sum(
            f.shape.num_elements() * f.dtype.size
            for _, parts in self._kept.values()
            for f in parts.values()
        )

    def on_file(
        self,
        model: keras.Model,
        layer: keras.layers.Layer,
        parts: dict[str, tf.data.Dataset],
        run: str,
    ) -> dict[str, tf.data.Dataset]:
        """{part: tf.data of (features, label) examples}, each computed in one pass and read
        from its cache file under cache_dir/run afterwards.

        `parts` = {part: batches of (inputs, labels)}.
        """
        folder = os.path.join(self.cache_dir, run)
        self.release(run)  # a killed run's partial files would block the cache
        os.makedirs(folder)
        prefix = keras.Model(model.input, layer.output)
        call = tf.function(lambda x: prefix(x, training=False))
        cached = {}
        for part, batches in parts.items():
            examples = batches.map(lambda x, y: (call(x), y)).unbatch()
            examples = examples.cache(os.path.join(folder, part))
            for _ in examples.batch(FEATURE_BATCH):  # one full pass writes the file
                pass
            cached[part] = examples
        return cached

    def shuffle_buffer(self, layer: keras.layers.Layer, count: int) -> int:
        """Examples the shuffle buffer of a file-cached run holds: as many as the budget
        allows, at least MIN_SHUFFLE_BUFFER (all of them when there are fewer)."""
        fit = self.budget_bytes // feature_bytes(layer, 1)
        return int(min(count, max(fit, MIN_SHUFFLE_BUFFER)))

    def release(self, run: str) -> None:
        """Removes a run's file cache and the folders it leaves empty."""
        folder = os.path.join(self.cache_dir, run)
        shutil.rmtree(folder, ignore_errors=True)
        while folder != self.cache_dir:
            folder = os.path.dirname(folder)
            try:
                os.rmdir(folder)
            except OSError:  # not empty (another run's cache) or already gone
                return


# Cached validation features go through the suffix in batches of up to this many bytes (all
# 3,000 of the default study's at once): each batch is a call into the graph, and a
# suffix's activations are small.
CACHED_EVAL_BATCH_BYTES = 64 * 2**20


class PrefixCache:
    """The study's policy for frozen-prefix caching, and the cached inputs of a frozen run.

    A frozen run trains only the suffix after its frozen prefix, on the prefix's outputs.
    The features stay in memory when they fit `budget_mb` (kept per base, so the next n of
    the same base computes only its new blocks), else in a tf.data file cache under
    `cache_dir/<run>`, removed when the run ends.
    """

    def __init__(self, budget_mb: int, cache_dir: str, log: Callable[[str], None]) -> None:
        self.budget_bytes = budget_mb * 2**20
        self.cache_dir = cache_dir
        self.log = log
        self._note: str | None = None
        self._features: FeatureStore | None = None  # made by the first cached run

    def allowed(
        self, preprocessing: data.Preprocessing, in_memory: bool, strategy: tf.distribute.Strategy
    ) -> bool:
        """Caching needs fixed inputs, in-memory data and a single worker; the first time it
        is off, says why."""
        why = (
            "random crops and mirrors change the frozen layers' output every step"
            if preprocessing.augments
            else "the data is streamed, not held in memory"
            if not in_memory
            else "the data is sharded between workers"
            if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            else None
        )
        if why and self._note is None:
            self._note = why
            self.log(f"frozen-prefix caching is off: {why}; frozen runs compute every layer")
        return why is None

    def inputs(
        self,
        model: keras.Model,
        layer: keras.layers.Layer,
        half: data.HalfData,
        preprocessing: data.Preprocessing,
        *,
        run: str,
        seed: int,
        batch_size: int,
        key: Hashable | None,
    ) -> tuple[keras.Model, Callable[[int], tf.data.Dataset], Any, dict[str, Any]]:
        """(suffix model, train-data factory, validation batches, cache fields of the record)
        for training `model` frozen up to `layer` on `half` (arrays).

        `key` names the base and data the features come from (None: keep nothing).
        """
        started = time.perf_counter()
        if self._features is None:
            self._features = FeatureStore(self.budget_bytes, self.cache_dir)
        store, parts = (
            self._features,
            {"train": (half.train_x, half.train_y), "val": (half.val_x, half.val_y)},
        )
        batches = {
            part: data.make_dataset(
                x, y, preprocessing, batch_size=FEATURE_BATCH, training=False, cache=False
            )
            for part, (x, y) in parts.items()
        }
        _, suffix = split_model(model, layer)
        if store.fits(layer, len(half.train_y) + len(half.val_y)):
            features = store.in_memory(
                model, layer, {part: ds.map(lambda x, _: x) for part, ds in batches.items()}, key
            )

            def cached_train(skip: int) -> tf.data.Dataset:
                ds = data.gathered_batches(
                    features["train"], half.train_y, batch_size, shuffle_seed=seed
                )
                return ds.repeat().skip(skip).prefetch(tf.data.AUTOTUNE)

            per_example = feature_bytes(layer, 1)
            val = data.ArrayBatches(
                features["val"],
                half.val_y,
                max(data.EVAL_BATCH, CACHED_EVAL_BATCH_BYTES // per_example),
            )
            storage = "memory"
        else:
            examples = store.on_file(model, layer, batches, run)
            buffer = store.shuffle_buffer(layer, len(half.train_y))

            def cached_train(skip: int) -> tf.data.Dataset:
                ds = examples["train"].shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
                return ds.batch(batch_size).repeat().skip(skip).prefetch(tf.data.AUTOTUNE)

            val = examples["val"].batch(data.EVAL_BATCH).prefetch(tf.data.AUTOTUNE)
            storage = "file"
        cache = {"cache_storage": storage, "cache_seconds": time.perf_counter() - started}
        return suffix, cached_train, val, cache

    def release(self, run: str) -> None:
        """Drops a finished or failed run's file cache."""
        if self._features is not None:
            self._features.release(run)
