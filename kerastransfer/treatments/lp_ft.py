"""LP-FT (AnB-LP-FT; Kumar et al., ICLR 2022): the probe's network, its head trained for the
first half of the run's steps at --learning_rate, then every layer for the second half at
the fine-tuning rate, from the probe's weights (training.fit_stages)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from kerastransfer.treatments.probe import Probe
from kerastransfer.treatments.treatment import Stage, Style

if TYPE_CHECKING:
    import keras

    from kerastransfer.config import SolverConfig
    from kerastransfer.training.solver import Solver


def _every_layer_trains(model: keras.Model) -> None:
    for layer in model.layers:
        layer.trainable = True


@dataclasses.dataclass(frozen=True)
class LinearProbeThenFineTune(Probe):
    """Two stages of one run: the probe, then fine-tuning every layer."""

    def stages(
        self, solver: Solver, solver_config: SolverConfig, n: int, cuts: list[str] | None
    ) -> list[Stage]:
        """The probe trains the first half of the run's steps (whole segments, at least one)
        at --learning_rate, the fine-tuning the rest at the run's rate."""
        probe_steps = max(1, solver.total_steps // 2 // solver.eval_every) * solver.eval_every
        tune_steps = max(solver.eval_every, solver.total_steps - probe_steps)
        return [
            Stage(
                "probe",
                "head",
                dataclasses.replace(
                    solver, total_steps=probe_steps, learning_rate=solver_config.learning_rate
                ),
            ),
            Stage(
                "fine_tune",
                "every layer",
                dataclasses.replace(solver, total_steps=tune_steps),
                _every_layer_trains,
            ),
        ]


TREATMENTS = (
    LinearProbeThenFineTune(
        "lp_ft",
        "AnB-LP-FT",
        "LP-FT",
        10,
        Style("tab:pink", "tab:pink", ":"),
        fine_tuned=True,
        tunes_every_copied_block=True,
    ),
)
