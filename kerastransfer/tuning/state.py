"""keras-tuner's state files written atomically, and a trial file torn by a kill mended.

keras-tuner rewrites its state files (oracle.json, tuner0.json, trial.json) in place, so a
search killed while writing one left it torn and the resumed search could not read it.
Through its public API: the oracle and the tuner save their own state atomically
(workdir.files writes a temporary file and renames it), and every trial's state is copied
atomically after each change, so mend_torn_trials() can restore a torn trial.json before
a search resumes.
"""

from __future__ import annotations

import glob
import json
import os
from typing import TYPE_CHECKING

import keras_tuner

from kerastransfer.console import log
from kerastransfer.workdir import files

TRIAL_COPY = "trial.copy.json"  # our atomic copy of keras-tuner's trial.json

if TYPE_CHECKING:  # the classes the mixins below extend (Any: keras-tuner has no types)
    from keras_tuner import Oracle as OracleBase
    from keras_tuner import Tuner as TunerBase
else:
    OracleBase = TunerBase = object


def copy_trial(trial_dir: str, trial: keras_tuner.engine.trial.Trial) -> None:
    """Copies a trial's state atomically beside its trial.json."""
    files.write_json(os.path.join(trial_dir, TRIAL_COPY), trial.get_state())


def mend_torn_trials(project_dir: str) -> None:
    """Before a search resumes: every trial.json that does not parse is restored from our
    copy of it, or removed when the kill came before its first copy (a trial created at
    that moment, which the oracle's saved state does not name yet)."""
    for trial_dir in sorted(glob.glob(os.path.join(project_dir, "trial_*"))):
        path = os.path.join(trial_dir, "trial.json")
        if not os.path.exists(path):
            continue
        try:
            with open(path) as f:
                json.load(f)
        except ValueError:
            copy = os.path.join(trial_dir, TRIAL_COPY)
            if os.path.exists(copy):
                log(f"{path} was torn by a kill; restored from {TRIAL_COPY}")
                with open(copy) as f:
                    files.write_text(path, f.read())
            else:
                log(f"{path} was torn by a kill before the trial began; removed")
                os.remove(path)


class AtomicOracleState(OracleBase):
    """Oracle mixin: oracle.json written atomically, and each trial's state copied after
    every change (`project_dir`, the search's folder, is set by tuners.make_tuner)."""

    project_dir: str  # the search's folder, set by tuners.make_tuner before the tuner is built

    def save(self) -> None:
        files.write_json(os.path.join(self.project_dir, "oracle.json"), self.get_state())

    @keras_tuner.synchronized
    def create_trial(self, tuner_id: str) -> keras_tuner.engine.trial.Trial:
        trial = super().create_trial(tuner_id)
        if trial.trial_id in self.trials:  # not a STOPPED placeholder
            copy_trial(self._trial_dir(trial.trial_id), trial)
        return trial

    @keras_tuner.synchronized
    def update_trial(self, trial_id: str, metrics: dict[str, float], step: int = 0) -> str:
        status = super().update_trial(trial_id, metrics, step=step)
        copy_trial(self._trial_dir(trial_id), self.trials[trial_id])
        return status

    @keras_tuner.synchronized
    def end_trial(self, trial: keras_tuner.engine.trial.Trial) -> None:
        super().end_trial(trial)
        copy_trial(self._trial_dir(trial.trial_id), self.trials[trial.trial_id])

    def _trial_dir(self, trial_id: str) -> str:
        return os.path.join(self.project_dir, f"trial_{trial_id}")


class AtomicTunerState(TunerBase):
    """Tuner mixin: the tuner's state file written atomically, and the oracle's by the
    process that holds the oracle (`role`: distributed.distributed_role()'s; a worker's
    oracle is the chief's)."""

    role: str | None = None

    def save(self) -> None:
        if self.role != "worker":
            self.oracle.save()
        files.write_json(os.path.join(self.project_dir, f"{self.tuner_id}.json"), self.get_state())
