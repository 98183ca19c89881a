"""The linear probe at the cut (AnB-probe): blocks 1..n copied and frozen, one new dense
layer on their flattened output and nothing above it: the readout every transferability
estimator scores."""

import dataclasses

from kerastransfer.treatments.treatment import Recipe, Style


@dataclasses.dataclass(frozen=True)
class Probe(Recipe):
    """A network cut after block n, with the probe's head (surgery.linear_probe)."""

    def network(self, study, n, num_classes, base_record):
        from kerastransfer import surgery  # noqa: PLC0415  (Keras only where a network is built)

        source = study.copied_from(base_record)
        return surgery.linear_probe(source, n, num_classes, cut_names=study.cut_names(source))

    def reload(self, model, n, cuts):
        from kerastransfer import surgery  # noqa: PLC0415

        return surgery.linear_probe(model, n, cut_names=cuts)


TREATMENTS = (Probe("probe", "AnB-probe", "linear probe", 7, Style("tab:brown", "tab:brown", ":")),)
