"""The paper's five findings checked on a set of runs, each reproduced, not reproduced or
inconclusive by one stated rule (RULE) applied to a matched effect and its 95% CI over base
networks (kerastransfer.analysis.intervals).

The findings are those of docs/paper.md, "The five findings": fragile co-adaptation,
specificity, the generalization boost, worse transfer between dissimilar tasks, and random frozen
features being far worse. Effects are in percentage points. docs/statistics.md explains the unit,
the tests and the rule.
"""

from collections.abc import Collection, Iterable, Sequence
from typing import Any, TypedDict

from kerastransfer.analysis.baselines import Matched, matched_points
from kerastransfer.analysis.intervals import (
    PAIRED,
    Counts,
    Inference,
    Value,
    compare,
    over_units,
    select,
    unit_means,
    unpaired,
    without_ids,
)
from kerastransfer.analysis.records import group_order, is_base
from kerastransfer.analysis.stats import CONFIDENCE, Summary, summarize
from kerastransfer.analysis.tables import LAYER_RANGES
from kerastransfer.designs import HIGH_LAYERS, MIDDLE_LAYERS, split_group
from kerastransfer.treatments import LONG_BASE
from kerastransfer.workdir.records import AnyRecord
from kerastransfer.workdir.results import normalize_records

# An effect whose whole 95% CI lies within +-NEGLIGIBLE_POINTS points counts as no effect: the
# smallest effect the paper reports (Table 1) is 1.4 points, and split-to-split sd is 0.5.
NEGLIGIBLE_POINTS = 0.5

RULE = (
    f"each effect averages a base network's runs first and takes its 95% CI over base "
    f"networks; reproduced if the CI excludes 0 in the paper's direction; not reproduced if "
    f"it excludes 0 the other way, or lies entirely within +-{NEGLIGIBLE_POINTS} points "
    f"(negligible, checked first); inconclusive otherwise, and whenever there is no CI (one "
    f"base network on a side, or base networks that all give the same value)"
)


# The treatments whose networks each finding's status reads (check()): every effect is a run
# minus its own base, which cancels where two treatments of one base network are paired
# (findings 2 and 5); the compute-matched base (LONG_BASE) is a control, never the status.
READS = {
    1: ("base", "selffer", "selffer_ft", "base_long"),
    2: ("selffer", "transfer"),
    3: ("base", "transfer_ft", "base_long"),
    4: ("base", "transfer"),
    5: ("random", "transfer"),
}


class Convergence(TypedDict):
    """base_convergence's answer: whether the base networks were still improving."""

    late_gain: Summary | None  # None: no base has 2 k evaluations
    long_base: Counts | None  # None: no compute-matched base
    improving: bool


def decide(
    effect: float | None, ci: Sequence[float] | None, direction: int, why: str | None = None
) -> tuple[str, str]:
    """Status of an effect (points) whose paper direction is `direction` (+1 or -1), and why;
    `why` says why there is no CI when there is none. See RULE."""
    if effect is None:
        return "inconclusive", "no runs to measure it" + (f" ({why})" if why else "")
    if ci is None:
        return "inconclusive", f"no confidence interval: {why or 'fewer than two base networks'}"
    low, high = ci
    if -NEGLIGIBLE_POINTS < low and high < NEGLIGIBLE_POINTS:
        return "not reproduced", f"negligible: the CI lies within +-{NEGLIGIBLE_POINTS} points"
    if direction * low > 0 and direction * high > 0:
        return "reproduced", "the CI excludes 0 in the paper's direction"
    if direction * low < 0 and direction * high < 0:
        return "not reproduced", "the CI excludes 0 against the paper's direction"
    return "inconclusive", "the CI includes 0"


def _layers_text(layers: Sequence[int]) -> str:
    """ "n=1..7", "n=3,5" or "none" for a sorted list of layers."""
    if not layers:
        return "none"
    if list(layers) == list(range(layers[0], layers[-1] + 1)) and len(layers) > 2:
        return f"n={layers[0]}..{layers[-1]}"
    return "n=" + ",".join(map(str, layers))


def _with_basis(
    entry: dict[str, Any], beside: dict[str, Any] | None, why: str | None
) -> dict[str, Any]:
    """A finding with the comparison kept `beside` its verdict (None: there is none) and
    `basis`: why the verdict's comparison was chosen (None: the paper's, the plain base)."""
    return {**entry, "beside": beside, "basis": why}


