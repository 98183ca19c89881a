"""Transfer your own model: which n and mode to recommend, with margins and intervals.

The own-model study (kerastransfer.study.own_model) trains, on one target split, the user's
model transferred frozen (AnB) and fine-tuned (AnB+) at each n, and the same architecture from
scratch as the baseline; `recommend` picks the n and mode from those runs' records.

It selects on the networks it delivers: a run's final weights are the ones saved and exported,
so cells are ranked by the validation accuracy of those weights (`final_val`), not by the
paper's best-k mean of the best evaluations, which no saved network has. The chosen cell's gain
is reported on validation, which is optimistic (the choice was made on it), and on test (the
same weights; test never chooses). A cell's seeds are separate networks; the seed-to-seed sd is
pooled over every cell and the baseline (one spread assumed for all), so that two seeds per cell
give intervals on many degrees of freedom. One seed per cell gives none.
"""

from collections.abc import Iterable
from typing import Any, TypedDict

from kerastransfer import treatments
from kerastransfer.analysis.records import is_base, ok_records
from kerastransfer.analysis.stats import (
    Bounds,
    PooledDifference,
    pooled_difference,
    pooled_sd,
    summarize,
)
from kerastransfer.workdir.records import AnyRecord, RunRecord

# The own-model study's one split: the whole target dataset.
TARGET = "target"
# Its transfer modes and recipes: the user's model plays half A, the target dataset half B.
MODES = treatments.TRANSFER_MODES
# What is compared: the delivered (final) weights on validation, which chooses, and on test.
METRICS = {"validation": "final_val", "test": "test_accuracy"}
ACCURACY_BOUNDS: Bounds = (0.0, 1.0)


class Spread(TypedDict):
    """The seed-to-seed sd of a metric pooled over every cell and the baseline, and its
    degrees of freedom (stats.pooled_sd)."""

    sd: float | None
    df: int


def _values(runs: Iterable[RunRecord], metric: str) -> list[float]:
    return [getattr(r, metric) for r in runs if getattr(r, metric) is not None]


def _examples(ok: Iterable[RunRecord], field: str) -> list[int]:
    """The sorted distinct image counts of `field` (val_examples, test_examples) the records
    carry; [] when none does (older records)."""
    return sorted({getattr(r, field) for r in ok if getattr(r, field) is not None})


def _mean_seconds(runs: Iterable[RunRecord]) -> float | None:
    """The mean training seconds of `runs`, None when none records it."""
    seconds = [r.train_seconds for r in runs if r.train_seconds is not None]
    return sum(seconds) / len(seconds) if seconds else None


def _cost(ok: Iterable[RunRecord]) -> dict[str, float]:
    """{mode: training seconds of its runs}, for the modes the study trained."""
    cost: dict[str, float] = {}
    for r in ok:
        if r.treatment in MODES and r.train_seconds is not None:
            cost[r.treatment] = cost.get(r.treatment, 0.0) + r.train_seconds
    return cost


def recommend(records: Iterable[AnyRecord]) -> dict[str, Any]:
    """Which n and mode to use, from the validation accuracy of the delivered weights.

    Returns a dict: `baseline` (from scratch) and one entry per (mode, n) in `cells`, each with
    its seeds' validation, test and best-k summaries and its gain over scratch on validation
    and test (differences of accuracies, 95% CI from the pooled seed sd); `spread`, the pooled
    sd per metric and its degrees of freedom; `examples`, the validation and test set sizes
    the records carry; `cost`, the training seconds of each mode's runs; and `choice`: the best
    cell, its gains, its margin over the best cell of another mode (`runner_up`) and over the
    best plain fine-tuning cell (`over_fine_tuning`, None when that is the choice or was not
    trained), each on validation and test. Each cell has its mean training `seconds`.
    """
    ok = [r for r in ok_records(records) if r.split == TARGET]
    baseline = [r for r in ok if is_base(r)]
    groups = [
        (mode, n, [r for r in ok if r.treatment == mode and r.n == n])
        for mode in MODES
        for n in sorted({r.n for r in ok if r.treatment == mode})
    ]
    spread: dict[str, Spread] = {}
    for name, metric in METRICS.items():
        sd, df = pooled_sd([_values(runs, metric) for runs in [baseline] + [g[2] for g in groups]])
        spread[name] = {"sd": sd, "df": df}

    def gain(
        runs: Iterable[RunRecord], reference: Iterable[RunRecord], name: str
    ) -> PooledDifference:
        return pooled_difference(
            _values(runs, METRICS[name]),
            _values(reference, METRICS[name]),
            spread[name]["sd"],
            spread[name]["df"],
        )

    cells: list[dict[str, Any]] = []
    for mode, n, runs in groups:
        cells.append(
            {
                "treatment": mode,
                "mode": treatments.get(mode).recipe,
                "n": n,
                "cut": next((r.cut for r in runs if r.cut), None),
                "layer_decay": next((r.layer_decay for r in runs if r.layer_decay), None),
                "seeds": len(runs),
                **{
                    name: summarize(_values(runs, metric), bounds=ACCURACY_BOUNDS)
                    for name, metric in METRICS.items()
                },
                "best_k": summarize(_values(runs, "best_k"), bounds=ACCURACY_BOUNDS),
                "seconds": _mean_seconds(runs),
                "gain_over_scratch": gain(runs, baseline, "validation"),
                "test_gain_over_scratch": gain(runs, baseline, "test"),
                "_runs": runs,
            }
        )
    result: dict[str, Any] = {
        "baseline": {
            name: summarize(_values(baseline, metric), bounds=ACCURACY_BOUNDS)
            for name, metric in METRICS.items()
        },
        "cells": cells,
        "spread": spread,
        "examples": {
            "validation": _examples(ok, "val_examples"),
            "test": _examples(ok, "test_examples"),
        },
        "cost": _cost(ok),
        "choice": None,
    }
    ranked = [c for c in cells if c["validation"]["mean"] is not None]
    if ranked and baseline:
        best = max(ranked, key=lambda c: c["validation"]["mean"])
        others = [c for c in ranked if c["treatment"] != best["treatment"]]
        runner_up = max(others, key=lambda c: c["validation"]["mean"]) if others else None
        fine_tuned = [c for c in ranked if treatments.get(c["treatment"]).plain_fine_tuning]
        plain = max(fine_tuned, key=lambda c: c["validation"]["mean"]) if fine_tuned else None
        result["choice"] = {
            "treatment": best["treatment"],
            "mode": best["mode"],
            "n": best["n"],
            "cut": best["cut"],
            "layer_decay": best["layer_decay"],
            "validation": best["validation"]["mean"],
            "test": best["test"]["mean"],
            "gain_over_scratch": best["gain_over_scratch"],
            "test_gain_over_scratch": best["test_gain_over_scratch"],
            "runner_up": None
            if runner_up is None
            else {
                "mode": runner_up["mode"],
                "n": runner_up["n"],
                "cut": runner_up["cut"],
                "margin": gain(best["_runs"], runner_up["_runs"], "validation"),
                "test_margin": gain(best["_runs"], runner_up["_runs"], "test"),
            },
            "over_fine_tuning": None
            if plain is None or plain is best
            else {
                "n": plain["n"],
                "cut": plain["cut"],
                "margin": gain(best["_runs"], plain["_runs"], "validation"),
                "test_margin": gain(best["_runs"], plain["_runs"], "test"),
            },
        }
    for cell in cells:
        del cell["_runs"]
    return result
