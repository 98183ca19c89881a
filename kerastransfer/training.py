"""One training run: the paper's solver, scaled by flags, with resumable checkpoints.

Training is `model.fit` over an endless dataset in "segments" of `eval_every` steps: each
Keras epoch is one segment, so validation accuracy is measured every `eval_every` steps
(the paper's evaluation schedule), SegmentCheckpoint saves the weights and the validation
history at segment ends (at most every CHECKPOINT_SECONDS), and a killed run resumes from
its last checkpoint instead of starting over.
"""

import collections
import dataclasses
import json
import math
import os
import sys
import time

import keras
import tensorflow as tf

from kerastransfer import fileio


@dataclasses.dataclass(frozen=True)
class Solver:
    """SGD with momentum and a step schedule, every network trained from step 0.

    Attributes:
        learning_rate: initial rate for the global batch.
        momentum: SGD momentum (paper: 0.9).
        total_steps: training steps (a multiple of eval_every).
        eval_every: steps between validation evaluations.
        lr_decay_steps: divide the rate by 10 every this many steps (paper: 100,000 of
            450,000; 0 here means the same 100/450 ratio of total_steps).
        bias_lr_multiplier: Caffe's 2x learning rate on biases when 2.
    """

    learning_rate: float
    momentum: float
    total_steps: int
    eval_every: int
    lr_decay_steps: int = 0
    bias_lr_multiplier: float = 1.0

    @property
    def decay_every(self):
        return self.lr_decay_steps or max(1, round(self.total_steps * 100 / 450))

    def schedule(self):
        """Piecewise-constant rate: `learning_rate * 0.1 ** (step // decay_every)`."""
        boundaries = list(range(self.decay_every, self.total_steps, self.decay_every))
        values = [self.learning_rate * 0.1 ** i for i in range(len(boundaries) + 1)]
        if not boundaries:
            return self.learning_rate
        return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def plan_steps(num_examples, batch_size, epochs, train_steps, eval_every):
    """Total steps and evaluation interval: 8 evaluations per run unless told otherwise."""
    steps = train_steps or max(1, math.ceil(epochs * num_examples / batch_size))
    every = eval_every or max(1, math.ceil(steps / 8))
    every = min(every, steps)
    return math.ceil(steps / every) * every, every


class BiasScaledSGD(keras.optimizers.SGD):
    """SGD whose bias gradients are multiplied by `bias_lr_multiplier` (Caffe's lr_mult 2)."""

    def __init__(self, bias_lr_multiplier=1.0, **kwargs):
        super().__init__(**kwargs)
        self.bias_lr_multiplier = bias_lr_multiplier

    def apply_gradients(self, grads_and_vars):
        scaled = [(g * self.bias_lr_multiplier if g is not None and "bias" in v.path else g, v)
                  for g, v in grads_and_vars]
        return super().apply_gradients(scaled)


def compile_model(model, solver):
    """Compiles with the solver. Call it after setting `trainable` and inside the scope.

    A segment (`eval_every` steps) runs as one call into the graph (steps_per_execution):
    Keras's per-step Python work then happens once a segment, which halves the step time of
    the small suffixes that frozen runs train on cached features. Under a tf.distribute
    strategy Keras 3.15's multi-step loop fails to build, so there it stays one step a call.
    """
    steps_per_call = 1 if tf.distribute.has_strategy() else solver.eval_every
    if solver.bias_lr_multiplier != 1.0:
        optimizer = BiasScaledSGD(solver.bias_lr_multiplier, learning_rate=solver.schedule(),
                                  momentum=solver.momentum)
    else:
        optimizer = keras.optimizers.SGD(learning_rate=solver.schedule(),
                                         momentum=solver.momentum)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], steps_per_execution=steps_per_call)


def make_strategy(name):
    """The tf.distribute strategy for --strategy (auto: mirrored when several GPUs exist)."""
    if name == "multi_worker":  # first: it must exist before TensorFlow lists devices
        from kerastransfer import distributed  # noqa: PLC0415

        return distributed.multi_worker_strategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "default"
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    return tf.distribute.get_strategy()


class DivergedError(RuntimeError):
    """The loss became NaN or infinite: the run failed (its record says so)."""


class Evaluator:
    """Top-1 accuracy and mean cross-entropy of models on batches of (inputs, labels).

    Each batch goes through one traced forward function, kept per model structure: a new
    model of a structure seen before (every run's network, for its test evaluation) lends
    its weights to the kept one instead of being traced again. Keras's `evaluate` is as fast
    per pass (BENCHMARKS.md, levers) but traces anew for every model object.
    """

    def __init__(self, size=8):
        self._kept = _KeptModels(size)  # structure -> (model, forward function)

    def __call__(self, model, batches):
        """(accuracy, mean cross-entropy) of `model` over `batches` of (inputs, labels)."""
        key = json.dumps([_without_trainable(model.get_config()),
                          keras.config.dtype_policy().name, id(model.distribute_strategy)],
                         sort_keys=True, default=repr)
        (_, forward), _ = self._kept.get(key, model, _forward_function)
        correct = total = 0
        loss = 0.0
        for inputs, labels in batches:
            batch_correct, batch_loss = forward(inputs, labels)
            correct += int(batch_correct)
            loss += float(batch_loss)
            total += int(labels.shape[0])
        return correct / max(total, 1), loss / max(total, 1)


