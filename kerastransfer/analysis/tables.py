"""The study's tables: per-cell statistics (Figure 2), the paper's Table 1 the paper's way, the
matched table per base network and the relative drop (Figure 3).

Units: accuracies are fractions (.6251), their intervals clipped to [0, 1]; differences between
accuracies (boosts, drops) are percentage points (+1.6), as the paper reports them. Matched
statistics average each base network's runs first (kerastransfer.analysis.intervals).
"""

from collections.abc import Iterable, Sequence
from typing import Any, TypedDict

from kerastransfer import treatments
from kerastransfer.analysis.baselines import matched_points, unit_of
from kerastransfer.analysis.intervals import (
    Counts,
    compare,
    over_units,
    select,
    unit_means,
    without_ids,
)
from kerastransfer.analysis.records import best_k, group_order, is_base, ok_records
from kerastransfer.analysis.stats import Bounds, Summary, summarize
from kerastransfer.designs import split_group
from kerastransfer.workdir.records import AnyRecord, RunRecord

# The layer ranges of the paper's Table 1.
LAYER_RANGES = {"1-7": range(1, 8), "3-7": range(3, 8), "5-7": range(5, 8)}
ACCURACY_BOUNDS: Bounds = (0.0, 1.0)


class Cell(TypedDict):
    """One cell of cell_table: the ok runs of a split group, treatment, target and n."""

    group: str
    treatment: str
    target: str  # "all" where the halves are pooled
    n: int
    label: str
    best_k: Summary | None
    test_accuracy: Summary | None  # None: no run of the cell has one
    targets: dict[str, int]  # target half -> its runs in the cell
    units: int  # the base networks the cell's runs belong to


class Table1Row(TypedDict):
    """One layer range of the paper's Table 1, the paper's way (table1)."""

    layers: list[int]
    over_base: float | None
    over_selffer_ft: float | None
    counts: dict[str, int]  # networks pooled: AnB+, baseB and BnB+


def targeted_halves(records: Iterable[AnyRecord]) -> set[tuple[str, str]]:
    """(split, target) of every half that an ok run other than a base targets."""
    return {(r.split, r.target) for r in ok_records(records) if not is_base(r)}


def view(records: Iterable[AnyRecord], group: str) -> str:
    """The half whose point of view names split group `group`'s pooled cells: the one half its
    runs target, or "B" when they target both (the paper's convention: each half plays B)."""
    halves = {target for split, target in targeted_halves(records) if split_group(split) == group}
    return next(iter(halves)) if len(halves) == 1 else "B"


def pooled_bases(records: Iterable[AnyRecord], group: str) -> list[RunRecord]:
    """The ok base runs of split group `group` that its pooled base cell ("baseB") holds: the
    bases of the halves that the group's other runs target, or all of them if none is targeted."""
    ok = [r for r in ok_records(records) if split_group(r.split) == group]
    targeted = targeted_halves(ok)
    bases = [r for r in ok if is_base(r)]
    return [r for r in bases if (r.split, r.target) in targeted] if targeted else bases


def _metric_stats(members: Iterable[RunRecord], metric: str) -> Summary | None:
    """summarize() of `metric` over the records that have it, or None if none has it."""
    values = [getattr(r, metric) for r in members if getattr(r, metric) is not None]
    return summarize(values, bounds=ACCURACY_BOUNDS) if values else None


def cell_table(records: Iterable[AnyRecord], *, by_target: bool = False) -> list[Cell]:
    """Per (split group, treatment, target, n) statistics of best_k and test_accuracy over ok runs.

    Pooled over target halves (target "all"), as the paper's Figure 2 is, unless `by_target`:
    the A->B and B->A networks of a treatment share a cell, `targets` counts each direction
    (by the half it targets) and `units` the base networks (split x target half x seed) the
    cell's networks belong to.
    Pooled, the base cell holds the bases of the halves that the group's runs target (the
    paper's "baseB": each targeted half plays B); a base whose half no run targets (a source
    only, e.g. base A when every run targets B) keeps a cell of its own half. Labels are the
    paper's names seen from the target half (view()).
    """
    ok = ok_records(records)
    pooled = {
        r.run for group in {split_group(r.split) for r in ok} for r in pooled_bases(ok, group)
    }
    cells: dict[tuple[str, str, str, int], list[RunRecord]] = {}
    for r in ok:
        target = "all"
        if by_target or (is_base(r) and r.run not in pooled):
            target = r.target
        cells.setdefault((split_group(r.split), r.treatment, target, r.n), []).append(r)
    table: list[Cell] = []
    for (group, treatment, target, n), members in sorted(
        cells.items(),
        key=lambda item: (
            group_order(item[0][0]),
            treatments.ALL_NAMES.index(item[0][1]),
            item[0][2] != "all",
            item[0][2],
            item[0][3],
        ),
    ):
        table.append(
            {
                "group": group,
                "treatment": treatment,
                "target": target,
                "n": n,
                "label": treatments.display_name(
                    treatment, view(ok, group) if target == "all" else target
                ),
                "best_k": _metric_stats(members, "best_k"),
                "test_accuracy": _metric_stats(members, "test_accuracy"),
                "targets": target_counts(members),
                "units": len({unit_of(r) for r in members}),
            }
        )
    return table


def target_counts(members: Iterable[RunRecord]) -> dict[str, int]:
    """{target half: number of runs} of a cell's runs, halves in order (B first, as the
    paper's A->B direction): a pooled cell says how many networks of each direction it holds."""
    counts: dict[str, int] = {}
    for r in members:
        counts[r.target] = counts.get(r.target, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: (item[0] != "B", item[0])))


