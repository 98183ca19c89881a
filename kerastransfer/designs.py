"""Study designs: which cells (treatment, n) each base network of a study trains.

A study's unit of replication is a base network: split x target half x seed
(docs/statistics.md). `--design=grid` trains every treatment of --treatments at every n of
--layers for every unit, as the paper did. `--design=findings` trains for every unit only the
cells that the five findings read (analysis/findings.py), each of their layer ranges at one
n, and the whole grid for the figure units (figure_units: two base networks of the first
split), whose lines Figures 2 and 3 draw at every n: a line joins points that rest on the
same base networks (analysis/figure_lines.py), and one base network's line carries one
network's noise. A unit of a random split then costs six networks instead of 36, so more
units (both directions, more seeds) fit in the same time, and each finding's interval rests
on them.

This module imports no TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from kerastransfer import treatments

if TYPE_CHECKING:
    from kerastransfer.config import GridConfig

# Layers the findings look at: where BnB dips (finding 1) and where AnB leaves BnB (finding 2).
MIDDLE_LAYERS = range(3, 6)
HIGH_LAYERS = range(6, 8)


def split_group(split: str) -> str:
    """The split's group: "random" for random0, random1, ...; any other split is its own."""
    return "random" if split.startswith("random") else split


def findings_cells(layers: Iterable[int]) -> dict[str, set[tuple[str, int]]]:
    """{"random" or "distant": {(treatment, n), ...}}: the cells the findings read, taken at
    one n of `layers` per range.

    Random splits: BnB and BnB+ at the middle n (finding 1, the dip and its repair), AnB+ at
    the middle n (finding 3, the boost), BnB and AnB at the high n (finding 2, specificity;
    AnB there is also finding 4's random side), and the compute-matched base (n = 0), which
    findings 1 and 3 are measured against as well as the plain base. Any other split (the
    dissimilar one): AnB at the deepest n (finding 4) and random features with AnB at the
    middle n (finding 5). The middle n is the centre of 3..5 in `layers` (else of `layers`),
    the high n the deepest of 6..7 (else the deepest n).
    """
    layers = sorted(layers)
    middle_range = [n for n in layers if n in MIDDLE_LAYERS] or layers
    middle = middle_range[len(middle_range) // 2]
    deepest = layers[-1]
    high = max((n for n in layers if n in HIGH_LAYERS), default=deepest)
    return {
        "random": {
            ("selffer", middle),
            ("selffer", high),
            ("selffer_ft", middle),
            ("transfer", high),
            ("transfer_ft", middle),
            (treatments.LONG_BASE, 0),
        },
        "distant": {("transfer", middle), ("transfer", deepest), ("random", middle)},
    }


# Base networks that train the whole grid under --design=findings.
FIGURE_UNITS = 2


def figure_units(
    split_name: str, targets: Sequence[str], seeds: Sequence[int]
) -> list[tuple[str, str, int]]:
    """The units (split, target half, seed) that train every cell under --design=findings:
    the first FIGURE_UNITS of the first split's units, both target halves of its first seed
    before its second seed (the paper pools both directions), so that every line of the
    figures rests on more than one base network when the study has more than one unit."""
    units = [(split_name, target, seed) for seed in seeds for target in targets]
    return units[:FIGURE_UNITS]


def cell_filter(
    grid: GridConfig, split_names: Sequence[str], targets: Sequence[str]
) -> Callable[[str, str, int, str, int], bool]:
    """A function (split, target, seed, treatment, n) -> bool: whether the design trains that
    cell. `targets` are the halves the study's networks target, in order; the grid design
    trains every cell."""
    if grid.design == "grid":
        return lambda split, target, seed, treatment, n: True
    cells = findings_cells(grid.layers)
    whole_grid = figure_units(split_names[0], targets, grid.seeds)

    def wanted(split: str, target: str, seed: int, treatment: str, n: int) -> bool:
        if (split, target, seed) in whole_grid:
            return True
        kind = "random" if split_group(split) == "random" else "distant"
        return (treatment, n) in cells[kind]

    return wanted
