"""The paper's five findings checked on a set of runs, each reproduced, not reproduced or
inconclusive by one stated rule (RULE) applied to a matched effect and its 95% CI over base
networks (kerastransfer.analysis.inference).

The findings are those of docs/paper.md, "The five findings": fragile co-adaptation,
specificity, the generalization boost, worse transfer between dissimilar tasks, and random frozen
features being far worse. Effects are in percentage points. docs/statistics.md explains the unit,
the tests and the rule.
"""

from kerastransfer.analysis.baselines import matched_points
from kerastransfer.analysis.inference import compare, over_units, select, unpaired
from kerastransfer.analysis.records import group_order, split_group
from kerastransfer.analysis.stats import CONFIDENCE
from kerastransfer.analysis.tables import LAYER_RANGES

# Layers the findings look at: where BnB dips (finding 1) and where AnB leaves BnB (finding 2).
MIDDLE_LAYERS = range(3, 6)
HIGH_LAYERS = range(6, 8)

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


def decide(effect, ci, direction, why=None):
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


def _layers_text(layers):
    """ "n=1..7", "n=3,5" or "none" for a sorted list of layers."""
    if not layers:
        return "none"
    if list(layers) == list(range(layers[0], layers[-1] + 1)) and len(layers) > 2:
        return f"n={layers[0]}..{layers[-1]}"
    return "n=" + ",".join(map(str, layers))


def _measured(measure, effect, direction):
    """An effect (an inference dict) with its measure, status and why."""
    status, why = decide(effect["effect"], effect["ci"], direction, effect["why"])
    return {
        "measure": measure,
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


def _finding(number, name, claim, measure, direction, effect, parts=None):
    """One findings entry; `effect` is an inference dict in points. With `parts` (entries of
    _measured), the headline effect is the first part and the status is that of all parts."""
    entry = {
        "finding": number,
        "name": name,
        "claim": claim,
        "direction": "positive" if direction > 0 else "negative",
        **_measured(measure, effect, direction),
        "unit": "points",
        "rule": RULE,
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


def multiple_testing(results):
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


def _distant_first(group):
    """Sort key of split groups, most distant tasks first: dissimilar, random, then the rest."""
    return group != "dissimilar", group_order(group)


def _random_features_comparison(matched):
    """(measure, effect) of finding 5: random features against AnB of the same split group,
    the most distant group that has both (paired). When no group has both (the paper: random
    features only on all 1000 classes), against AnB of the most distant group, unpaired."""
    values = {"random": {}, "transfer": {}}
    for treatment, by_group in values.items():
        for value in select(matched, treatment, None, None):
            by_group.setdefault(split_group(value.unit[0]), []).append(value)
    both = sorted(values["random"].keys() & values["transfer"].keys(), key=_distant_first)
    if both:
        group = both[0]
        mine, theirs = values["random"][group], values["transfer"][group]
        where = f"{group} split{'s' if group == 'random' else ''}"
    else:
        mine = [v for group_values in values["random"].values() for v in group_values]
        distant = sorted(values["transfer"], key=_distant_first)
        theirs = values["transfer"][distant[0]] if distant else []
        where = (
            f"AnB of the {distant[0] if distant else 'no'} split group; random features "
            f"on other splits (as in the paper's Figure 3)"
        )
    shared = sorted({v.key[-1] for v in mine} & {v.key[-1] for v in theirs})
    effect = compare(
        [v for v in mine if v.key[-1] in shared],
        [v for v in theirs if v.key[-1] in shared],
        names=("random features", "AnB"),
    )
    return (f"(random - own base) - (AnB - own base), {where}, at {_layers_text(shared)}", effect)


def check(records):
    """Checks the paper's five findings on `records`; every effect is in matched points over
    base networks, paired where two treatments share split, target half, seed and n."""
    matched, _ = matched_points(records)
    middle, high = _layers_text(list(MIDDLE_LAYERS)), _layers_text(list(HIGH_LAYERS))

    dip = over_units(select(matched, "selffer", MIDDLE_LAYERS))
    repair = compare(
        select(matched, "selffer_ft", MIDDLE_LAYERS),
        select(matched, "selffer", MIDDLE_LAYERS),
        names=("BnB+", "BnB"),
    )
    dip_measure = f"BnB - own base at {middle}, random splits (the dip)"
    parts = [
        _measured(dip_measure, dip, -1),
        _measured(
            f"BnB+ - BnB at {middle}, random splits (fine-tuning removes the dip)", repair, +1
        ),
    ]
    result = [
        _finding(
            1,
            "fragile co-adaptation",
            "BnB dips below base at middle layers (worst -3.2 points at n=5); BnB+ removes the dip",
            dip_measure,
            -1,
            dip,
            parts,
        )
    ]

    result.append(
        _finding(
            2,
            "specificity",
            "AnB follows BnB up to n=5, then falls below it (-8.3 points at n=7)",
            f"AnB - BnB at {high}, random splits",
            -1,
            compare(
                select(matched, "transfer", HIGH_LAYERS),
                select(matched, "selffer", HIGH_LAYERS),
                names=("AnB", "BnB"),
            ),
        )
    )

    boost_layers = LAYER_RANGES["1-7"]
    result.append(
        _finding(
            3,
            "generalization boost",
            "AnB+ beats the base at every n (Table 1: +1.6 / +1.8 / +2.1 points over baseB)",
            f"AnB+ - own base at {_layers_text(list(boost_layers))}, random splits",
            +1,
            over_units(select(matched, "transfer_ft", boost_layers)),
        )
    )

    common = {v.key[-1] for v in select(matched, "transfer", None, "dissimilar")} & {
        v.key[-1] for v in select(matched, "transfer")
    }
    layers = [max(common)] if common else []
    distance = unpaired(
        select(matched, "transfer", layers, "dissimilar"),
        select(matched, "transfer", layers),
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
            f"(AnB - own base) dissimilar split - random splits, at the deepest n both have "
            f"({_layers_text(layers)})",
            -1,
            distance,
        )
    )

    measure, effect = _random_features_comparison(matched)
    result.append(
        _finding(
            5,
            "random frozen features are far worse",
            "frozen random layers lose more than even distant transferred ones (.4917 at n=1, "
            ".4026 at n=2, chance for n>=3, against .5763 for the trained network)",
            measure,
            -1,
            effect,
        )
    )
    return result