def find_cell(
    cells: Iterable[Cell], treatment: str, n: int, *, group: str = "random", target: str = "all"
) -> Cell | None:
    """The cell of `cells` (from cell_table) for treatment/n/group/target, or None."""
    for cell in cells:
        if (cell["treatment"], cell["n"], cell["group"], cell["target"]) == (
            treatment,
            n,
            group,
            target,
        ):
            return cell
    return None


def _pooled_points(values: Sequence[float]) -> float | None:
    """The mean of accuracies in points, or None for no values."""
    return 100.0 * sum(values) / len(values) if values else None


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def table1(records: Iterable[AnyRecord]) -> dict[str, Table1Row]:
    """The paper's Table 1, the paper's way: mean boost of AnB+ in points over base and over
    BnB+, per layer range.

    Pools the AnB+ networks of the range (random splits) and subtracts the pooled mean of the
    bases of the halves that the random splits' runs target (the paper's 8 "baseB"), or of the
    BnB+ networks of the range. No interval: pooled networks are not independent replicates
    (matched_table has the per-base-network version).
    """
    ok = [r for r in ok_records(records) if split_group(r.split) == "random"]
    bases = [best_k(r) for r in pooled_bases(ok, "random")]
    base = _pooled_points(bases)
    table: dict[str, Table1Row] = {}
    for name, layers in LAYER_RANGES.items():
        boosted, selffers = (
            [best_k(r) for r in ok if r.treatment == t and r.n in layers]
            for t in ("transfer_ft", "selffer_ft")
        )
        table[name] = {
            "layers": list(layers),
            "over_base": _minus(_pooled_points(boosted), base),
            "over_selffer_ft": _minus(_pooled_points(boosted), _pooled_points(selffers)),
            "counts": {
                name: len(networks)
                for name, networks in (
                    ("transfer_ft", boosted),
                    (treatments.BASE, bases),
                    ("selffer_ft", selffers),
                )
            },
        }
    return table


def matched_table(records: Sequence[AnyRecord]) -> dict[str, Any]:
    """Each run minus the base of its own split and target half, in points, per base network.

    `by_cell`: per (split group, treatment, n); `by_range`: per treatment and Table 1 range over
    the random splits; `anb_plus_vs_bnb_plus`: AnB+ against BnB+ both ways, the paper's pooled
    difference (Table 1) and the matched comparison (paired where they share split, target half,
    seed and n, else over the two sides' base networks), which removes the half-to-half variance
    the pooled one carries (every AnB+ of the paper targets a B half and every BnB+ an A half).
    """
    sources: dict[str, int] = {}
    matched, unmatched = matched_points(records, sources)
    keys = sorted(
        {(split_group(m.record.split), m.record.treatment, m.record.n) for m in matched},
        key=lambda k: (group_order(k[0]), treatments.ALL_NAMES.index(k[1]), k[2]),
    )
    by_cell = [
        {
            "group": group,
            "treatment": treatment,
            "n": n,
            "label": treatments.display_name(treatment, view(records, group)),
            **without_ids(over_units(select(matched, treatment, [n], group))),
        }
        for group, treatment, n in keys
    ]
    pooled = table1(records)
    by_range: dict[str, dict[str, Counts]] = {}
    versus: dict[str, dict[str, Any]] = {}
    for name, layers in LAYER_RANGES.items():
        by_range[name] = {
            treatments.get(t).paper_name: without_ids(over_units(select(matched, t, layers)))
            for t in treatments.COPIED
        }
        versus[name] = {
            "pooled": pooled[name]["over_selffer_ft"],
            "matched": without_ids(
                compare(
                    select(matched, "transfer_ft", layers),
                    select(matched, "selffer_ft", layers),
                    names=("AnB+", "BnB+"),
                )
            ),
        }
    return {
        "by_cell": by_cell,
        "by_range": by_range,
        "anb_plus_vs_bnb_plus": versus,
        "baseline_sources": sources,
        "unmatched_runs": unmatched,
    }


def relative_drop(records: Sequence[AnyRecord]) -> dict[str, Any]:
    """Figure 3's relative top-1 accuracy, per n, in points against each run's own base, over
    base networks.

    Three series: transfer (AnB) across the random splits, across the dissimilar split, and
    random frozen features (any split); each n's entry adds `unit_values`, the per-base-network
    means its statistics are taken over (the figure draws them where there are too few for a
    band). `at_top` compares the first two at the deepest n both
    have (the paper: about -8.3 vs -25.0 points at n = 7).
    """
    matched, _ = matched_points(records)

    def series(treatment: str, group: str | None) -> list[dict[str, Any]]:
        ns = sorted({v.key[-1] for v in select(matched, treatment, None, group)})
        cells = []
        for n in ns:
            values = select(matched, treatment, [n], group)
            cells.append(
                {
                    "n": n,
                    **without_ids(over_units(values)),
                    "unit_values": list(unit_means(values).values()),
                }
            )
        return cells

    result: dict[str, Any] = {
        "random_splits": series("transfer", "random"),
        "dissimilar": series("transfer", "dissimilar"),
        "random_features": series("random", None),
    }
    common = {c["n"] for c in result["random_splits"]} & {c["n"] for c in result["dissimilar"]}
    if common:
        top = max(common)
        pick = {
            name: next(c for c in result[name] if c["n"] == top)
            for name in ("random_splits", "dissimilar")
        }
        result["at_top"] = {
            "n": top,
            "random_splits": pick["random_splits"]["effect"],
            "dissimilar": pick["dissimilar"]["effect"],
        }
    else:
        result["at_top"] = None
    return result
