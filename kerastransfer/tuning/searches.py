"""The two searches of --mode=tune, one after the other, each a keras-tuner project in
`tuning_dir`: `base` (the base network on half A), then `transfer_ft` (AnB+ on half B from
the base search's best network). Each search's best trial goes to its `best.json`, which
workers wait for before the AnB+ search.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import TYPE_CHECKING, Any

import keras

from kerastransfer.console import log
from kerastransfer.errors import StudyStopped
from kerastransfer.tuning import distributed
from kerastransfer.tuning.hypermodels import (
    RECORD,
    WEIGHTS,
    BaseSearch,
    FineTuneSearch,
    TrialSetup,
)
from kerastransfer.tuning.tuners import HYPERBAND_TRIALS, Tuner, make_tuner
from kerastransfer.workdir import files

if TYPE_CHECKING:
    import keras_tuner
    import tensorflow as tf

    from kerastransfer.config import TuningConfig
    from kerastransfer.data import HalfData

BEST = "best.json"  # a search's best trial, written once the search is over


def run_searches(
    setup: TrialSetup,
    half_a: HalfData,
    half_b: HalfData,
    *,
    tuning: TuningConfig,
    n: int,
    tuning_dir: str,
    role: str,
    strategy: tf.distribute.Strategy,
) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """Both searches; returns the best (base, AnB+) trials (None for AnB+ if none finished).

    `setup`: hypermodels.TrialSetup; `half_a`, `half_b`: the halves of the split searched on
    (their test examples never reach a trial); `tuning`: the config.TuningConfig; `n`: AnB+'s
    cut; `role`: distributed.distributed_role()'s; `strategy`: the tf.distribute strategy
    trials train under. Workers return nothing: the chief's oracle knows the results.
    """
    hyperband = tuning.tuner == "hyperband"
    if hyperband and tuning.max_trials < HYPERBAND_TRIALS:
        log(
            f"note: --max_trials={tuning.max_trials} is less than one Hyperband iteration "
            f"({HYPERBAND_TRIALS} trials): only its first, shortest trials run"
        )

    def tuner(hypermodel: BaseSearch | FineTuneSearch) -> Tuner:
        return make_tuner(
            tuning, setup.seed_offset, hypermodel, hypermodel.stage, strategy, tuning_dir, role
        )

    base_best = os.path.join(tuning_dir, "base", BEST)
    if role != "worker" and os.path.exists(base_best):
        os.remove(base_best)  # written again when this base search is over
    with distributed.oracle_port(0):
        base_tuner = tuner(BaseSearch(setup, _without_test(half_a), hyperband))
        _search(base_tuner, "base", role)
    if role == "worker":
        base = distributed.wait_for_chief(base_best)
    else:
        base = best_trial(base_tuner, "base")
        files.write_json(base_best, base)
    if "error" in base:
        raise StudyStopped(base["error"])
    with distributed.oracle_port(1):
        fine_tuner = tuner(
            FineTuneSearch(setup, _without_test(half_b), hyperband, base, n, tuning_dir)
        )
        _search(fine_tuner, "transfer_ft", role)
    if role == "worker":
        return None
    fine = best_trial(fine_tuner, "transfer_ft")
    files.write_json(os.path.join(tuning_dir, "transfer_ft", BEST), fine)
    return base, None if "error" in fine else fine


def _without_test(half: HalfData) -> HalfData:
    """The half without its test examples: what a trial may see."""
    return dataclasses.replace(half, test_x=half.test_x[:0], test_y=half.test_y[:0])


def _search(tuner: Tuner, stage: str, role: str) -> None:
    """One search; the chief serves it to the workers until every trial is over."""
    if role == "chief":
        log(
            f"[tune {stage}] chief: serving trials on {distributed.oracle_address()} "
            "until the workers finish them"
        )
    else:
        log(f"[tune {stage}] searching in {tuner.project_dir}")
    board = keras.callbacks.TensorBoard(
        os.path.join(os.path.dirname(tuner.project_dir), "tensorboard", stage)
    )
    tuner.search(callbacks=[board])


def best_trial(tuner: Tuner, stage: str) -> dict[str, Any]:
    """The best completed trial of a finished search, or {"error": why there is none}."""
    trials = list(tuner.oracle.trials.values())
    done = [t for t in trials if t.status == "COMPLETED"]
    log(
        f"[tune {stage}] {len(done)} of {len(trials)} trials finished"
        + "".join(
            f"; trial {t.trial_id} {t.status}: {_reason(tuner, t)}"
            for t in trials
            if t.status != "COMPLETED"
        )
    )
    if not done:
        return {
            "error": f"no {stage} trial finished in {tuner.project_dir} "
            f"({len(trials)} started); see the lines above"
        }
    best = max(done, key=lambda t: t.score)
    with open(os.path.join(tuner.get_trial_dir(best.trial_id), RECORD)) as f:
        record = json.load(f)
    return {
        "trial_id": best.trial_id,
        "score": best.score,
        "values": record["values"],
        "k": record["k"],
        "epochs_trained": record["values"]["epochs"],
        "tuner_id": record["tuner_id"],
        "num_classes": record["num_classes"],
        "weights": os.path.relpath(
            os.path.join(tuner.get_trial_dir(best.trial_id), WEIGHTS),
            os.path.dirname(tuner.project_dir),
        ),
        "finished_trials": len(done),
        "trials": len(trials),
    }


def _reason(tuner: Tuner, trial: keras_tuner.engine.trial.Trial) -> str:
    """Why a trial did not complete: our record's reason, else keras-tuner's last line."""
    path = os.path.join(tuner.get_trial_dir(trial.trial_id), RECORD)
    if os.path.exists(path):
        with open(path) as f:
            reason = json.load(f).get("reason")
        if reason:
            return reason
    lines = [line for line in (trial.message or "").splitlines() if line.strip()]
    return lines[-1] if lines else f"see {tuner.get_trial_dir(trial.trial_id)}/trial.json"
