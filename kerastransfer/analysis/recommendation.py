"""Transfer your own model: which n and mode to recommend, with margins and intervals.

The own-model study (kerastransfer.study.own_model) trains, on one target split, the user's
model transferred frozen (AnB) and fine-tuned (AnB+) at each n, and the same architecture from
scratch as the baseline; `recommend` picks the n and mode from those runs' records.
"""

from kerastransfer import treatments
from kerastransfer.analysis.stats import difference, summarize

# The own-model study's one split: the whole target dataset.
TARGET = "target"
# Its transfer modes: the user's model plays half A, the target dataset half B.
MODES = treatments.FROM_OTHER_HALF


def recommend(records):
    """Which n and mode to use, from validation accuracy (best-k), never from test.

    Returns a dict with one entry per (mode, n): mean validation and test accuracy and the
    gain over the from-scratch baseline with its 95% CI (Welch; needs 2+ seeds per cell),
    and `choice`: the best cell, its gain over the baseline and its margin over the
    runner-up (the best cell of the other mode), each with CI.
    """
    ok = [r for r in records if r["status"] == "ok" and r["split"] == TARGET]
    baseline = [r["best_k"] for r in ok if r["treatment"] == "base"]
    cells = []
    for mode in MODES:
        for n in sorted({r["n"] for r in ok if r["treatment"] == mode}):
            runs = [r for r in ok if r["treatment"] == mode and r["n"] == n]
            val = [r["best_k"] for r in runs]
            cells.append({
                "treatment": mode,
                "mode": "fine-tuned" if treatments.get(mode).fine_tuned else "frozen",
                "n": n, "val": summarize(val),
                "test": summarize([r["test_accuracy"] for r in runs]),
                "gain_over_scratch": difference(val, baseline), "_val": val})
    if not cells or not baseline:
        return {"baseline": summarize(baseline), "cells": cells, "choice": None}
    best = max(cells, key=lambda c: c["val"]["mean"])
    others = [c for c in cells if c["treatment"] != best["treatment"]]
    runner_up = max(others, key=lambda c: c["val"]["mean"]) if others else None
    choice = {
        "treatment": best["treatment"], "mode": best["mode"], "n": best["n"],
        "val": best["val"]["mean"], "test": best["test"]["mean"],
        "gain_over_scratch": best["gain_over_scratch"],
        "runner_up": ({"mode": runner_up["mode"], "n": runner_up["n"],
                       "margin": difference(best["_val"], runner_up["_val"])}
                      if runner_up else None),
    }
    for cell in cells:
        del cell["_val"]
    return {"baseline": summarize(baseline), "cells": cells, "choice": choice}
