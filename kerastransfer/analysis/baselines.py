"""Matched baselines: each run against the base network of its own split and target half.

Comparing a run with its own base removes the half-to-half variance that the paper's pooled
comparisons carry; the matched tables, the relative drop (Figure 3) and the findings use it.
The base a run is compared with is also its unit of replication (kerastransfer.analysis.intervals):
every run matched to one base shares that base's seed-to-seed error.
"""

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from kerastransfer.analysis.records import (
    PAPER_FULL_BASE_TOP1,
    PAPER_FULL_SPLIT,
    best_k,
    is_base,
    ok_records,
)
from kerastransfer.workdir.records import AnyRecord, RunRecord

# A base network, the unit of replication: (split, target half, seed), the seed None for
# records without one (the paper's); where a run's baseline is not one seed's base, the seed
# part names it instead (MEAN_OF_SEEDS, PAPER_CONSTANT).
Unit = tuple[str, str, int | str | None]

# The seed part of a unit whose baseline is not one seed's base.
MEAN_OF_SEEDS, PAPER_CONSTANT = "mean of its bases", "the paper's 1000-class network"


class Matched(NamedTuple):
    """A run and its accuracy minus its baseline, in points; `unit` names the baseline
    (unit_of)."""

    record: RunRecord
    points: float
    unit: Unit


def unit_of(record: RunRecord) -> Unit:
    """The base network a run belongs to: (split, target half, seed); seed None in the paper."""
    return (record.split, record.target, record.seed)


def unit_label(unit: Unit) -> str:
    """ "random0 B seed 0", "random0 A" (no seed recorded), "full" (a split of one half) or
    "random0 B, mean of its bases"."""
    split, target, seed = unit
    half = split if target == split else f"{split} {target}"
    if seed is None:
        return half
    return f"{half} seed {seed}" if isinstance(seed, int) else f"{half}, {seed}"


class Baselines:
    """Finds the base accuracy each run is compared with: its own split and target half.

    The base of the same seed (runs without a seed, as in the paper, take the half's base
    without one), else the mean over the half's bases; for the paper's 1000-class split
    without its base row, PAPER_FULL_BASE_TOP1.
    """

    def __init__(self, records: Sequence[AnyRecord]) -> None:
        by_seed: dict[Unit, list[float]] = {}
        by_half: dict[tuple[str, str], list[float]] = {}
        for r in ok_records(records):
            if is_base(r):
                by_half.setdefault((r.split, r.target), []).append(best_k(r))
                by_seed.setdefault(unit_of(r), []).append(best_k(r))
        self._by_seed = {unit: float(np.mean(v)) for unit, v in by_seed.items()}
        self._by_half = {half: float(np.mean(v)) for half, v in by_half.items()}

    def lookup(self, record: RunRecord) -> tuple[float, str, Unit] | tuple[None, None, None]:
        """(baseline accuracy, how it was found, unit) for `record`, or (None, None, None)."""
        unit = unit_of(record)
        half = (record.split, record.target)
        if unit in self._by_seed:
            how = "same seed" if record.seed is not None else "the half's base (no seeds)"
            return self._by_seed[unit], how, unit
        if half in self._by_half:
            return self._by_half[half], "mean over the half's bases", half + (MEAN_OF_SEEDS,)
        if record.split == PAPER_FULL_SPLIT:
            return PAPER_FULL_BASE_TOP1, "paper constant (docs/paper.md)", half + (PAPER_CONSTANT,)
        return None, None, None


def matched_points(
    records: Sequence[AnyRecord], sources: dict[str, int] | None = None
) -> tuple[list[Matched], list[str]]:
    """A Matched (record, accuracy - its own baseline in points, unit) for every ok non-base
    run with a baseline, and the names of the runs that have none. `sources`, a dict if given,
    counts how the baselines were found (Baselines.lookup)."""
    baselines = Baselines(records)
    matched: list[Matched] = []
    unmatched: list[str] = []
    for r in ok_records(records):
        if is_base(r):
            continue
        found = baselines.lookup(r)
        if found[0] is None:
            unmatched.append(r.run)
            continue
        base, source, unit = found
        matched.append(Matched(r, 100.0 * (best_k(r) - base), unit))
        if sources is not None:
            sources[source] = sources.get(source, 0) + 1
    return matched, unmatched
