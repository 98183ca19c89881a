"""The paper's five findings checked on a set of runs, each reproduced, not reproduced or
inconclusive by one stated rule (RULE) applied to a matched effect and its 95% CI.

The findings are those of docs/paper.md, "Results to reproduce": fragile co-adaptation,
specificity, the generalization boost, worse transfer between dissimilar tasks, and random frozen
features being far worse. Effects are in percentage points.
"""

from kerastransfer.analysis.baselines import matched_points
from kerastransfer.analysis.records import split_group
from kerastransfer.analysis.stats import difference, one_sample
from kerastransfer.analysis.tables import LAYER_RANGES, relative_drop

# Layers the findings look at: where BnB dips (finding 1) and where AnB leaves BnB (finding 2).
MIDDLE_LAYERS = range(3, 6)
HIGH_LAYERS = range(6, 8)

# An effect whose whole 95% CI lies within +-NEGLIGIBLE_POINTS points counts as no effect: the
# smallest effect the paper reports (Table 1) is 1.4 points, and split-to-split sd is 0.5.
NEGLIGIBLE_POINTS = 0.5

RULE = (f"reproduced if the 95% CI of the effect excludes 0 in the paper's direction; not "
        f"reproduced if it excludes 0 the other way, or lies entirely within "
        f"+-{NEGLIGIBLE_POINTS} points (negligible, checked first); inconclusive otherwise, and "
        f"whenever a side has a single network (no CI: the effect alone decides nothing)")


def decide(effect, ci, direction):
    """Status of an effect (points) whose paper direction is `direction` (+1 or -1); see RULE."""
    if effect is None:
        return "inconclusive", "no runs to measure it"
    if ci is None:
        return "inconclusive", "a single network on one side: no confidence interval"
    low, high = ci
    if -NEGLIGIBLE_POINTS < low and high < NEGLIGIBLE_POINTS:
        return "not reproduced", f"negligible: the CI lies within +-{NEGLIGIBLE_POINTS} points"
    if direction * low > 0 and direction * high > 0:
        return "reproduced", "the CI excludes 0 in the paper's direction"
    if direction * low < 0 and direction * high < 0:
        return "not reproduced", "the CI excludes 0 against the paper's direction"
    return "inconclusive", "the CI includes 0"


def _layers_text(layers):
    """"n=1..7", "n=3,5" or "none" for a sorted list of layers."""
    if not layers:
        return "none"
    if list(layers) == list(range(layers[0], layers[-1] + 1)) and len(layers) > 2:
        return f"n={layers[0]}..{layers[-1]}"
    return "n=" + ",".join(map(str, layers))


def _finding(number, name, claim, measure, direction, effect, parts=None):
    """One findings entry; `effect` is a difference()/one-sample dict in points."""
    status, why = decide(effect["effect"], effect["ci"], direction)
    entry = {"finding": number, "name": name, "claim": claim, "measure": measure,
             "direction": "positive" if direction > 0 else "negative",
             "effect": effect["effect"], "ci": effect["ci"], "count": effect["count"],
             "reference_count": effect.get("reference_count"), "unit": "points",
             "status": status, "why": why, "rule": RULE}
    if parts:
        entry["parts"] = parts
        statuses = [p["status"] for p in parts]
        if "not reproduced" in statuses:
            entry["status"], entry["why"] = "not reproduced", "a part is not reproduced"
        elif all(s == "reproduced" for s in statuses):
            entry["status"], entry["why"] = "reproduced", "every part is reproduced"
        else:
            entry["status"], entry["why"] = "inconclusive", "a part is inconclusive"
        entry["rule"] = RULE + "; a finding with parts is reproduced only if every part is"
    return entry


def check(records):
    """Checks the paper's five findings on `records`; every effect is in matched points.

    Matched points (each run minus its own split and target base) remove the half-to-half
    variance that the paper's pooled comparisons carry, so findings hold or fail on their own.
    """
    matched, _ = matched_points(records)

    def points(treatment, layers=None, group="random"):
        return [p for r, p in matched if r["treatment"] == treatment
                and (group is None or split_group(r["split"]) == group)
                and (layers is None or r["n"] in layers)]

    middle, high = _layers_text(list(MIDDLE_LAYERS)), _layers_text(list(HIGH_LAYERS))

    dip = one_sample(points("selffer", MIDDLE_LAYERS))
    repair = difference(points("selffer_ft", MIDDLE_LAYERS), points("selffer", MIDDLE_LAYERS))
    parts = []
    for effect, direction, measure in (
            (dip, -1, f"BnB - own base at {middle} (the dip)"),
            (repair, +1, f"BnB+ - BnB at {middle} (fine-tuning removes the dip)")):
        status, why = decide(effect["effect"], effect["ci"], direction)
        parts.append({"measure": measure, "effect": effect["effect"], "ci": effect["ci"],
                      "status": status, "why": why})
    result = [_finding(
        1, "fragile co-adaptation",
        "BnB dips below base at middle layers (worst -3.2 points at n=5); BnB+ removes the dip",
        f"BnB - own base at {middle}, random splits", -1, dip, parts)]

    result.append(_finding(
        2, "specificity", "AnB follows BnB up to n=5, then falls below it (-8.3 points at n=7)",
        f"(AnB - own base) - (BnB - own base) at {high}, random splits", -1,
        difference(points("transfer", HIGH_LAYERS), points("selffer", HIGH_LAYERS))))

    result.append(_finding(
        3, "generalization boost",
        "AnB+ beats the base at every n (Table 1: +1.6 / +1.8 / +2.1 points over baseB)",
        f"AnB+ - own base at {_layers_text(list(LAYER_RANGES['1-7']))}, random splits", +1,
        one_sample(points("transfer_ft", LAYER_RANGES["1-7"]))))

    drop = relative_drop(records)
    layers = [drop["at_top"]["n"]] if drop["at_top"] else []
    result.append(_finding(
        4, "dissimilar tasks transfer worse",
        "relative drop at n=7: about -25 points across natural/man-made vs -8 across random splits",
        f"(AnB - own base) dissimilar split - random splits, at the deepest n both have "
        f"({_layers_text(layers)})", -1,
        difference(points("transfer", layers, "dissimilar"), points("transfer", layers))))

    # Random features against the most distant transfer there is, at the n values both have.
    distant_group = "dissimilar" if points("transfer", None, "dissimilar") else "random"
    shared = sorted({r["n"] for r, _ in matched if r["treatment"] == "random"}
                    & {r["n"] for r, _ in matched if r["treatment"] == "transfer"
                       and split_group(r["split"]) == distant_group})
    result.append(_finding(
        5, "random frozen features are far worse",
        "frozen random layers lose more than even distant transferred ones (.4917 at n=1, "
        ".4026 at n=2, chance for n>=3, against .5763 for the trained network)",
        f"(random - own base) - (AnB - own base, {distant_group} split"
        f"{'s' if distant_group == 'random' else ''}) at the n both have "
        f"({_layers_text(shared)})", -1,
        difference(points("random", shared, None), points("transfer", shared, distant_group))))
    return result
