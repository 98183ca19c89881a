"""The linear probe at the cut (AnB-probe): blocks 1..n copied and frozen, one new dense
layer on their flattened output and nothing above it: the readout every transferability
estimator scores."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from kerastransfer.treatments.treatment import Networks, Recipe, Record, Style

if TYPE_CHECKING:
    import keras


@dataclasses.dataclass(frozen=True)
class Probe(Recipe):
    """A network cut after block n, with the probe's head (surgery.linear_probe)."""

    def network(
        self, study: Networks, n: int, num_classes: int, base_record: Record | None
    ) -> keras.Model:
        from kerastransfer import surgery  # noqa: PLC0415  (Keras only where a network is built)

        source = study.copied_from(base_record)
        return surgery.linear_probe(source, n, num_classes, cut_names=study.cut_names(source))

    def reload(self, model: keras.Model, n: int, cuts: list[str] | None) -> keras.Model:
        from kerastransfer import surgery  # noqa: PLC0415

        return surgery.linear_probe(model, n, cut_names=cuts)


TREATMENTS = (Probe("probe", "AnB-probe", "linear probe", 7, Style("tab:brown", "tab:brown", ":")),)
