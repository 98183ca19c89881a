"""The two HyperModels: what a trial trains and how it is scored.

- BaseSearch: the base network on half A, its learning rate, weight decay, batch size and
  epochs;
- FineTuneSearch: AnB+ at n on half B, copied from the best base network, its fine-tuning
  learning-rate scale.

Search ranges are centred on the configured values: learning rate and weight decay from /10
to x10 (log scale), batch size /2, x1 or x2, epochs /2 to x2 (Bayesian) or, for Hyperband,
1/9, 1/3 and the whole of twice `--epochs`; the fine-tuning scale from 0.01 to 1 (log scale).
A trial trains from scratch like a grid run (training.fit_run, the grid's solver with the
trial's values), so its score, the paper's metric (the mean of the `--best_k` best validation
evaluations), is what the grid would get with its values. A diverged trial is keras-tuner's
FailedTrialError: keras-tuner prints its traceback, and the trial's own line says why.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import keras
import keras_tuner
import tensorflow as tf

from kerastransfer import surgery, training
from kerastransfer.console import log
from kerastransfer.tuning.distributed import tuner_id
from kerastransfer.tuning.tuners import HYPERBAND_UNITS, OBJECTIVE
from kerastransfer.workdir import files

if TYPE_CHECKING:
    from kerastransfer.config import SolverConfig
    from kerastransfer.data import HalfData
    from kerastransfer.data.halves import InMemoryHalves

# A trial's values by flag name (learning_rate, batch_size, epochs, ...).
Settings = dict[str, Any]

RECORD = "kerastransfer.json"  # our record of a trial, beside keras-tuner's trial.json
WEIGHTS = "final.weights.h5"


@dataclasses.dataclass(frozen=True)
class TrialSetup:
    """What every trial trains with, handed over by the driver (app/tune.py), so that a
    trial trains on the grid's data and networks without tuning/ loading a study."""

    halves: InMemoryHalves  # train_batches() and eval_batches() of a half
    # (num_classes, weight_decay=...) -> a fresh network of the grid
    build_model: Callable[..., keras.Model]
    cut_names: Callable[[keras.Model], list[str] | None]  # the layers that end its blocks
    solver: SolverConfig  # the grid's solver, centre of the search ranges
    seed_offset: int  # --seed_offset, added to every trial's seed
    verbose: bool  # --verbose, for fit_run