def _measured(
    measure: str, effect: Inference, direction: int, comparison: str | None = None
) -> dict[str, Any]:
    """An effect (an inference dict) with its measure, what it is compared with, status and
    why."""
    status, why = decide(effect["effect"], effect["ci"], direction, effect["why"])
    return {
        "measure": measure,
        "comparison": comparison,
        "effect": effect["effect"],
        "ci": effect["ci"],
        "sd": effect["sd"],
        "reference_sd": effect["reference_sd"],
        "units": effect["units"],
        "reference_units": effect["reference_units"],
        "unit_ids": effect["unit_ids"],
        "reference_unit_ids": effect["reference_unit_ids"],
        "networks": effect["networks"],
        "test": effect["test"],
        "status": status,
        "why": why,
    }


def _finding(
    number: int,
    name: str,
    claim: str,
    direction: int,
    measured: dict[str, Any],
    parts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One findings entry; `measured` is its headline effect (an entry of _measured). With
    `parts` (entries of _measured), the headline effect is the first part and the status is
    that of all parts."""
    entry = {
        "finding": number,
        "name": name,
        "claim": claim,
        "direction": "positive" if direction > 0 else "negative",
        **measured,
        "unit": "points",
        "rule": RULE,
        "beside": None,
        "basis": None,
    }
    if parts:
        entry["parts"] = parts
        statuses = [p["status"] for p in parts]
        if "not reproduced" in statuses:
            entry["status"], entry["why"] = "not reproduced", "a part is not reproduced"
        elif all(s == "reproduced" for s in statuses):
            entry["status"], entry["why"] = "reproduced", "every part is reproduced"
        else:
            whys = dict.fromkeys(p["why"] for p in parts if p["status"] == "inconclusive")
            entry["status"], entry["why"] = (
                "inconclusive",
                "a part is inconclusive: " + ("; ".join(whys)),
            )
        entry["rule"] = RULE + "; a finding with parts is reproduced only if every part is"
    return entry


def multiple_testing(results: Iterable[dict[str, Any]]) -> str:
    """The multiple-testing position in words, for the intervals that `results` tested."""
    tests = sum(len(f.get("parts", [])) or 1 for f in results)
    level = round(100 * CONFIDENCE)
    chance = 100 * (1 - CONFIDENCE**tests)
    return (
        f"Each of the {tests} intervals (the five findings, finding 1 in two parts) is a "
        f"{level}% interval on its own, with no adjustment for the others: were every true "
        f"effect 0 and the intervals independent, the chance that at least one still came "
        f"out reproduced or not reproduced would be about {chance:.0f}%. A finding with parts "
        f"needs every part, which takes no adjustment."
    )


def _distant_first(group: str) -> tuple[bool, tuple[int, str]]:
    """Sort key of split groups, most distant tasks first: dissimilar, random, then the rest."""
    return group != "dissimilar", group_order(group)


def _by_split_group(values: Iterable[Value]) -> dict[str, list[Value]]:
    """{split group: its values} of Value triples."""
    groups: dict[str, list[Value]] = {}
    for value in values:
        groups.setdefault(split_group(value.unit[0]), []).append(value)
    return groups


def _random_features_comparison(matched: Sequence[Matched]) -> tuple[str, Inference, str]:
    """(measure, effect, what it is compared with) of finding 5: random features against AnB
    of the same split group, the most distant group that has both (paired). When no group has
    both (the paper: random features only on all 1000 classes), against AnB of the most
    distant group, unpaired."""
    random_features, transfer = (
        _by_split_group(select(matched, treatment, None, None))
        for treatment in ("random", "transfer")
    )
    both = sorted(random_features.keys() & transfer.keys(), key=_distant_first)
    if both:
        group = both[0]
        mine, theirs = random_features[group], transfer[group]
        where = f"{group} split{'s' if group == 'random' else ''}"
    else:
        mine = [v for group_values in random_features.values() for v in group_values]
        distant = sorted(transfer, key=_distant_first)
        theirs = transfer[distant[0]] if distant else []
        where = (
            f"AnB of the {distant[0] if distant else 'no'} split group; random features "
            f"on other splits (as in the paper's Figure 3)"
        )
    shared = sorted(set(layers_of(mine)) & set(layers_of(theirs)))
    effect = compare(_at(mine, shared), _at(theirs, shared), names=("random features", "AnB"))
    comparison = (
        "AnB of the same split, half, seed and n (paired)"
        if effect["test"] == PAIRED
        else "AnB of another split group (unpaired, Welch)"
    )
    return (
        f"(random - own base) - (AnB - own base), {where}, at {_layers_text(shared)}",
        effect,
        comparison,
    )


def layers_of(values: Iterable[Value]) -> list[int]:
    """The n that `values` have runs at, sorted (a unit averages its own runs first; under
    --design=findings most units have one n of a range and one unit has them all)."""
    return sorted({v.key[-1] for v in values})


def _at(values: Iterable[Value], layers: Collection[int]) -> list[Value]:
    return [v for v in values if v.key[-1] in layers]


def _against_long_base(values: Iterable[Value], matched: Sequence[Matched]) -> list[Value]:
    """`values` (each run minus its own base) minus its unit's compute-matched base (also
    minus that base): each run against the base trained on for as many more steps."""
    extra = unit_means(select(matched, LONG_BASE, None, None))
    return [Value(v.unit, v.key, v.value - extra[v.unit]) for v in values if v.unit in extra]


def _controlled(
    measure: str, values: Iterable[Value], matched: Sequence[Matched], direction: int
) -> dict[str, Any] | None:
    """The same effect against the compute-matched base, or None without one."""
    against = _against_long_base(values, matched)
    if not against:
        return None
    return _measured(measure, over_units(against), direction, LONG_BASE_COMPARISON)


def _verdict_basis(
    plain: dict[str, Any], controlled: dict[str, Any] | None, convergence: Convergence
) -> tuple[dict[str, Any], dict[str, Any] | None, str | None]:
    """(the comparison that decides, the one kept beside it, why) of an effect measured
    against the plain base (`plain`) and against the compute-matched base (`controlled`,
    None without one): the compute-matched one decides when the study's own check
    (base_convergence) finds the bases still improving, since the plain comparison then
    mixes transfer with extra training; else the plain one, the paper's."""
    if controlled is not None and convergence["improving"]:
        return controlled, plain, STILL_IMPROVING
    return plain, controlled, None


