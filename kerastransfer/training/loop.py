"""One training run: the solver's schedule over segments, with resumable checkpoints.

`fit_run` is the one way a run is trained (the study's runs, the tuner's trials, the
benchmark): it trains, keeps the final weights and returns a RunOutcome, a diverged loss
included. `train` is the loop under it: `model.fit` over an endless dataset in "segments"
of `eval_every` steps. Each Keras epoch is one segment, so validation accuracy is measured
every `eval_every` steps (the paper's evaluation schedule), SegmentCheckpoint saves the
weights and the validation history at segment ends (at most every CHECKPOINT_SECONDS), and
a killed run resumes from its last checkpoint instead of starting over.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

import keras
import tensorflow as tf

from kerastransfer.training.compiled import Evaluator
from kerastransfer.workdir import files
from kerastransfer.workdir.provenance import file_digest
from kerastransfer.workdir.results import best_k_mean

if TYPE_CHECKING:
    from kerastransfer.training.solver import Solver
    from kerastransfer.treatments import Stage

# Validation batches of (inputs, labels): a tf.data.Dataset or a data.ArrayBatches.
Batches = Iterable[tuple[tf.Tensor, tf.Tensor]]
# train_data(skip): endless training batches from batch `skip` on.
TrainData = Callable[[int], tf.data.Dataset]
# A validation history: [step, validation accuracy] per evaluation (as JSON stores it).
History = list[list[float]]


class DivergedError(RuntimeError):
    """The loss became NaN or infinite: the run failed (its record says so)."""


class _Recorder(keras.callbacks.Callback):
    """Validates at each segment end and keeps (step, validation accuracy) in `history`.

    It puts val_accuracy, val_loss and the learning rate into the logs (so TensorBoard and
    keras-tuner see them), and stops the run when the loss is not finite.
    """

    def __init__(
        self, eval_every: int, history: History, val_data: Batches, evaluator: Evaluator
    ) -> None:
        super().__init__()
        self.eval_every, self.history = eval_every, history
        self.val_data, self.evaluator = val_data, evaluator
        self.diverged: str | None = None
        self.segment = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.segment = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            step = self.segment * self.eval_every + batch + 1
            self.diverged = f"loss became {float(loss)} by step {step}"
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs if logs is not None else {}
        logs["learning_rate"] = float(
            keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
        )
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

    def __init__(self, backup_dir: str, history: History, min_seconds: float = 0.0) -> None:
        super().__init__()
        self.backup_dir = backup_dir
        self.history = history
        self.min_seconds = min_seconds
        self._saved_at: float | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        state = _checkpoint_state(self.backup_dir)
        if state:
            if self.model.optimizer is not None and not self.model.optimizer.built:
                self.model.optimizer.build(self.model.trainable_variables)
            self.model.load_weights(os.path.join(self.backup_dir, state["weights"]))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        now = time.perf_counter()
        if self._saved_at is not None and now - self._saved_at < self.min_seconds:
            return
        self._saved_at = now
        name = f"segment{epoch + 1}.weights.h5"
        with files.atomic_path(os.path.join(self.backup_dir, name)) as tmp:
            self.model.save_weights(tmp)
        files.write_json(
            os.path.join(self.backup_dir, CHECKPOINT_METADATA),
            {"epoch": epoch + 1, "weights": name, "val_history": self.history},
        )
        for other in os.listdir(self.backup_dir):  # older segments, torn temporary files
            if other.endswith(".h5") and other != name:
                os.remove(os.path.join(self.backup_dir, other))


@dataclasses.dataclass
class TrainResult:
    val_history: History
    train_seconds: float
    images_per_second: float
    resumed_from_step: int


def train(
    model: keras.Model,
    train_data: TrainData,
    val_data: Batches,
    *,
    solver: Solver,
    batch_size: int,
    run_dir: str,
    tensorboard_dir: str,
    verbose: bool = False,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
    evaluator: Evaluator | None = None,
) -> TrainResult:
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
        keras.callbacks.TensorBoard(
            tensorboard_dir, update_freq="epoch", write_graph=False, profile_batch=0
        ),
        *extra_callbacks,
    ]
    segments = solver.total_steps // solver.eval_every
    start = time.perf_counter()
    model.fit(
        train_data(done_segments * solver.eval_every),
        epochs=segments,
        initial_epoch=done_segments,
        steps_per_epoch=solver.eval_every,
        callbacks=callbacks,
        shuffle=False,
        verbose=1 if verbose and sys.stdout.isatty() else 0,
    )
    seconds = time.perf_counter() - start
    if recorder.diverged:
        raise DivergedError(recorder.diverged)
    trained_steps = solver.total_steps - done_segments * solver.eval_every
    return TrainResult(
        val_history=history,
        train_seconds=seconds,
        images_per_second=trained_steps * batch_size / max(seconds, 1e-9),
        resumed_from_step=done_segments * solver.eval_every,
    )


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """What training one run gave: status "ok" with its validation history, timing and kept
    weights, or "failed" with the reason (a diverged loss). `record()` is its part of a run
    record, the keys every caller stores the same way."""

    status: str
    reason: str | None = None
    best_k: float | None = None
    k: int | None = None
    final_val: float | None = None
    val_history: History = dataclasses.field(default_factory=list)
    train_seconds: float | None = None
    images_per_second: float | None = None
    steps: int | None = None
    resumed_from_step: int | None = None
    weights_bytes: int | None = None
    weights_sha256: str | None = None
    # A staged recipe's stages (fit_stages): name, what trains, steps, rate; None for one stage.
    stages: list[dict[str, Any]] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def record(self) -> dict[str, Any]:
        """The outcome's keys of a run record: all of them for "ok", status and reason for
        "failed"."""
        if not self.ok:
            return {"status": self.status, "reason": self.reason}
        record = dataclasses.asdict(self)
        if self.stages is None:
            del record["stages"]
        return record


def fit_run(
    model: keras.Model,
    train_data: TrainData,
    val_data: Batches,
    *,
    solver: Solver,
    batch_size: int,
    best_k: int,
    run_dir: str,
    weights_path: str,
    tensorboard_dir: str,
    trained: Callable[[], keras.Model] | None = None,
    verbose: bool = False,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
    evaluator: Evaluator | None = None,
) -> RunOutcome:
    """Trains one run (resuming its checkpoint in run_dir), keeps its final weights at
    `weights_path` (written atomically) and removes the checkpoint; returns a RunOutcome.

    `trained()`, called once training ends, gives the model whose weights are kept (default:
    `model`), for callers that train a twin or a head on cached features. A diverged loss
    is an outcome with status "failed": nothing is kept and the checkpoint (NaN weights) goes.
    The other arguments are train()'s.
    """
    backup_dir = os.path.join(run_dir, "backup")
    try:
        result = train(
            model,
            train_data,
            val_data,
            solver=solver,
            batch_size=batch_size,
            run_dir=run_dir,
            tensorboard_dir=tensorboard_dir,
            verbose=verbose,
            extra_callbacks=extra_callbacks,
            evaluator=evaluator,
        )
    except DivergedError as error:
        shutil.rmtree(backup_dir, ignore_errors=True)
        return RunOutcome(status="failed", reason=str(error))
    kept = trained() if trained is not None else model
    with files.atomic_path(weights_path) as tmp:
        kept.save_weights(tmp)
    shutil.rmtree(backup_dir, ignore_errors=True)
    return RunOutcome(
        status="ok",
        best_k=best_k_mean(result.val_history, best_k),
        k=best_k,
        final_val=result.val_history[-1][1],
        val_history=result.val_history,
        train_seconds=result.train_seconds,
        images_per_second=result.images_per_second,
        steps=solver.total_steps,
        resumed_from_step=result.resumed_from_step,
        weights_bytes=os.path.getsize(weights_path),
        weights_sha256=file_digest(weights_path),
    )


STAGE_OUTCOME = "outcome.json"  # a finished stage's RunOutcome, in its folder


def fit_stages(
    model: keras.Model,
    train_data: TrainData,
    val_data: Batches,
    *,
    stages: Sequence[Stage],
    run_dir: str,
    compile_model: Callable[[keras.Model, Solver], None],
    **fit_args: Any,
) -> RunOutcome:
    """A staged recipe as one run: for each of `stages` (treatments.Stage) in turn, its
    `prepare(model)` sets which layers train, `compile_model(model, stage.solver)` compiles
    it with a fresh optimizer, and it trains its steps from the previous stage's weights
    (LP-FT: the probe's head, then every layer; another recipe may unfreeze one more block
    per stage).

    Each stage is a fit_run in its own folder under run_dir (its name), so a killed run
    resumes inside the stage it was in; a finished stage is kept there (its weights and
    outcome) until the run ends, and the last stage writes the run's weights. Returns the
    last stage's RunOutcome over all stages: their validation histories in one (each stage's
    steps after the ones before), steps and seconds summed, and `stages` describing each
    (name, what trains, steps, rate); a failed stage fails the run.
    """
    weights_path, tensorboard_dir = fit_args.pop("weights_path"), fit_args.pop("tensorboard_dir")
    outcomes: list[tuple[int, RunOutcome]] = []
    offset, previous = 0, None
    for index, stage in enumerate(stages):
        stage_dir = os.path.join(run_dir, stage.name)
        last = index == len(stages) - 1
        stage_weights = (
            weights_path if last else os.path.join(stage_dir, f"{stage.name}.weights.h5")
        )
        done = os.path.join(stage_dir, STAGE_OUTCOME)
        if not last and os.path.exists(done):
            with open(done) as f:
                outcome = RunOutcome(**json.load(f))
        else:
            if previous is not None:
                model.load_weights(previous)
            if stage.prepare is not None:
                stage.prepare(model)
            compile_model(model, stage.solver)
            start = offset

            def stage_data(skip: int, start: int = start) -> tf.data.Dataset:
                return train_data(start + skip)

            outcome = fit_run(
                model,
                stage_data,
                val_data,
                solver=stage.solver,
                run_dir=stage_dir,
                weights_path=stage_weights,
                tensorboard_dir=os.path.join(tensorboard_dir, stage.name),
                **fit_args,
            )
            if not outcome.ok:
                return outcome
            if not last:
                files.write_json(done, dataclasses.asdict(outcome))
        outcomes.append((offset, outcome))
        offset += stage.solver.total_steps
        previous = stage_weights
    for stage in stages[:-1]:
        shutil.rmtree(os.path.join(run_dir, stage.name), ignore_errors=True)
    history = [[start + step, acc] for start, o in outcomes for step, acc in o.val_history]
    resumed = outcomes[0][1].resumed_from_step
    for start, o in outcomes[1:]:
        if o.resumed_from_step:
            resumed = start + o.resumed_from_step
    final = outcomes[-1][1]
    # Every stage's outcome is ok (a failed one returned above), so its numbers are set.
    return dataclasses.replace(
        final,
        best_k=best_k_mean(history, cast(int, final.k)),
        val_history=history,
        train_seconds=sum(cast(float, o.train_seconds) for _, o in outcomes),
        steps=outcomes[-1][0] + cast(int, final.steps),
        resumed_from_step=resumed,
        stages=[
            {
                "stage": stage.name,
                "trains": stage.trains,
                "steps": o.steps,
                "learning_rate": stage.solver.learning_rate,
            }
            for stage, (_, o) in zip(stages, outcomes)
        ],
    )


def _checkpoint_state(backup_dir: str) -> dict[str, Any]:
    """{"epoch": segments a killed run finished, "weights": their file}, or {} when fresh."""
    path = os.path.join(backup_dir, CHECKPOINT_METADATA)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)
