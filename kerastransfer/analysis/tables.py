"""The study's tables: per-cell statistics (Figure 2), the paper's Table 1, the matched-baseline
table and the relative drop (Figure 3).

Units: accuracies are fractions (.6251); differences between accuracies (boosts, drops) are
percentage points (+1.6), as the paper reports them.
"""

from kerastransfer import treatments
from kerastransfer.analysis.baselines import matched_points
from kerastransfer.analysis.records import group_order, ok_records, paper_label, split_group
from kerastransfer.analysis.stats import difference, summarize

# The layer ranges of the paper's Table 1.
LAYER_RANGES = {"1-7": range(1, 8), "3-7": range(3, 8), "5-7": range(5, 8)}


def _metric_stats(members, metric):
    """summarize() of `metric` over the records that have it, or None if none has it."""
    values = [r[metric] for r in members if r.get(metric) is not None]
    return summarize(values) if values else None


def cell_table(records, *, by_target=False):
    """Per (split group, treatment, n) statistics of best_k and test_accuracy over ok runs.

    Pooled over target halves, as the paper's Figure 2 and per-layer table are, unless
    `by_target`, which keeps one cell per target half.
    """
    cells = {}
    for r in ok_records(records):
        key = (split_group(r["split"]), r["treatment"], r["target"] if by_target else None, r["n"])
        cells.setdefault(key, []).append(r)
    table = []
    for (group, treatment, target, n), members in sorted(
            cells.items(), key=lambda item: (group_order(item[0][0]),
                                             treatments.ALL_NAMES.index(item[0][1]),
                                             item[0][2] or "", item[0][3])):
        targets = {m["target"] for m in members}
        table.append({
            "group": group, "treatment": treatment, "target": target if by_target else "all",
            "n": n, "label": paper_label(treatment, targets),
            "best_k": _metric_stats(members, "best_k"),
            "test_accuracy": _metric_stats(members, "test_accuracy"),
        })
    return table


def find_cell(cells, treatment, n, *, group="random", target="all"):
    """The cell of `cells` (from cell_table) for treatment/n/group/target, or None."""
    for cell in cells:
        if (cell["treatment"], cell["n"], cell["group"], cell["target"]) == (
                treatment, n, group, target):
            return cell
    return None


def _random_split_values(records, treatment, layers=None):
    """best_k of the ok runs of `treatment` on random splits, optionally with n in `layers`."""
    return [r["best_k"] for r in ok_records(records)
            if split_group(r["split"]) == "random" and r["treatment"] == treatment
            and (layers is None or r["n"] in layers)]


def table1(records):
    """The paper's Table 1: mean boost of AnB+ in points over base and over BnB+, per layer range.

    The paper's way: pool the AnB+ networks of the range (random splits only) and subtract the
    pooled mean of all base networks of the random splits, or of the BnB+ networks in the same
    range. CIs are Welch's, treating the pooled groups as independent networks.
    """
    bases = [100.0 * v for v in _random_split_values(records, "base")]
    table = {}
    for name, layers in LAYER_RANGES.items():
        boosted = [100.0 * v for v in _random_split_values(records, "transfer_ft", layers)]
        selffers = [100.0 * v for v in _random_split_values(records, "selffer_ft", layers)]
        over_base, over_selffer = difference(boosted, bases), difference(boosted, selffers)
        table[name] = {
            "layers": list(layers),
            "over_base": over_base["effect"], "over_base_ci": over_base["ci"],
            "over_selffer_ft": over_selffer["effect"], "over_selffer_ft_ci": over_selffer["ci"],
            "counts": {"transfer_ft": len(boosted), "base": len(bases),
                       "selffer_ft": len(selffers)},
        }
    return table


def matched_table(records):
    """Each run minus the base of its own split and target half, in points.

    `by_cell`: per (split group, treatment, n); `by_range`: per treatment and Table 1 range over
    the random splits; `anb_plus_vs_bnb_plus`: AnB+ against BnB+ both ways, the paper's pooled
    difference (Table 1) and the difference of their matched boosts, which removes the
    half-to-half variance the pooled one carries (every AnB+ of the paper targets a B half and
    every BnB+ an A half).
    """
    sources = {}
    matched, unmatched = matched_points(records, sources)
    cells = {}
    for r, points in matched:
        cells.setdefault((split_group(r["split"]), r["treatment"], r["n"]), []).append(
            (r["target"], points))
    by_cell = []
    for (group, treatment, n), members in sorted(
            cells.items(), key=lambda item: (group_order(item[0][0]),
                                             treatments.ALL_NAMES.index(item[0][1]), item[0][2])):
        by_cell.append({"group": group, "treatment": treatment, "n": n,
                        "label": paper_label(treatment, {t for t, _ in members}),
                        **summarize([p for _, p in members])})

    def range_points(treatment, layers):
        return [p for r, p in matched if split_group(r["split"]) == "random"
                and r["treatment"] == treatment and r["n"] in layers]

    pooled = table1(records)
    by_range, versus = {}, {}
    for name, layers in LAYER_RANGES.items():
        by_range[name] = {treatments.get(t).paper_name: summarize(range_points(t, layers))
                          for t in treatments.COPIED}
        matched_difference = difference(range_points("transfer_ft", layers),
                                         range_points("selffer_ft", layers))
        versus[name] = {
            "pooled": pooled[name]["over_selffer_ft"],
            "pooled_ci": pooled[name]["over_selffer_ft_ci"],
            "matched": matched_difference["effect"], "matched_ci": matched_difference["ci"],
        }
    return {"by_cell": by_cell, "by_range": by_range, "anb_plus_vs_bnb_plus": versus,
            "baseline_sources": sources, "unmatched_runs": unmatched}


def relative_drop(records):
    """Figure 3's relative top-1 accuracy, per n, in points against each run's own base.

    Three series: transfer (AnB) across the random splits, across the dissimilar split, and
    random frozen features (any split). `at_top` compares the first two at the deepest n both
    have (the paper: about -8.3 vs -25.0 points at n = 7).
    """
    matched, _ = matched_points(records)

    def series(select):
        per_n = {}
        for r, points in matched:
            if select(r):
                per_n.setdefault(r["n"], []).append(points)
        return [{"n": n, **summarize(values)} for n, values in sorted(per_n.items())]

    result = {
        "random_splits": series(lambda r: r["treatment"] == "transfer"
                                and split_group(r["split"]) == "random"),
        "dissimilar": series(lambda r: r["treatment"] == "transfer"
                             and split_group(r["split"]) == "dissimilar"),
        "random_features": series(lambda r: r["treatment"] == "random"),
    }
    common = ({c["n"] for c in result["random_splits"]} & {c["n"] for c in result["dissimilar"]})
    if common:
        top = max(common)
        pick = {name: next(c for c in result[name] if c["n"] == top)
                for name in ("random_splits", "dissimilar")}
        result["at_top"] = {"n": top, "random_splits": pick["random_splits"]["mean"],
                            "dissimilar": pick["dissimilar"]["mean"]}
    else:
        result["at_top"] = None
    return result