def _without_trainable(config):
    """A model config without its `trainable` flags: inference does not depend on them, so
    the full networks of every treatment share one traced forward function."""
    if isinstance(config, dict):
        return {k: _without_trainable(v) for k, v in config.items() if k != "trainable"}
    if isinstance(config, list):
        return [_without_trainable(v) for v in config]
    return config


def _forward_function(model):
    """(correct predictions, summed cross-entropy) of one batch, traced once for any batch
    size."""
    inputs_spec = tf.TensorSpec([None, *model.input.shape[1:]], model.input.dtype)

    @tf.function(input_signature=[inputs_spec, tf.TensorSpec([None], tf.int64)])
    def forward(inputs, labels):
        probabilities = tf.cast(model(inputs, training=False), tf.float32)
        correct = tf.equal(tf.argmax(probabilities, axis=-1), labels)
        loss = keras.losses.sparse_categorical_crossentropy(labels, probabilities)
        return tf.reduce_sum(tf.cast(correct, tf.int64)), tf.reduce_sum(loss)

    return lambda inputs, labels: forward(tf.cast(inputs, inputs_spec.dtype),
                                          tf.cast(labels, tf.int64))


class _Recorder(keras.callbacks.Callback):
    """Validates at each segment end and keeps (step, validation accuracy) in `history`.

    It puts val_accuracy, val_loss and the learning rate into the logs (so TensorBoard and
    keras-tuner see them), and stops the run when the loss is not finite.
    """

    def __init__(self, eval_every, history, val_data, evaluator):
        super().__init__()
        self.eval_every, self.history = eval_every, history
        self.val_data, self.evaluator = val_data, evaluator
        self.diverged = None
        self.segment = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.segment = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            step = self.segment * self.eval_every + batch + 1
            self.diverged = f"loss became {float(loss)} by step {step}"
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(
            self.model.optimizer.learning_rate))
        if self.diverged or not math.isfinite(float(logs.get("loss", 0.0))):
            self.diverged = self.diverged or f"loss became {logs.get('loss')}"
            self.model.stop_training = True
            return
        logs["val_accuracy"], logs["val_loss"] = self.evaluator(self.model, self.val_data)
        step = (epoch + 1) * self.eval_every
        self.history[:] = [h for h in self.history if h[0] < step]
        self.history.append([step, logs["val_accuracy"]])


CHECKPOINT_METADATA = "training_metadata.json"
# Seconds of training between two checkpoints of a run (the first segment always saves).
CHECKPOINT_SECONDS = 30.0


class SegmentCheckpoint(keras.callbacks.Callback):
    """Saves weights, optimizer state and the validation history at segment ends; restores
    the weights when fit starts.

    Unlike keras.callbacks.BackupAndRestore, whose files a kill during a save leaves torn,
    every segment's weights go to a new file written atomically, then the metadata file
    (also atomic) names it, then older weights files go: the checkpoint on disk is always
    whole and consistent.

    It saves after the first segment of a fit, then after any segment that ends at least
    `min_seconds` after the last save: a killed run loses at most that much training,
    and runs of many short segments do not spend their time in save and fsync.
    """

    def __init__(self, backup_dir, history, min_seconds=0.0):
        super().__init__()
        self.backup_dir = backup_dir
        self.history = history
        self.min_seconds = min_seconds
        self._saved_at = None

    def on_train_begin(self, logs=None):
        state = _checkpoint_state(self.backup_dir)
        if state:
            if self.model.optimizer is not None and not self.model.optimizer.built:
                self.model.optimizer.build(self.model.trainable_variables)
            self.model.load_weights(os.path.join(self.backup_dir, state["weights"]))

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        if self._saved_at is not None and now - self._saved_at < self.min_seconds:
            return
        self._saved_at = now
        name = f"segment{epoch + 1}.weights.h5"
        with fileio.atomic_path(os.path.join(self.backup_dir, name)) as tmp:
            self.model.save_weights(tmp)
        fileio.write_json(os.path.join(self.backup_dir, CHECKPOINT_METADATA),
                          {"epoch": epoch + 1, "weights": name, "val_history": self.history})
        for other in os.listdir(self.backup_dir):  # older segments, torn temporary files
            if other.endswith(".h5") and other != name:
                os.remove(os.path.join(self.backup_dir, other))


@dataclasses.dataclass
class TrainResult:
    val_history: list
    train_seconds: float
    images_per_second: float
    resumed_from_step: int


