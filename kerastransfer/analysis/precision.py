"""Whether a precision is harmless: the same study trained in a candidate precision and in
float32, compared network by network by an equivalence test (docs/statistics.md, "Precision").

One network's seed-to-seed spread is several points, so no single network (nor a treatment's
mean) can show that a precision moves nothing; the mean of the paired differences over a whole
study can. Two one-sided t-tests at ALPHA each (TOST) accept parity when the (1 - 2 ALPHA) CI
of the mean paired difference lies within +-OVERALL_POINTS over all networks and within
+-TREATMENT_POINTS in every treatment, and no finding changes status.
"""

import math

from kerastransfer.analysis import findings
from kerastransfer.analysis.stats import summarize, t_interval
from kerastransfer.workdir.results import normalize_records

ALPHA = 0.05  # each one-sided test; together they read a 90% CI
OVERALL_POINTS = 0.5
TREATMENT_POINTS = 1.0


def newest(records):
    """{run id: its newest record}, each checked (normalize_records)."""
    latest = {}
    for record in normalize_records(records):
        latest.pop(record["run"], None)
        latest[record["run"]] = record
    return latest


def test_accuracies(latest):
    """{run id: test accuracy} of the runs that ended ok with one."""
    return {
        run: r["test_accuracy"]
        for run, r in latest.items()
        if r["status"] == "ok" and r["test_accuracy"] is not None
    }


def tost_interval(values, bound):
    """Mean of `values` (points), its two-sided (1 - 2 ALPHA) t-interval and whether that lies
    strictly within +-bound; no interval (and no pass) from fewer than two values or from
    values that all agree (stats.summarize says why)."""
    summary = summarize(values)
    result = {"networks": summary["count"], "mean": summary["mean"], "ci": None, "bound": bound}
    if summary["ci"] is None:
        return {**result, "within": False, "why": summary["why"]}
    low, high = t_interval(
        summary["mean"],
        summary["sd"] / math.sqrt(summary["count"]),
        summary["count"] - 1,
        confidence=1.0 - 2.0 * ALPHA,
    )
    within = -bound < low and high < bound
    why = None if within else f"{1 - 2 * ALPHA:.0%} CI [{low:+.2f}, {high:+.2f}] leaves +-{bound:g}"
    return {**result, "ci": [low, high], "within": within, "why": why}


def finding_statuses(records):
    """{finding number: status} of findings.check on `records`."""
    return {f["finding"]: f["status"] for f in findings.check(records)}


def precision_test(candidate, float32):
    """The equivalence test of a study's `candidate` records against the same study's
    `float32` records (results.jsonl dicts; the newest record of each run counts).

    Networks pair by run id; a network ok in one study and not the other fails the test (a
    precision that loses a network is not harmless). Differences are candidate minus float32
    test accuracy, in points. Returns the overall and per-treatment intervals, the largest
    paired difference, the findings whose status changed, `passed` and `why` (each failure).
    """
    ours, theirs = newest(candidate), newest(float32)
    our_accuracy, their_accuracy = test_accuracies(ours), test_accuracies(theirs)
    paired = [run for run in their_accuracy if run in our_accuracy]
    unpaired = sorted(set(our_accuracy) ^ set(their_accuracy))
    points = {run: 100.0 * (our_accuracy[run] - their_accuracy[run]) for run in paired}
    by_treatment = {}
    for run in paired:
        by_treatment.setdefault(theirs[run]["treatment"], []).append(points[run])
    overall = tost_interval(list(points.values()), OVERALL_POINTS)
    treatments = {name: tost_interval(v, TREATMENT_POINTS) for name, v in by_treatment.items()}
    before, after = finding_statuses(list(theirs.values())), finding_statuses(list(ours.values()))
    changed = {
        number: {"float32": status, "candidate": after[number]}
        for number, status in before.items()
        if after[number] != status
    }
    why = []
    if unpaired:
        why.append(f"ok in one study only: {', '.join(unpaired)}")
    if not overall["within"]:
        why.append(f"all networks: {overall['why']}")
    why += [f"{name}: {t['why']}" for name, t in treatments.items() if not t["within"]]
    why += [f"finding {number} {c['float32']} -> {c['candidate']}" for number, c in changed.items()]
    largest = max(points, key=lambda run: abs(points[run]), default=None)
    return {
        "alpha": ALPHA,
        "confidence": 1.0 - 2.0 * ALPHA,
        "overall": overall,
        "treatments": treatments,
        "largest": None if largest is None else {"run": largest, "points": points[largest]},
        "unpaired": unpaired,
        "findings": {"float32": before, "candidate": after},
        "findings_changed": changed,
        "passed": not why,
        "why": why,
    }
