"""Inference over base networks: the unit of replication is the base network.

Every run matched to one base network (split x target half x seed) shares that base's
seed-to-seed error, and a unit's runs copy their layers from the same bases, so the runs of a
unit (its layers n) are not independent replicates. Each statistic here averages a unit's values
first and takes its 95% t-interval over units: one unit gives no interval, and says why.

Values are Value triples: the unit, the pair key (split, target, seed, n) that pairs two
treatments' runs, and the value in points.
"""

import collections

from kerastransfer.analysis.baselines import unit_label, unit_of
from kerastransfer.analysis.stats import difference, summarize
from kerastransfer.designs import split_group

Value = collections.namedtuple("Value", "unit key value")
NOUN = "base network"

ONE_SAMPLE = "one-sample t over base networks"
PAIRED = "paired t over base networks"
WELCH = "Welch t over base networks"


def matched_values(matched):
    """Value triples of Matched points (baselines.matched_points): each run minus its base."""
    return [Value(m.unit, unit_of(m.record) + (m.record.n,), m.points) for m in matched]


def select(matched, treatment, layers=None, group="random"):
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


def unit_means(values):
    """{unit: mean of its values}, units in first-seen order."""
    groups = {}
    for v in values:
        groups.setdefault(v.unit, []).append(v.value)
    return {unit: sum(vs) / len(vs) for unit, vs in groups.items()}


def _why(means):
    """Why a side's per-unit means give no interval ("one base network (random0 B seed 0)"),
    or None when they give one."""
    summary = summarize(list(means.values()), noun=NOUN)
    if summary["count"] < 2:
        return f"one {NOUN} ({unit_label(next(iter(means)))})" if means else "no runs"
    return summary["why"]


def over_units(values):
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


def without_ids(effect):
    """An inference dict without its unit ids, for tables that only show counts."""
    return {k: v for k, v in effect.items() if k not in ("unit_ids", "reference_unit_ids")}


def paired(values, reference_values):
    """values - reference_values over the runs the two share a pair key with (same split,
    target half, seed and n), averaged per unit; t-interval over units."""
    reference = {}
    for v in reference_values:
        reference.setdefault(v.key, []).append(v.value)
    differences = [
        Value(v.unit, v.key, v.value - sum(reference[v.key]) / len(reference[v.key]))
        for v in values
        if v.key in reference
    ]
    return over_units(differences) | {"test": PAIRED}


def unpaired(values, reference_values, names=("one side", "the other")):
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


def compare(values, reference_values, names=("one side", "the other")):
    """paired() where any run of one side pairs with a run of the other, else unpaired()."""
    if {v.key for v in values} & {v.key for v in reference_values}:
        return paired(values, reference_values)
    return unpaired(values, reference_values, names)
