"""The CKA heatmaps: figures/cka_<split>.png and cka.json from the numbers the analyze driver
computed (analysis.similarity.cka_heatmap, on the trained networks' activations).

Beyond the paper: for each transferred network, the linear CKA between each of its weight
layers and the same layer of the base it was built from, on a fixed probe batch of the target
half's validation images. Frozen layers sit at 1.0; fine-tuning shows how far it moved them.
"""

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from kerastransfer.reporting import plots
from kerastransfer.workdir import files


def write_cka(workdir: str, heatmaps: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """A heatmap per split of `heatmaps` ({split: cka_heatmap's dict: its "rows", "layers"
    and "matrix"}) and cka.json; returns the figure paths."""
    paths = []
    for split, heatmap in heatmaps.items():
        paths.append(
            plots.plot_cka(
                np.array(heatmap["matrix"], dtype=float),
                heatmap["rows"],
                heatmap["layers"],
                os.path.join(workdir, "figures", f"cka_{split}.png"),
                title=f"Linear CKA with the source base, per layer ({split})",
            )
        )
    if heatmaps:
        files.write_json(os.path.join(workdir, "cka.json"), heatmaps)
    return paths