OWN_BASE = "the base network of the same split, target half and seed"
LONG_BASE_COMPARISON = "the compute-matched base of the same half"
STILL_IMPROVING = (
    "the bases were still improving (base_convergence), so the plain base's comparison "
    "mixes transfer with extra training"
)


def check(
    records: Sequence[AnyRecord], convergence: Convergence | None = None
) -> list[dict[str, Any]]:
    """Checks the paper's five findings on `records`; every effect is in matched points over
    base networks, paired where two treatments share split, target half, seed and n, at the
    layers every base network of the effect has (shared_layers).

    Finding 1's dip and finding 3 are measured against the plain base, as the paper does,
    and against the compute-matched base (treatments.LONG_BASE) where the study trained one.
    The compute-matched comparison decides when base_convergence finds the bases still
    improving (`basis` says why), else the plain one; the other is kept `beside` it.
    `convergence`: base_convergence(records), computed here when not given."""
    matched, _ = matched_points(records)
    convergence = convergence or base_convergence(records)

    bnb = select(matched, "selffer", MIDDLE_LAYERS)
    middle = layers_of(bnb)
    dip_values = _at(bnb, middle)
    repaired = select(matched, "selffer_ft", MIDDLE_LAYERS)
    repair_layers = [n for n in layers_of(repaired) if n in middle]
    repair = compare(_at(repaired, repair_layers), _at(bnb, repair_layers), names=("BnB+", "BnB"))
    dip_part, dip_beside, dip_basis = _verdict_basis(
        _measured(
            f"BnB - own base at {_layers_text(middle)}, random splits (the dip)",
            over_units(dip_values),
            -1,
            OWN_BASE,
        ),
        _controlled(
            f"BnB - compute-matched base at {_layers_text(middle)}, random splits (the dip)",
            dip_values,
            matched,
            -1,
        ),
        convergence,
    )
    parts = [
        dip_part,
        _measured(
            f"BnB+ - BnB at {_layers_text(repair_layers)}, random splits (fine-tuning removes "
            "the dip)",
            repair,
            +1,
            "BnB of the same base network and n (paired)",
        ),
    ]
    dip = _finding(
        1,
        "fragile co-adaptation",
        "BnB dips below base at middle layers (worst -3.2 points at n=5); BnB+ removes the dip",
        -1,
        dip_part,
        parts,
    )
    result = [_with_basis(dip, dip_beside, dip_basis)]

    anb = select(matched, "transfer", HIGH_LAYERS)
    high = layers_of(anb)
    result.append(
        _finding(
            2,
            "specificity",
            "AnB follows BnB up to n=5, then falls below it (-8.3 points at n=7)",
            -1,
            _measured(
                f"AnB - BnB at {_layers_text(high)}, random splits",
                compare(
                    _at(anb, high),
                    _at(select(matched, "selffer", HIGH_LAYERS), high),
                    names=("AnB", "BnB"),
                ),
                -1,
                "BnB of the same split, half, seed and n (paired; else over base networks)",
            ),
        )
    )

    anb_plus = select(matched, "transfer_ft", LAYER_RANGES["1-7"])
    boost_layers = layers_of(anb_plus)
    boost_values = _at(anb_plus, boost_layers)
    boost, boost_beside, boost_basis = _verdict_basis(
        _measured(
            f"AnB+ - own base at {_layers_text(boost_layers)}, random splits",
            over_units(boost_values),
            +1,
            OWN_BASE,
        ),
        _controlled(
            f"AnB+ - compute-matched base at {_layers_text(boost_layers)}, random splits",
            boost_values,
            matched,
            +1,
        ),
        convergence,
    )
    finding = _finding(
        3,
        "generalization boost",
        "AnB+ beats the base at every n (Table 1: +1.6 / +1.8 / +2.1 points over baseB)",
        +1,
        boost,
    )
    result.append(_with_basis(finding, boost_beside, boost_basis))

    distant_anb, random_anb = (
        select(matched, "transfer", None, "dissimilar"),
        select(matched, "transfer"),
    )
    common = set(layers_of(distant_anb)) & set(layers_of(random_anb))
    layers = [max(common)] if common else []
    distance = unpaired(
        _at(distant_anb, layers),
        _at(random_anb, layers),
        names=("dissimilar split", "random splits"),
    )
    if not layers:
        distance["why"] = "no n at which both the dissimilar and the random splits have AnB runs"
    result.append(
        _finding(
            4,
            "dissimilar tasks transfer worse",
            "relative drop at n=7: about -25 points across natural/man-made vs -8 across "
            "random splits",
            -1,
            _measured(
                f"(AnB - own base) dissimilar split - random splits, at the deepest n both "
                f"have ({_layers_text(layers)})",
                distance,
                -1,
                "AnB's drop from its own base on the random splits (unpaired, Welch)",
            ),
        )
    )

    measure, effect, comparison = _random_features_comparison(matched)
    result.append(
        _finding(
            5,
            "random frozen features are far worse",
            "frozen random layers lose more than even distant transferred ones (.4917 at n=1, "
            ".4026 at n=2, chance for n>=3, against .5763 for the trained network)",
            -1,
            _measured(measure, effect, -1, comparison),
        )
    )
    return result


