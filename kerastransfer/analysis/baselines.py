"""Matched baselines: each run against the base network of its own split and target half.

Comparing a run with its own base removes the half-to-half variance that the paper's pooled
comparisons carry; the matched tables, the relative drop (Figure 3) and the findings use it.
"""

import numpy as np

from kerastransfer.analysis.records import PAPER_FULL_BASE_TOP1, PAPER_FULL_SPLIT, ok_records


class Baselines:
    """Finds the base accuracy each run is compared with: its own split and target half.

    Same seed when that base exists, else the mean over the half's base seeds; for the paper's
    1000-class split without its base row, PAPER_FULL_BASE_TOP1.
    """

    def __init__(self, records):
        self._by_seed, self._by_half = {}, {}
        for r in ok_records(records):
            if r["treatment"] == "base":
                half = (r["split"], r["target"])
                self._by_half.setdefault(half, []).append(r["best_k"])
                self._by_seed.setdefault(half + (r["seed"],), []).append(r["best_k"])

    def lookup(self, record):
        """(baseline accuracy, how it was found) for `record`, or (None, None) if it has none."""
        half = (record["split"], record["target"])
        if record["seed"] is not None and half + (record["seed"],) in self._by_seed:
            return float(np.mean(self._by_seed[half + (record["seed"],)])), "same seed"
        if half in self._by_half:
            return float(np.mean(self._by_half[half])), "mean over the half's bases"
        if record["split"] == PAPER_FULL_SPLIT:
            return PAPER_FULL_BASE_TOP1, "paper constant (docs/paper.md)"
        return None, None


def matched_points(records, sources=None):
    """(record, accuracy - its own baseline in points) for every ok non-base run with a baseline,
    and the names of the runs that have none. `sources`, a dict if given, counts how the
    baselines were found (Baselines.lookup)."""
    baselines = Baselines(records)
    matched, unmatched = [], []
    for r in ok_records(records):
        if r["treatment"] == "base":
            continue
        base, source = baselines.lookup(r)
        if base is None:
            unmatched.append(r["run"])
            continue
        matched.append((r, 100.0 * (r["best_k"] - base)))
        if sources is not None:
            sources[source] = sources.get(source, 0) + 1
    return matched, unmatched
