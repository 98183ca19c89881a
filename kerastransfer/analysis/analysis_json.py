"""The whole analysis of a transfer study as one JSON-ready dict, the body of analysis.json.

Input is a list of run records (dicts), one per trained network, in the schema of
kerastransfer.workdir.results (a reproduction's results.jsonl, or the paper's networks from
`records.load_paper_csv`).
"""

import math
from collections.abc import Sequence
from typing import Any, TypedDict

import numpy as np

from kerastransfer.analysis import findings, sizing
from kerastransfer.analysis.agreement import agreement as estimator_agreement
from kerastransfer.analysis.baselines import matched_points, unit_label
from kerastransfer.analysis.figure_lines import figure_lines
from kerastransfer.analysis.records import (
    group_order,
    metric_description,
    ok_records,
    paper_label,
)
from kerastransfer.analysis.stats import CONFIDENCE
from kerastransfer.analysis.tables import cell_table, matched_table, relative_drop, table1
from kerastransfer.designs import split_group
from kerastransfer.workdir.records import STATUSES, AnyRecord, RunRecord
from kerastransfer.workdir.results import normalize_records
from kerastransfer.workdir.scores import Scores


class TimingRow(TypedDict):
    """Training time and throughput of one treatment label's ok runs."""

    label: str
    runs: int
    total_seconds: float | None
    mean_seconds: float | None
    mean_images_per_second: float | None


class Timing(TypedDict):
    """timing's answer: a row per treatment label, and the study's total training time."""

    by_treatment: list[TimingRow]
    total_seconds: float | None


def timing(records: Sequence[AnyRecord]) -> Timing:
    """Training time and throughput per treatment label, from ok runs that report them."""
    groups: dict[str, list[RunRecord]] = {}
    for r in ok_records(records):
        label = paper_label(r.treatment, {r.target})
        groups.setdefault(label, []).append(r)
    rows: list[TimingRow] = []
    for label, members in groups.items():
        seconds = [r.train_seconds for r in members if r.train_seconds is not None]
        speeds = [r.images_per_second for r in members if r.images_per_second is not None]
        if not seconds and not speeds:
            continue
        rows.append(
            {
                "label": label,
                "runs": len(members),
                "total_seconds": math.fsum(seconds) if seconds else None,
                "mean_seconds": float(np.mean(seconds)) if seconds else None,
                "mean_images_per_second": float(np.mean(speeds)) if speeds else None,
            }
        )
    total = [r.train_seconds for r in ok_records(records) if r.train_seconds is not None]
    return {"by_treatment": rows, "total_seconds": math.fsum(total) if total else None}


# What a transfer study's analysis writes beside analysis.json (reporting draws them).
FIGURES = (
    "figures/transfer.png",
    "figures/transfer.pdf",
    "figures/dissimilar.png",
    "figures/dissimilar.pdf",
)
ESTIMATOR_FIGURES = ("figures/estimators.png", "figures/estimators.pdf")
REPORT = "report.md"


def analyze(
    records: Sequence[AnyRecord],
    *,
    config: dict[str, Any] | None = None,
    reference_records: Sequence[AnyRecord] | None = None,
    source_label: str = "records",
    scores: Scores | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """The whole analysis of `records` (run dicts, see module doc): analysis.json's dict,
    built here once and never changed after (reporting only renders it).

    `reference_records` (e.g. load_paper_csv()) adds their Table 1, cells and findings under
    "reference" for side-by-side comparison; `config` is carried into the report as given, and
    its stored `command` is what "power" (sizing.size_findings: what would decide each finding,
    added to each finding as "power") grows the study with. `scores` (the workdir's
    scores.json) adds the estimators against the measured grid ("estimators"); `command` is
    the command that made the results. "figures" and "report" name the files reporting
    writes beside analysis.json.
    """
    records = normalize_records(records)
    ok = ok_records(records)
    splits: dict[str, int] = {}
    for r in ok:
        splits[r.split] = splits.get(r.split, 0) + 1
    convergence = findings.base_convergence(records)
    checked = findings.check(records, convergence)
    sized = sizing.size_findings(checked, records, config)
    analysis: dict[str, Any] = {
        "source": source_label,
        "config": config,
        "metric": {
            "key": "best_k",
            "name": "Top-1 accuracy",
            "description": metric_description(records),
        },
        "confidence": CONFIDENCE,
        "negligible_points": findings.NEGLIGIBLE_POINTS,
        "counts": {status: sum(r.status == status for r in records) for status in STATUSES},
        "splits": [
            {"split": s, "group": split_group(s), "ok_runs": splits[s]}
            for s in sorted(splits, key=lambda s: (group_order(split_group(s)), s))
        ],
        "cells": cell_table(records),
        "cells_by_target": cell_table(records, by_target=True),
        "table1": table1(records),
        "matched": matched_table(records),
        "relative_drop": relative_drop(records),
        "figure_lines": figure_lines(records),
        "base_networks": sorted({unit_label(m.unit) for m in matched_points(records)[0]}),
        "findings": checked,
        "base_convergence": convergence,
        "multiple_testing": findings.multiple_testing(checked),
        "power": sized,
        "timing": timing(records),
        "not_ok": [
            {
                "run": r.run,
                "status": r.status,
                "reason": r.reason,
                "treatment": r.treatment,
                "split": r.split,
                "n": r.n,
            }
            for r in records
            if r.status != "ok"
        ],
        "reference": None,
    }
    if reference_records is not None:
        reference_records = normalize_records(reference_records, "reference record")
        analysis["reference"] = {
            "source": "Yosinski et al. 2014 (shipped yosinski2014_networks.csv)",
            "table1": table1(reference_records),
            "cells": cell_table(reference_records),
            "cells_by_target": cell_table(reference_records, by_target=True),
            "relative_drop": relative_drop(reference_records),
            "figure_lines": figure_lines(reference_records),
            "findings": [
                {k: f[k] for k in ("finding", "status", "effect", "ci")}
                for f in findings.check(reference_records)
            ],
        }
    analysis = json_safe(analysis)
    if scores is not None:
        analysis["estimators"] = estimator_agreement(scores, records)
    analysis["command"] = command
    drawn_estimators = analysis.get("estimators") and analysis["estimators"]["groups"]
    analysis["figures"] = [*FIGURES, *(ESTIMATOR_FIGURES if drawn_estimators else ())]
    analysis["report"] = REPORT
    return analysis


def json_safe(value: object) -> Any:
    """`value` with numpy scalars made Python numbers and NaN/inf made None (JSON has no NaN).

    Any: the same structure as `value` (a tuple made a list), whose shape the caller knows;
    no type says "this type with NaN made None"."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
