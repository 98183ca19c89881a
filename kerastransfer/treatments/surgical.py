"""Surgical fine-tuning of block n (AnB-surgical; Lee et al., ICLR 2023): every block copied
from the source, only block n and a new head trained."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from kerastransfer.treatments.treatment import Networks, Recipe, Record, Style

if TYPE_CHECKING:
    import keras


@dataclasses.dataclass(frozen=True)
class Surgical(Recipe):
    """Every block copied, all frozen but block n (surgery.surgical)."""

    def network(
        self, study: Networks, n: int, num_classes: int, base_record: Record | None
    ) -> keras.Model:
        from kerastransfer import surgery  # noqa: PLC0415  (Keras only where a network is built)

        source = study.copied_from(base_record)
        return surgery.surgical(source, n, num_classes, cut_names=study.cut_names(source))


TREATMENTS = (
    Surgical(
        "surgical",
        "AnB-surgical",
        "surgical",
        8,
        Style("tab:olive", "tab:olive", "-."),
        fine_tuned=True,
    ),
)