class _TrialModel(keras_tuner.HyperModel):
    """A trial: a network of the grid trained like a grid run, scored on validation data.

    Subclasses give `settings(hp)` (the flag values the trial uses) and `network(settings)`;
    `half` is the data the trial trains and validates on (no test examples).
    """

    stage: str
    half_name: str

    def __init__(self, setup: TrialSetup, half: HalfData, hyperband: bool) -> None:
        super().__init__(name=self.stage)
        self.setup, self.half, self.hyperband = setup, half, hyperband

    def _epochs(self, hp: keras_tuner.HyperParameters, longest: float) -> float:
        """Hyperband's budget: the trial's units of longest/9 (all 9 while declaring)."""
        units = hp.values.get("tuner/epochs", HYPERBAND_UNITS)
        return longest * units / HYPERBAND_UNITS

    def _solver(self, settings: Settings) -> training.Solver:
        """The grid's solver with the trial's values (its length always in epochs)."""
        return training.Solver.from_config(
            self.setup.solver,
            len(self.half.train_y),
            fine_tuned=True,
            learning_rate=settings["learning_rate"],
            batch_size=settings["batch_size"],
            epochs=settings["epochs"],
            train_steps=0,
            fine_tune_lr_scale=settings.get("fine_tune_lr_scale", 1.0),
        )

    def _seed(self, hp: keras_tuner.HyperParameters) -> int:
        text = json.dumps({"stage": self.stage, **hp.values}, sort_keys=True)
        return (zlib.crc32(text.encode()) + self.setup.seed_offset) % 2**31

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        """The compiled network; the tuner calls it inside its distribution strategy."""
        settings = self.settings(hp)
        keras.utils.set_random_seed(self._seed(hp))
        model = self.network(settings)
        training.compile_model(model, self._solver(settings))
        return model

    def fit(
        self,
        hp: keras_tuner.HyperParameters,
        model: keras.Model,
        *,
        callbacks: list[keras.callbacks.Callback],
        trial_id: str,
        trial_dir: str,
    ) -> dict[str, float | None]:
        """Trains like a grid run (resuming a killed trial); returns the trial's score."""
        setup = self.setup
        settings = self.settings(hp)
        solver = self._solver(settings)
        half, seed = self.half, self._seed(hp)

        def train_data(skip: int) -> tf.data.Dataset:
            return setup.halves.train_batches(half, seed, skip, settings["batch_size"])

        val_data = setup.halves.eval_batches(half, "val")
        # keras-tuner gave the TensorBoard callback a per-trial log dir and added HParams.
        board = next(c for c in callbacks if isinstance(c, keras.callbacks.TensorBoard))
        others = [c for c in callbacks if c is not board]
        record = {  # the trial's part of its record; fit_run's outcome gives the rest
            "stage": self.stage,
            "trial_id": trial_id,
            "tuner_id": tuner_id(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "values": settings,
            "half": self.half_name,
            "num_classes": half.num_classes,
            "learning_rate_trained": solver.learning_rate,
            "strategy": type(model.distribute_strategy).__name__,
            "replicas": model.distribute_strategy.num_replicas_in_sync,
        }
        where = f"[tune {self.stage}] trial {trial_id} on {record['tuner_id']}"
        outcome = training.fit_run(
            model,
            train_data,
            val_data,
            solver=solver,
            batch_size=settings["batch_size"],
            best_k=setup.solver.best_k,
            run_dir=os.path.join(trial_dir, "run"),
            weights_path=os.path.join(trial_dir, WEIGHTS),
            tensorboard_dir=board.log_dir,
            verbose=setup.verbose,
            extra_callbacks=others,
        )
        files.write_json(os.path.join(trial_dir, RECORD), {**record, **outcome.record()})
        if not outcome.ok:
            log(f"{where}: {_show(settings)} -> FAILED ({outcome.reason})")
            raise keras_tuner.errors.FailedTrialError(outcome.reason)
        writer = tf.summary.create_file_writer(os.path.join(board.log_dir, "validation"))
        with writer.as_default():
            tf.summary.scalar(OBJECTIVE, outcome.best_k, step=solver.total_steps)
        writer.close()
        resumed = outcome.resumed_from_step
        log(
            f"{where}: {_show(settings)} -> best-{setup.solver.best_k} val "
            f"{outcome.best_k:.4f}, {outcome.train_seconds:.1f}s"
            + (f" (resumed at step {resumed})" if resumed else "")
        )
        return {OBJECTIVE: outcome.best_k, "val_accuracy": outcome.final_val}


class BaseSearch(_TrialModel):
    """Base network on half A: learning rate, weight decay, batch size, epochs."""

    stage, half_name = "base", "A"

    def settings(self, hp: keras_tuner.HyperParameters) -> Settings:
        s = self.setup.solver
        decay_low, decay_high = (
            (s.weight_decay / 10, s.weight_decay * 10) if s.weight_decay else (1e-6, 1e-2)
        )
        sizes = sorted({max(1, s.batch_size // 2), s.batch_size, 2 * s.batch_size})
        if self.hyperband:
            epochs = self._epochs(hp, 2 * s.epochs)
        else:
            epochs = hp.Float(
                "epochs", s.epochs / 2, s.epochs * 2, sampling="log", default=s.epochs
            )
        return {
            "learning_rate": _round(
                hp.Float(
                    "learning_rate",
                    s.learning_rate / 10,
                    s.learning_rate * 10,
                    sampling="log",
                    default=s.learning_rate,
                )
            ),
            "weight_decay": _round(
                hp.Float(
                    "weight_decay",
                    decay_low,
                    decay_high,
                    sampling="log",
                    default=s.weight_decay or None,
                )
            ),
            "batch_size": int(hp.Choice("batch_size", sizes, default=s.batch_size)),
            "epochs": _round(epochs),
        }

    def network(self, settings: Settings) -> keras.Model:
        return self.setup.build_model(self.half.num_classes, weight_decay=settings["weight_decay"])


class FineTuneSearch(_TrialModel):
    """AnB+ at n on half B, from the best base network: the fine-tuning rate scale.

    `base`: the base search's best trial (searches.best_trial), whose weights lie under
    `tuning_dir`.
    """

    stage, half_name = "transfer_ft", "B"

    def __init__(
        self,
        setup: TrialSetup,
        half: HalfData,
        hyperband: bool,
        base: dict[str, Any],
        n: int,
        tuning_dir: str,
    ) -> None:
        super().__init__(setup, half, hyperband)
        self.base, self.n = base, n
        self.base_weights = os.path.join(tuning_dir, base["weights"])

    def settings(self, hp: keras_tuner.HyperParameters) -> Settings:
        settings = dict(self.base["values"])
        settings["fine_tune_lr_scale"] = _round(
            hp.Float("fine_tune_lr_scale", 0.01, 1.0, sampling="log", default=1.0)
        )
        if self.hyperband:
            settings["epochs"] = _round(self._epochs(hp, settings["epochs"]))
        return settings

    def network(self, settings: Settings) -> keras.Model:
        base = self.setup.build_model(
            self.base["num_classes"], weight_decay=settings["weight_decay"]
        )
        base.load_weights(self.base_weights)
        return surgery.transfer(
            base,
            self.n,
            "fine_tuned",
            num_classes=self.half.num_classes,
            cut_names=self.setup.cut_names(base),
        )


def _round(value: float) -> float:
    """4 significant digits: the value a trial trains with is the one tuned.flags shows."""
    return float(f"{value:.4g}")


def _show(settings: Settings) -> str:
    return " ".join(f"{name}={value:g}" for name, value in settings.items())
