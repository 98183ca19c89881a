"""Gradual unfreezing (AnB+gradual; Howard and Ruder, "Universal Language Model Fine-tuning
for Text Classification", ACL 2018): the copied blocks 1..n start frozen and the new layers
above them train first; then the copied blocks are unfrozen top-down, one more block per
stage (block n, then n-1, ... down to block 1), until every layer trains.

The stages share the steps AnB+ trains (whole evaluation segments, as even as they split;
later stages take the remainder), each from the stage before's weights with a fresh
optimizer at the fine-tuning rate (--learning_rate times --fine_tune_lr_scale) and its own
step schedule. A run shorter than n + 1 segments unfreezes several blocks per stage (one of a
single segment trains the new layers only). The record's `stages` names each stage, what it
trains, its steps and its rate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from kerastransfer.treatments.treatment import Recipe, Stage, Style

if TYPE_CHECKING:
    import keras

    from kerastransfer.config import SolverConfig
    from kerastransfer.training.solver import Solver


def _split(total: int, parts: int) -> list[int]:
    """`total` split into `parts` whole numbers as even as they come, the larger ones last."""
    return [total // parts + (1 if i >= parts - total % parts else 0) for i in range(parts)]


@dataclasses.dataclass(frozen=True)
class GradualUnfreezing(Recipe):
    """AnB with its copied blocks unfrozen top-down, one stage at a time."""

    def stages(
        self, solver: Solver, solver_config: SolverConfig, n: int, cuts: list[str] | None
    ) -> list[Stage]:
        segments = solver.total_steps // solver.eval_every
        count = min(n + 1, segments)
        steps = [s * solver.eval_every for s in _split(segments, count)]
        stages = [Stage("head", f"the new layers above block {n}", _for(solver, steps[0]))]
        lowest = n + 1
        for index, blocks in enumerate(_split(n, count - 1) if count > 1 else [], start=1):
            lowest -= blocks
            stages.append(
                Stage(
                    f"from_block{lowest}",
                    f"block {n} and above" if lowest == n else f"blocks {lowest}..{n} and above",
                    _for(solver, steps[index]),
                    _unfreezer(lowest, cuts),
                )
            )
        return stages


def _for(solver: Solver, steps: int) -> Solver:
    return dataclasses.replace(solver, total_steps=steps)


def _unfreezer(lowest: int, cuts: list[str] | None) -> Callable[[keras.Model], None]:
    """Sets every layer of block `lowest` and above trainable."""

    def unfreeze(model: keras.Model) -> None:
        from kerastransfer import surgery  # noqa: PLC0415  (Keras only where a network is built)

        for name, block in surgery.block_numbers(model, cuts).items():
            if block >= lowest:
                model.get_layer(name).trainable = True

    return unfreeze


TREATMENTS = (
    GradualUnfreezing(
        "gradual_unfreezing",
        "AnB+gradual",
        "gradual unfreezing",
        11,
        Style("tab:purple", "tab:purple", "-."),
        fine_tuned=True,
        tunes_every_copied_block=True,
    ),
)
