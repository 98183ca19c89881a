"""Traced functions kept from run to run: compiled models and the evaluation forward pass.

Keras traces a model's functions anew for every new model object, a second or two of CPU per
run. A study trains many networks of the same structure, so these keep one traced model (or
forward function) per structure and lend it each new network's weights.
"""

import collections
import json
from collections.abc import Callable, Iterable
from typing import Any

import keras
import numpy as np
import tensorflow as tf


class Evaluator:
    """Top-1 accuracy and mean cross-entropy of models on batches of (inputs, labels).

    Each batch goes through one traced forward function, kept per model structure: a new
    model of a structure seen before (every run's network, for its test evaluation) lends
    its weights to the kept one instead of being traced again. Keras's `evaluate` is as fast
    per pass (BENCHMARKS.md, levers) but traces anew for every model object.
    """

    def __init__(self, size: int = 8) -> None:
        self._kept = _KeptModels(size)  # structure -> (model, forward function)

    @property
    def traced(self) -> int:
        """Forward functions traced so far (one per model structure while it is kept)."""
        return self._kept.made

    def __call__(
        self, model: keras.Model, batches: Iterable[tuple[tf.Tensor, tf.Tensor]]
    ) -> tuple[float, float]:
        """(accuracy, mean cross-entropy) of `model` over `batches` of (inputs, labels)."""
        key = json.dumps(
            [
                _without_trainable(model.get_config()),
                keras.config.dtype_policy().name,
                id(model.distribute_strategy),
            ],
            sort_keys=True,
            default=repr,
        )
        (_, forward), _ = self._kept.get(key, model, _forward_function)
        correct = total = 0
        loss = 0.0
        for inputs, labels in batches:
            batch_correct, batch_loss = forward(inputs, labels)
            correct += int(batch_correct)
            loss += float(batch_loss)
            total += int(labels.shape[0])
        return correct / max(total, 1), loss / max(total, 1)


def _without_trainable(config: Any) -> Any:  # a model config: nested dicts, lists, values
    """A model config without its `trainable` flags: inference does not depend on them, so
    the full networks of every treatment share one traced forward function."""
    if isinstance(config, dict):
        return {k: _without_trainable(v) for k, v in config.items() if k != "trainable"}
    if isinstance(config, list):
        return [_without_trainable(v) for v in config]
    return config


def _forward_function(model: keras.Model) -> Callable[[Any, Any], tuple[tf.Tensor, tf.Tensor]]:
    """(correct predictions, summed cross-entropy) of one batch, traced once for any batch
    size."""
    inputs_spec = tf.TensorSpec([None, *model.input.shape[1:]], model.input.dtype)

    @tf.function(input_signature=[inputs_spec, tf.TensorSpec([None], tf.int64)])
    def forward(inputs, labels):
        probabilities = tf.cast(model(inputs, training=False), tf.float32)
        correct = tf.equal(tf.argmax(probabilities, axis=-1), labels)
        loss = keras.losses.sparse_categorical_crossentropy(labels, probabilities)
        return tf.reduce_sum(tf.cast(correct, tf.int64)), tf.reduce_sum(loss)

    return lambda inputs, labels: forward(
        tf.cast(inputs, inputs_spec.dtype), tf.cast(labels, tf.int64)
    )


class CompiledModels:
    """Compiled models kept from run to run, so tracing happens once per kind of run.

    Keras traces a model's train and test functions anew for every new model object, about
    a second or two of CPU per run. A study trains many networks of the same structure with
    the same solver (both bases and every fine-tuned run; the three frozen runs of each n), so
    `twin` hands out the kept model of that structure loaded with the new model's state
    (weights, dropout seeds, fresh optimizer state), and `copy_back` returns the trained state
    to the run's own model. The result equals training the new model itself.
    """

    def __init__(self, size: int = 3) -> None:
        # Three: the whole network (bases, fine-tuned runs) stays kept while the frozen runs
        # of each n bring a new suffix; with two, every n's first fine-tuned run traced the
        # whole network again (about 1.5 s of a 10 s run: issue 27, lever 3).
        self._kept = _KeptModels(size)  # signature -> (model, optimizer start state)

    @property
    def traced(self) -> int:
        """Models whose train function was traced so far: one per structure and solver
        while it is kept; a run on a kept twin adds none."""
        return self._kept.made

    def twin(self, model: keras.Model) -> keras.Model:
        """The kept compiled model equal in structure and solver to `model` (itself when there
        is none yet), holding `model`'s state and a fresh optimizer."""

        def optimizer_start(new: keras.Model) -> list[np.ndarray]:
            new.optimizer.build(new.trainable_variables)
            return [v.numpy() for v in new.optimizer.variables]

        (twin, start), fresh = self._kept.get(_signature(model), model, optimizer_start)
        if not fresh:
            for variable, value in zip(twin.optimizer.variables, start):
                variable.assign(value)
        return twin

    @staticmethod
    def copy_back(model: keras.Model, twin: keras.Model) -> None:
        """Puts the state `twin` trained into `model` (nothing when they are one model)."""
        if twin is not model:
            for mine, theirs in zip(model.variables, twin.variables):
                mine.assign(theirs)


def _signature(model: keras.Model) -> str:
    """What a traced train function depends on: the layers (with their trainable flags,
    shapes and dtypes), the optimizer and its schedule, the loss and the strategy."""
    optimizer = model.optimizer
    settings = {k: v for k, v in optimizer.get_config().items() if k != "name"}  # sgd_2...
    return json.dumps(
        [
            model.get_config(),
            type(optimizer).__name__,
            settings,
            getattr(optimizer, "bias_lr_multiplier", 1.0),
            sorted(getattr(optimizer, "layer_rates", {}).items()),
            repr(model.loss),
            id(model.distribute_strategy),
        ],
        sort_keys=True,
        default=repr,
    )


class _KeptModels:
    """The last `size` models used, one per key (a structure), each with something made for
    it once (a traced function, a saved optimizer state), least recently used first out."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._kept: collections.OrderedDict[str, tuple[keras.Model, Any]] = (
            collections.OrderedDict()
        )  # key -> (model, made)
        self.made = 0  # how many times `make` ran: models traced or compiled anew

    def get(
        self, key: str, model: keras.Model, make: Callable[[keras.Model], Any]
    ) -> tuple[tuple[keras.Model, Any], bool]:
        """((kept model, its made thing), fresh): the kept model of `key` holding `model`'s
        variables, or `model` itself with `make(model)` when none is kept (fresh=True)."""
        kept = self._kept.pop(key, None)
        if kept is None or not _same_shapes(kept[0].variables, model.variables):
            kept, fresh = (model, make(model)), True
            self.made += 1
        else:
            fresh = False
            if kept[0] is not model:
                for mine, theirs in zip(kept[0].variables, model.variables):
                    mine.assign(theirs)
        self._kept[key] = kept
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)
        return kept, fresh


def _same_shapes(ours: list[Any], theirs: list[Any]) -> bool:
    return len(ours) == len(theirs) and all(
        a.shape == b.shape and a.dtype == b.dtype for a, b in zip(ours, theirs)
    )
