"""Statistics of values: summaries, Welch and pooled differences.

Every interval of the analysis is a two-sided 95% Student t-interval (scipy.stats). There is
no interval from fewer than two values or from values that are all equal (sd 0); a `why` says
so. What the values are (networks, or base networks: kerastransfer.analysis.intervals) is the
caller's choice.
"""

import math
from collections.abc import Iterable, Sequence
from typing import TypedDict

import scipy.stats

CONFIDENCE = 0.95
# A spread this small relative to the values is floating-point rounding, not a spread: two
# networks that score the same images can differ in the 17th digit.
ROUNDING = 1e-12
# (low, high) an interval is clipped to, e.g. (0, 1) for accuracies.
Bounds = tuple[float, float]


class Summary(TypedDict):
    """summarize's answer: count, mean, sample sd and 95% t-interval of the mean, and why
    there is no interval when there is none."""

    count: int
    mean: float | None
    sd: float | None
    ci: list[float] | None
    why: str | None


class Difference(TypedDict):
    """difference's answer: mean(values) - mean(reference values) and its interval."""

    effect: float | None
    ci: list[float] | None
    count: int
    reference_count: int


class PooledDifference(Difference):
    """pooled_difference's answer: a Difference, and why it has no interval."""

    why: str | None


def summarize(
    values: Iterable[float], *, noun: str = "network", bounds: Bounds | None = None
) -> Summary:
    """Count, mean, sample sd and 95% t-interval of the mean of `values`, and `why` there is no
    interval when there is none (`noun` names what was counted: "one base network").

    No interval from fewer than two values or from sd 0 (equal values tell nothing of the
    spread). `bounds` (low, high) clips the interval, e.g. (0, 1) for accuracies.
    """
    values = [float(v) for v in values]
    count = len(values)
    result: Summary = {"count": count, "mean": None, "sd": None, "ci": None, "why": None}
    if count == 0:
        result["why"] = f"no {noun}s"
        return result
    result["mean"] = mean = math.fsum(values) / count
    if count == 1:
        result["why"] = f"one {noun}"
        return result
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (count - 1))
    if len(set(values)) == 1 or sd <= ROUNDING * max(1.0, abs(mean)):
        # sd 0, which rounding could hide: 7/24 summed in two orders differs in the 17th digit
        result["sd"], result["why"] = 0.0, f"all {count} {noun}s give the same value (sd 0)"
        return result
    result["sd"] = sd
    result["ci"] = _clip(t_interval(mean, sd / math.sqrt(count), count - 1), bounds)
    return result


def t_interval(
    estimate: float, standard_error: float, df: float, confidence: float = CONFIDENCE
) -> list[float]:
    """[low, high]: the two-sided `confidence` Student t-interval of `estimate` on `df`
    degrees of freedom (not necessarily whole: Welch's)."""
    low, high = scipy.stats.t.interval(confidence, df, loc=estimate, scale=standard_error)
    return [float(low), float(high)]


def _clip(ci: list[float], bounds: Bounds | None) -> list[float]:
    return ci if bounds is None else [max(ci[0], bounds[0]), min(ci[1], bounds[1])]


def difference(values: Sequence[float], reference_values: Sequence[float]) -> Difference:
    """mean(values) - mean(reference_values) with Welch's 95% t-interval, for two separate
    groups (unpaired); no interval when either side has none (summarize)."""
    a, b = summarize(values), summarize(reference_values)
    result: Difference = {
        "effect": None,
        "ci": None,
        "count": a["count"],
        "reference_count": b["count"],
    }
    if a["mean"] is not None and b["mean"] is not None:
        result["effect"] = a["mean"] - b["mean"]
    if a["ci"] is None or b["ci"] is None:
        return result
    welch = scipy.stats.ttest_ind(values, reference_values, equal_var=False)
    result["ci"] = [float(bound) for bound in welch.confidence_interval(CONFIDENCE)]
    return result


def pooled_sd(groups: Iterable[Sequence[float]]) -> tuple[float | None, int]:
    """(sd, degrees of freedom) of the spread within groups, pooled over `groups` (lists of
    values) on the assumption that every group has the same spread; (None, 0) without any
    group of two or more."""
    squares: list[float] = []
    df = 0
    for values in groups:
        if len(values) > 1:
            mean = math.fsum(values) / len(values)
            squares += [(v - mean) ** 2 for v in values]
            df += len(values) - 1
    return (math.sqrt(math.fsum(squares) / df), df) if df else (None, 0)


def pooled_difference(
    values: Sequence[float], reference_values: Sequence[float], sd: float | None, df: int
) -> PooledDifference:
    """mean(values) - mean(reference_values) with a 95% t-interval from a pooled sd on `df`
    degrees of freedom (pooled_sd); no interval (`why`) without a positive sd."""
    result: PooledDifference = {
        "effect": None,
        "ci": None,
        "count": len(values),
        "reference_count": len(reference_values),
        "why": None,
    }
    if not values or not reference_values:
        result["why"] = "no networks on a side"
        return result
    result["effect"] = effect = math.fsum(values) / len(values) - (
        math.fsum(reference_values) / len(reference_values)
    )
    if sd is not None and sd <= ROUNDING * max(1.0, abs(effect)):
        sd = 0.0
    if not sd:
        result["why"] = (
            "one seed per cell: no seed-to-seed spread to measure"
            if sd is None
            else "every seed gives the same value (sd 0)"
        )
        return result
    result["ci"] = t_interval(
        effect, sd * math.sqrt(1.0 / len(values) + 1.0 / len(reference_values)), df
    )
    return result