def train(model, train_data, val_data, *, solver, batch_size, run_dir, tensorboard_dir,
          verbose=False, extra_callbacks=(), evaluator=None):
    """Trains a compiled model for `solver.total_steps`, resuming from run_dir if killed.

    Args:
        model: compiled Keras model (compile inside the strategy scope).
        train_data: function(skip_batches) -> endless batched tf.data.Dataset for training.
        val_data: re-iterable batches of (inputs, labels) for validation (a tf.data.Dataset
            or data.ArrayBatches).
        run_dir: where the checkpoint and the validation history live until the run ends.
        tensorboard_dir: TensorBoard log dir of this run.
        evaluator: an Evaluator to reuse (its traced forward functions) across runs.
    Returns:
        TrainResult. Raises DivergedError when the loss is not finite.
    """
    backup_dir = os.path.join(run_dir, "backup")
    state = _checkpoint_state(backup_dir)
    done_segments = state.get("epoch", 0)
    history = state.get("val_history", [])
    recorder = _Recorder(solver.eval_every, history, val_data, evaluator or Evaluator())
    callbacks = [
        recorder,
        SegmentCheckpoint(backup_dir, history, CHECKPOINT_SECONDS),
        keras.callbacks.TensorBoard(tensorboard_dir, update_freq="epoch", write_graph=False,
                                    profile_batch=0),
        *extra_callbacks,
    ]
    segments = solver.total_steps // solver.eval_every
    start = time.perf_counter()
    model.fit(train_data(done_segments * solver.eval_every), epochs=segments,
              initial_epoch=done_segments, steps_per_epoch=solver.eval_every,
              callbacks=callbacks, shuffle=False,
              verbose=1 if verbose and sys.stdout.isatty() else 0)
    seconds = time.perf_counter() - start
    if recorder.diverged:
        raise DivergedError(recorder.diverged)
    trained_steps = solver.total_steps - done_segments * solver.eval_every
    return TrainResult(val_history=history, train_seconds=seconds,
                       images_per_second=trained_steps * batch_size / max(seconds, 1e-9),
                       resumed_from_step=done_segments * solver.eval_every)


def _checkpoint_state(backup_dir):
    """{"epoch": segments a killed run finished, "weights": their file}, or {} when fresh."""
    path = os.path.join(backup_dir, CHECKPOINT_METADATA)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


class CompiledModels:
    """Compiled models kept from run to run, so tracing happens once per kind of run.

    Keras traces a model's train and test functions anew for every new model object, about
    a second or two of CPU per run. A study trains many networks of the same structure with
    the same solver (both bases and every fine-tuned run; the three frozen runs of each n), so
    `twin` hands out the kept model of that structure loaded with the new model's state
    (weights, dropout seeds, fresh optimizer state), and `copy_back` returns the trained state
    to the run's own model. The result equals training the new model itself.
    """

    def __init__(self, size=2):
        self._kept = _KeptModels(size)  # signature -> (model, optimizer start state)

    def twin(self, model):
        """The kept compiled model equal in structure and solver to `model` (itself when there
        is none yet), holding `model`'s state and a fresh optimizer."""
        def optimizer_start(new):
            new.optimizer.build(new.trainable_variables)
            return [v.numpy() for v in new.optimizer.variables]

        (twin, start), fresh = self._kept.get(_signature(model), model, optimizer_start)
        if not fresh:
            for variable, value in zip(twin.optimizer.variables, start):
                variable.assign(value)
        return twin

    @staticmethod
    def copy_back(model, twin):
        """Puts the state `twin` trained into `model` (nothing when they are one model)."""
        if twin is not model:
            for mine, theirs in zip(model.variables, twin.variables):
                mine.assign(theirs)


def _signature(model):
    """What a traced train function depends on: the layers (with their trainable flags,
    shapes and dtypes), the optimizer and its schedule, the loss and the strategy."""
    optimizer = model.optimizer
    settings = {k: v for k, v in optimizer.get_config().items() if k != "name"}  # sgd_2...
    return json.dumps([model.get_config(), type(optimizer).__name__, settings,
                       getattr(optimizer, "bias_lr_multiplier", 1.0), repr(model.loss),
                       id(model.distribute_strategy)], sort_keys=True, default=repr)


class _KeptModels:
    """The last `size` models used, one per key (a structure), each with something made for
    it once (a traced function, a saved optimizer state), least recently used first out."""

    def __init__(self, size):
        self.size = size
        self._kept = collections.OrderedDict()  # key -> (model, made)

    def get(self, key, model, make):
        """((kept model, its made thing), fresh): the kept model of `key` holding `model`'s
        variables, or `model` itself with `make(model)` when none is kept (fresh=True)."""
        kept = self._kept.pop(key, None)
        fresh = kept is None or not _same_shapes(kept[0].variables, model.variables)
        if fresh:
            kept = (model, make(model))
        elif kept[0] is not model:
            for mine, theirs in zip(kept[0].variables, model.variables):
                mine.assign(theirs)
        self._kept[key] = kept
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)
        return kept, fresh


def _same_shapes(ours, theirs):
    return len(ours) == len(theirs) and all(
        a.shape == b.shape and a.dtype == b.dtype for a, b in zip(ours, theirs))

