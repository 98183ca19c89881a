"""Surgical fine-tuning of block n (AnB-surgical; Lee et al., ICLR 2023): every block copied
from the source, only block n and a new head trained."""

import dataclasses

from kerastransfer.treatments.treatment import Recipe, Style


@dataclasses.dataclass(frozen=True)
class Surgical(Recipe):
    """Every block copied, all frozen but block n (surgery.surgical)."""

    def network(self, study, n, num_classes, base_record):
        from kerastransfer import surgery  # noqa: PLC0415  (Keras only where a network is built)

        return surgery.surgical(
            study.copied_from(base_record), n, num_classes, cut_names=study.cuts
        )


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
