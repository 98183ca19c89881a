"""The tuner of one search: keras-tuner's Bayesian or Hyperband oracle, which runs the
configured values first and honours --tune_seconds, and a Tuner that tells the hypermodel
which trial it trains and where. Both save their state atomically (state.py).
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import keras_tuner

from kerastransfer.console import log
from kerastransfer.tuning.state import AtomicOracleState, AtomicTunerState, mend_torn_trials

OBJECTIVE = "best_k_val_accuracy"  # what a trial returns and the oracle maximises
# Hyperband's budget: twice --epochs in 9 units, trials of 1, 3 or 9 units (factor 3); one
# Hyperband iteration of that size is 23 trials.
HYPERBAND_UNITS, HYPERBAND_FACTOR, HYPERBAND_TRIALS = 9, 3, 23

if TYPE_CHECKING:  # the class the mixin below extends (Any: keras-tuner has no types)
    import tensorflow as tf
    from keras_tuner import Oracle as OracleBase

    from kerastransfer.config import TuningConfig
    from kerastransfer.tuning.hypermodels import _TrialModel
else:
    OracleBase = object


class _SearchOracle(OracleBase):
    """Oracle mixin: the configured values first and the --tune_seconds budget.

    The oracle lives in the local process or the chief, so the chief's clock decides.
    """

    deadline: float | None = None  # time.time() after which no new trial starts

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        if self.deadline is not None and time.time() > self.deadline:
            log("--tune_seconds spent: no new trials")
            return {"status": "STOPPED"}
        return super().populate_space(trial_id)

    def _random_values(self) -> dict[str, Any]:
        """The first trial runs the configured values (the defaults): the one to beat.

        keras-tuner has no public hook for this: `_random_values` is where both oracles
        draw a new trial's values (Hyperband: each bracket's first round).
        """
        if not self._tried_so_far:
            return dict(self.hyperparameters.values)
        return super()._random_values()


class BayesianOracle(
    _SearchOracle, AtomicOracleState, keras_tuner.oracles.BayesianOptimizationOracle
):
    """Bayesian optimization with the --tune_seconds budget."""


class HyperbandOracle(_SearchOracle, AtomicOracleState, keras_tuner.oracles.HyperbandOracle):
    """Hyperband with the --tune_seconds budget and a --max_trials cap."""

    def __init__(self, max_trials: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_trials = max_trials  # Hyperband sizes itself; the base Oracle honours this


class Tuner(AtomicTunerState, keras_tuner.Tuner):
    """keras-tuner's Tuner, telling the hypermodel which trial it trains and where;
    `role` is distributed.distributed_role()'s."""

    def __init__(self, *, role: str, **kwargs: Any) -> None:
        self.role = role
        super().__init__(**kwargs)

    def run_trial(
        self, trial: keras_tuner.engine.trial.Trial, *args: Any, **kwargs: Any
    ) -> dict[str, float | None]:  # what the hypermodel's fit returns
        return super().run_trial(
            trial,
            *args,
            trial_id=trial.trial_id,
            trial_dir=self.get_trial_dir(trial.trial_id),
            **kwargs,
        )


def make_tuner(
    tuning: TuningConfig,
    seed_offset: int,
    hypermodel: _TrialModel,
    stage: str,
    strategy: tf.distribute.Strategy,
    tuning_dir: str,
    role: str,
) -> Tuner:
    """The tuner of one search (`tuning`: the config.TuningConfig, `seed_offset`:
    --seed_offset); resumes its project when one exists (overwrite=False)."""
    common = {
        "objective": keras_tuner.Objective(OBJECTIVE, direction="max"),
        "seed": 1 + seed_offset,
        # a diverged trial is a result, not a reason to stop the search
        "max_consecutive_failed_trials": 10**6,
    }
    if tuning.tuner == "hyperband":
        oracle = HyperbandOracle(
            tuning.max_trials, max_epochs=HYPERBAND_UNITS, factor=HYPERBAND_FACTOR, **common
        )
    else:
        oracle = BayesianOracle(max_trials=tuning.max_trials, **common)
    oracle.verbose = 0  # each trial logs one line where it trains
    oracle.deadline = time.time() + tuning.tune_seconds if tuning.tune_seconds else None
    oracle.project_dir = os.path.join(tuning_dir, stage)
    if role != "worker":
        mend_torn_trials(oracle.project_dir)
    return Tuner(
        role=role,
        oracle=oracle,
        hypermodel=hypermodel,
        distribution_strategy=strategy,
        directory=tuning_dir,
        project_name=stage,
        overwrite=False,
    )
