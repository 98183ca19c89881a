"""Layer-wise learning-rate decay (AnB+decay): as AnB+, with copied block i trained at
--layer_decay^(n + 1 - i) times the fine-tuning rate (the top copied block at --layer_decay,
the fresh layers above n at the full rate)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from kerastransfer.treatments.treatment import Recipe, Style

if TYPE_CHECKING:
    import keras

    from kerastransfer.config import SolverConfig


@dataclasses.dataclass(frozen=True)
class LayerDecay(Recipe):
    """AnB+ with a rate per copied block; the record carries the decay."""

    def layer_rates(
        self, model: keras.Model, n: int, solver_config: SolverConfig, cuts: list[str] | None
    ) -> dict[str, float]:
        from kerastransfer import surgery  # noqa: PLC0415  (Keras only where a network is built)

        return surgery.layer_decay_rates(model, n, solver_config.layer_decay, cuts)

    def record_fields(self, solver_config: SolverConfig) -> dict[str, float]:
        return {"layer_decay": solver_config.layer_decay}


TREATMENTS = (
    LayerDecay(
        "layer_decay",
        "AnB+decay",
        "layer-wise decay",
        9,
        Style("tab:cyan", "tab:cyan", "--"),
        fine_tuned=True,
        tunes_every_copied_block=True,
        surgery_mode="fine_tuned",
    ),
)
