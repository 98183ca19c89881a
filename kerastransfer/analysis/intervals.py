"""Inference over base networks: the unit of replication is the base network.

Every run matched to one base network (split x target half x seed) shares that base's
seed-to-seed error, and a unit's runs copy their layers from the same bases, so the runs of a
unit (its layers n) are not independent replicates. Each statistic here averages a unit's values
first and takes its 95% t-interval over units: one unit gives no interval, and says why.

Values are Value triples: the unit, the pair key (split, target, seed, n) that pairs two
treatments' runs, and the value in points.
"""

from collections.abc import Iterable, Sequence
from typing import NamedTuple, TypedDict, cast

from kerastransfer.analysis.baselines import Matched, Unit, unit_label, unit_of
from kerastransfer.analysis.stats import difference, summarize
from kerastransfer.designs import split_group

# What pairs two treatments' runs: (split, target half, seed, n).
PairKey = tuple[str, str, int | str | None, int]


class Value(NamedTuple):
    """A run's value in points, its unit (the base network it belongs to) and pair key."""

    unit: Unit
    key: PairKey
    value: float


class Counts(TypedDict):
    """An effect over base networks without the units' ids (without_ids), as tables show it:
    the mean of the units' means and its 95% interval, the spread of the units' means (and
    of the reference side's), the units on each side, the networks, the test and why there
    is no interval."""

    effect: float | None
    ci: list[float] | None
    sd: float | None
    reference_sd: float | None
    units: int
    reference_units: int | None  # None: one side (one-sample or paired)
    networks: int
    test: str
    why: str | None


class Inference(Counts):
    """An effect over base networks (over_units, paired, unpaired) with its units' ids."""

    unit_ids: list[Unit]
    reference_unit_ids: list[Unit] | None


NOUN = "base network"

ONE_SAMPLE = "one-sample t over base networks"
PAIRED = "paired t over base networks"
WELCH = "Welch t over base networks"


def matched_values(matched: Iterable[Matched]) -> list[Value]:
    """Value triples of Matched points (baselines.matched_points): each run minus its base."""
    return [Value(m.unit, unit_of(m.record) + (m.record.n,), m.points) for m in matched]


def select(
    matched: Iterable[Matched],
    treatment: str,
    layers: Iterable[int] | None = None,
    group: str | None = "random",
) -> list[Value]:
    """Value triples of the Matched points of `treatment`, with n in `layers` (None: any) and
    on the splits of `group` (None: any)."""
    return matched_values(
        [
            m
            for m in matched
            if m.record.treatment == treatment
            and (layers is None or m.record.n in layers)
            and (group is None or split_group(m.record.split) == group)
        ]
    )


def unit_means(values: Iterable[Value]) -> dict[Unit, float]:
    """{unit: mean of its values}, units in first-seen order."""
    groups: dict[Unit, list[float]] = {}
    for v in values:
        groups.setdefault(v.unit, []).append(v.value)
    return {unit: sum(vs) / len(vs) for unit, vs in groups.items()}


def _why(means: dict[Unit, float]) -> str | None:
    """Why a side's per-unit means give no interval ("one base network (random0 B seed 0)"),
    or None when they give one."""
    summary = summarize(list(means.values()), noun=NOUN)
    if summary["count"] < 2:
        return f"one {NOUN} ({unit_label(next(iter(means)))})" if means else "no runs"
    return summary["why"]


def over_units(values: Sequence[Value]) -> Inference:
    """Mean of the per-unit means of `values` and its one-sample t-interval over units; `sd` is
    the spread of the per-unit means, `unit_ids` the units (split, target half, seed)."""
    means = unit_means(values)
    summary = summarize(list(means.values()), noun=NOUN)
    return {
        "effect": summary["mean"],
        "ci": summary["ci"],
        "sd": summary["sd"],
        "reference_sd": None,
        "units": len(means),
        "reference_units": None,
        "unit_ids": list(means),
        "reference_unit_ids": None,
        "networks": len(values),
        "test": ONE_SAMPLE,
        "why": None if summary["ci"] else _why(means),
    }


def without_ids(effect: Inference) -> Counts:
    """An inference dict without its unit ids, for tables that only show counts."""
    return cast(
        Counts,
        {k: v for k, v in effect.items() if k not in ("unit_ids", "reference_unit_ids")},
    )


def paired(values: Iterable[Value], reference_values: Iterable[Value]) -> Inference:
    """values - reference_values over the runs the two share a pair key with (same split,
    target half, seed and n), averaged per unit; t-interval over units."""
    reference: dict[PairKey, list[float]] = {}
    for v in reference_values:
        reference.setdefault(v.key, []).append(v.value)
    differences = [
        Value(v.unit, v.key, v.value - sum(reference[v.key]) / len(reference[v.key]))
        for v in values
        if v.key in reference
    ]
    return over_units(differences) | {"test": PAIRED}


def unpaired(
    values: Sequence[Value],
    reference_values: Sequence[Value],
    names: tuple[str, str] = ("one side", "the other"),
) -> Inference:
    """Difference of the means of per-unit means, Welch's t-interval over the two sides' units
    (for sides that share no pair key, e.g. two split groups); `sd` and `reference_sd` are
    the spreads of each side's per-unit means."""
    means, reference = unit_means(values), unit_means(reference_values)
    result = difference(list(means.values()), list(reference.values()))
    whys = [f"{name}: {why}" for name, why in zip(names, (_why(means), _why(reference))) if why]
    return {
        "effect": result["effect"],
        "ci": result["ci"],
        "sd": summarize(list(means.values()))["sd"],
        "reference_sd": summarize(list(reference.values()))["sd"],
        "units": len(means),
        "reference_units": len(reference),
        "unit_ids": list(means),
        "reference_unit_ids": list(reference),
        "networks": len(values) + len(reference_values),
        "test": WELCH,
        "why": "; ".join(whys) or None,
    }


def compare(
    values: Sequence[Value],
    reference_values: Sequence[Value],
    names: tuple[str, str] = ("one side", "the other"),
) -> Inference:
    """paired() where any run of one side pairs with a run of the other, else unpaired()."""
    if {v.key for v in values} & {v.key for v in reference_values}:
        return paired(values, reference_values)
    return unpaired(values, reference_values, names)