def base_convergence(records: Sequence[AnyRecord]) -> Convergence:
    """Whether the base networks had stopped improving when their training ended.

    `late_gain`: per base network, the mean of its last k validation accuracies minus the mean
    of the k before them (k = best_k), in points, summarized over bases; `long_base`: the
    compute-matched bases against their own bases, over base networks. `improving` is True
    when either shows a gain: its CI above 0 (a late gain without a CI: its mean over
    NEGLIGIBLE_POINTS); then "BnB beats its base" may be extra training rather than transfer.
    """
    gains: list[float] = []
    for r in normalize_records(records):
        history = [accuracy for _, accuracy in r.val_history or []]
        k = r.k or 1
        if r.status == "ok" and is_base(r) and len(history) >= 2 * k:
            late, before = history[-k:], history[-2 * k : -k]
            gains.append(100.0 * (sum(late) / k - sum(before) / k))
    matched, _ = matched_points(records)
    longer = over_units(select(matched, LONG_BASE, None, None))
    late_gain = summarize(gains) if gains else None
    improving = bool(longer["ci"] and longer["ci"][0] > 0)
    if late_gain and late_gain["ci"]:
        improving = improving or late_gain["ci"][0] > 0
    elif late_gain and late_gain["mean"] is not None:  # a summary of gains has a mean
        improving = improving or late_gain["mean"] > NEGLIGIBLE_POINTS
    return {
        "late_gain": late_gain,
        "long_base": without_ids(longer) if longer["units"] else None,
        "improving": improving,
    }
