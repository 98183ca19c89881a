"""Whether a precision is harmless, treatment by treatment: the same study trained in a
candidate precision and in float32, compared run by run (docs/statistics.md, "Precision").

Each network pairs with the same run of the float32 study; its difference is candidate minus
float32 test accuracy, in points. The networks of one base network (the unit: split x target
half x seed, baselines.unit_of) share that base's training, so they are not independent: each
unit's differences are averaged first and every interval is taken over units, as the findings'
are (intervals.py). A treatment is accepted for the candidate precision when

- every network of it ended ok in both studies;
- two one-sided t-tests at ALPHA each (TOST) put the (1 - 2 ALPHA) CI of its mean difference
  over units within +-TREATMENT_POINTS;
- none of its networks collapsed: at chance in one precision and not the other (collapsed());
- no finding that reads it (findings.READS) changed status, except a change that any
  perturbation makes (finding_changes()).

The whole study may train in the candidate (`passed`) when every treatment is accepted and the
CI over all units lies within +-OVERALL_POINTS. Every interval also says what a harmless
precision (true difference 0) needs to pass its bound with power.POWER: the units
(power.tost_units_needed) and the seeds of this study that give them.
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kerastransfer.analysis import findings, power
from kerastransfer.analysis.baselines import Unit, unit_of
from kerastransfer.analysis.stats import summarize, t_interval
from kerastransfer.errors import UsageError
from kerastransfer.workdir.records import AnyRecord, RunRecord
from kerastransfer.workdir.results import normalize_records

ALPHA = 0.05  # each one-sided test; together they read a 90% CI
OVERALL_POINTS = 0.5
TREATMENT_POINTS = 1.0
# A network within CHANCE_POINTS of guessing (1 / classes) learned nothing: on the default
# study's 5,000 test images a guessing network's accuracy has sd 0.57 points, so 2 points is
# 3.5 sd. It collapsed when the same run in the other precision is more than COLLAPSE_POINTS
# better and not at chance: a run that hovers at chance in both (random features deep in a
# hard task) does not count.
CHANCE_POINTS = 2.0
COLLAPSE_POINTS = 5.0
NOUN = "base network"


def newest(records: Iterable[AnyRecord]) -> dict[str, RunRecord]:
    """{run id: its newest record}, each checked (normalize_records)."""
    latest: dict[str, RunRecord] = {}
    for record in normalize_records(records):
        latest.pop(record.run, None)
        latest[record.run] = record
    return latest


def test_accuracies(latest: Mapping[str, RunRecord]) -> dict[str, float]:
    """{run id: test accuracy} of the runs that ended ok with one."""
    return {
        run: r.test_accuracy
        for run, r in latest.items()
        if r.status == "ok" and r.test_accuracy is not None
    }


def tost_interval(
    by_unit: Mapping[Unit, Sequence[float]], bound: float, seeds: int
) -> dict[str, Any]:
    """TOST over units of `by_unit` ({unit: that unit's differences, points}): the mean of the
    unit means, their sd, the two-sided (1 - 2 ALPHA) t-interval and whether it lies strictly
    within +-bound; no interval (and no pass) from fewer than two units or from units that all
    agree (stats.summarize says why).

    `power` is the chance that a harmless precision passes this bound at this many units with
    the sd seen; `units_needed` the units for power.POWER, `seeds_needed` the seeds of a study
    like this one (`seeds` of them, each adding the same units) that give them.
    """
    means = [math.fsum(values) / len(values) for values in by_unit.values()]
    summary = summarize(means, noun=NOUN)
    result: dict[str, Any] = {
        "units": summary["count"],
        "networks": sum(len(values) for values in by_unit.values()),
        "mean": summary["mean"],
        "sd": summary["sd"],
        "ci": None,
        "bound": bound,
        "power": power.tost_power(bound, summary["sd"], summary["count"], ALPHA),
        "units_needed": power.tost_units_needed(bound, summary["sd"], ALPHA),
        "seeds_needed": None,
    }
    if result["units_needed"] and seeds:  # each seed adds units / seeds base networks
        result["seeds_needed"] = -(-result["units_needed"] * seeds // summary["count"])
    mean, sd = summary["mean"], summary["sd"]
    if summary["ci"] is None or mean is None or sd is None:  # an interval has mean and sd
        return {**result, "within": False, "why": summary["why"]}
    low, high = t_interval(
        mean,
        sd / math.sqrt(summary["count"]),
        summary["count"] - 1,
        confidence=1.0 - 2.0 * ALPHA,
    )
    within = -bound < low and high < bound
    why = None if within else f"{1 - 2 * ALPHA:.0%} CI [{low:+.2f}, {high:+.2f}] leaves +-{bound:g}"
    return {**result, "ci": [low, high], "within": within, "why": why}


def at_chance(accuracy: float, classes: int) -> bool:
    """Whether a test accuracy is within CHANCE_POINTS of guessing among `classes`."""
    return accuracy < 1.0 / classes + CHANCE_POINTS / 100.0


def _classes(record: RunRecord) -> int:
    """A run's number of classes; UsageError for a record without it."""
    classes = record.num_classes
    if not classes:
        raise UsageError(
            f"{record.run}: num_classes={classes!r}; the precision test needs each run's "
            "number of classes to tell a network at chance (kerastransfer's records have it)"
        )
    return classes


def collapsed(record: RunRecord, float32_accuracy: float, candidate_accuracy: float) -> bool:
    """Whether a run is at chance in one precision and not in the other, which scores more than
    COLLAPSE_POINTS better: a harm however the means come out."""
    classes = _classes(record)
    worse, better = sorted((float32_accuracy, candidate_accuracy))
    return (
        at_chance(worse, classes)
        and not at_chance(better, classes)
        and 100.0 * (better - worse) > COLLAPSE_POINTS
    )


def _judged(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[bool, str]:
    """(counts, why) of a status change of one measured effect (a finding, or a part of one):
    it is excused only when float32's own interval includes 0 (its status then flips under
    any perturbation) and holds the candidate's effect (the effect moved no further than
    float32's own uncertainty)."""
    ci, effect = before["ci"], after["effect"]
    if ci is None:
        return True, "float32 had no interval"
    interval = f"float32's CI [{ci[0]:+.2f}, {ci[1]:+.2f}]"
    if not ci[0] <= 0.0 <= ci[1]:
        return True, f"{interval} excludes 0"
    if effect is None:
        return True, "the candidate measured no effect"
    if not ci[0] <= effect <= ci[1]:
        return True, f"the candidate's effect {effect:+.2f} leaves {interval}"
    return False, f"{interval} includes 0 and holds the candidate's effect {effect:+.2f}"


def finding_changes(
    float32_checked: Iterable[Mapping[str, Any]], candidate_checked: Iterable[Mapping[str, Any]]
) -> dict[int, dict[str, Any]]:
    """{finding number: change} of the findings (findings.check) whose status differs.

    A change counts against the treatments the finding reads (findings.READS) unless every
    part of it that changed status (the finding itself when it has no parts) is excused: its
    float32 interval includes 0 and holds the candidate's effect. An interval that includes 0
    is undecided, and any perturbation, however harmless, can move it across; an effect that
    leaves float32's own 95% interval moved further than the seed-to-seed spread explains,
    and counts even where that interval includes 0."""
    changes: dict[int, dict[str, Any]] = {}
    for before, after in zip(float32_checked, candidate_checked):
        if before["status"] == after["status"]:
            continue
        pieces = list(zip(before.get("parts") or [before], after.get("parts") or [after]))
        judged = [_judged(b, a) for b, a in pieces if b["status"] != a["status"]]
        counts = any(count for count, _ in judged)
        why = "; ".join(reason for count, reason in judged if count == counts)
        changes[before["finding"]] = {
            "float32": before["status"],
            "candidate": after["status"],
            "counts": counts,
            "why": why,
            "reads": list(findings.READS[before["finding"]]),
        }
    return changes


def precision_test(candidate: Iterable[AnyRecord], float32: Iterable[AnyRecord]) -> dict[str, Any]:
    """The equivalence test of a study's `candidate` records against the same study's
    `float32` records (results.jsonl dicts; the newest record of each run counts), treatment
    by treatment (module doc).

    Returns the overall and per-treatment intervals over base networks (tost_interval; each
    treatment with its verdict `passed` and every reason it failed, `reasons`), the networks
    that collapsed or ended ok in one study only, the largest paired difference, the findings
    whose status changed (and whether each change counts), `accepted` (the treatments that may
    train in the candidate precision), `passed` (the whole study may), `why` (every failure)
    and `seeds_needed` (the seeds of this study at which a harmless precision passes every
    bound with power.POWER; None where a bound cannot be sized: no spread, or past
    power.MAX_UNITS).
    """
    ours, theirs = newest(candidate), newest(float32)
    our_accuracy, their_accuracy = test_accuracies(ours), test_accuracies(theirs)
    paired = [run for run in their_accuracy if run in our_accuracy]
    unpaired = sorted(set(our_accuracy) ^ set(their_accuracy))
    points = {run: 100.0 * (our_accuracy[run] - their_accuracy[run]) for run in paired}
    seeds = len({theirs[run].seed for run in paired})
    overall_units: dict[Unit, list[float]] = {}
    units_by_treatment: dict[str, dict[Unit, list[float]]] = {}
    for run in paired:
        unit = unit_of(theirs[run])
        overall_units.setdefault(unit, []).append(points[run])
        by_unit = units_by_treatment.setdefault(theirs[run].treatment, {})
        by_unit.setdefault(unit, []).append(points[run])
    collapses = [
        {
            "run": run,
            "treatment": theirs[run].treatment,
            "float32": their_accuracy[run],
            "candidate": our_accuracy[run],
            "chance": 1.0 / _classes(theirs[run]),
        }
        for run in paired
        if collapsed(theirs[run], their_accuracy[run], our_accuracy[run])
    ]
    before = findings.check(list(theirs.values()))
    after = findings.check(list(ours.values()))
    changed = finding_changes(before, after)

    treatments: dict[str, dict[str, Any]] = {}
    for name, by_unit in units_by_treatment.items():
        treatments[name] = tost_interval(by_unit, TREATMENT_POINTS, seeds)
    for run in unpaired:
        name = (theirs.get(run) or ours[run]).treatment
        treatments.setdefault(name, tost_interval({}, TREATMENT_POINTS, seeds))
    for name, interval in treatments.items():
        reasons = [] if interval["within"] else [interval["why"]]
        lost = [run for run in unpaired if (theirs.get(run) or ours[run]).treatment == name]
        if lost:
            reasons.append(f"ok in one study only: {', '.join(lost)}")
        reasons += [
            f"{c['run']} collapsed: {c['float32']:.4f} in float32, {c['candidate']:.4f} in the "
            f"candidate (chance {c['chance']:.4f})"
            for c in collapses
            if c["treatment"] == name
        ]
        reasons += [
            f"finding {number} {c['float32']} -> {c['candidate']} ({c['why']})"
            for number, c in changed.items()
            if c["counts"] and name in c["reads"]
        ]
        interval.update(passed=not reasons, reasons=reasons)

    overall = tost_interval(overall_units, OVERALL_POINTS, seeds)
    why = [] if overall["within"] else [f"all networks: {overall['why']}"]
    why += [f"{name}: {reason}" for name, t in treatments.items() for reason in t["reasons"]]
    largest = max(points, key=lambda run: abs(points[run]), default=None)
    needed = [overall["seeds_needed"]] + [t["seeds_needed"] for t in treatments.values()]
    return {
        "alpha": ALPHA,
        "confidence": 1.0 - 2.0 * ALPHA,
        "unit": f"{NOUN} (split x target half x seed)",
        "power": power.POWER,
        "seeds": seeds,
        "seeds_needed": None if None in needed else max(needed),
        "overall": overall,
        "treatments": treatments,
        "accepted": sorted(name for name, t in treatments.items() if t["passed"]),
        "largest": None if largest is None else {"run": largest, "points": points[largest]},
        "unpaired": unpaired,
        "collapsed": collapses,
        "findings": {
            "float32": {f["finding"]: f["status"] for f in before},
            "candidate": {f["finding"]: f["status"] for f in after},
        },
        "findings_changed": changed,
        "passed": not why,
        "why": why,
    }
