"""What the paper's figures draw: lines that each join points resting on the same base networks.

A design may give base networks different cells (under --design=findings the figure units
have a treatment at every n, the other units at one or two n), so the mean of a cell over all
its networks mixes base networks that differ from one n to the next, and a line through such
means shows the design's composition, not transfer. Here every series is cut by base network:
units (split x target half x seed) with runs at the same set of n form one group; the group
with the most n (then the most units) is the series' line, and every other group is drawn as
dots of its own. Each point's mean and 95% interval are over the units of its group (each unit
averages its own networks first), and a line's n = 0 anchor and Figure 2's dashed base line
are the bases of the same units.

Returned as analysis.json's `figure_lines`: a list of entries
    {"figure", "panel", "line", "series", "kind", "units", "points": [{"n", "units",
     "networks", "mean", "ci", "values"}]}
with kind "line" (joined), "dots" (the points of other base networks) or "base" (a dashed
reference: the bases of the lines in `belongs_to`). plots.py draws the figures from them.
"""

from collections.abc import Callable, Iterable, Sequence
from typing import TypedDict

from kerastransfer import treatments
from kerastransfer.analysis.baselines import Baselines, Unit, matched_points, unit_label, unit_of
from kerastransfer.analysis.records import best_k, is_base, ok_records
from kerastransfer.analysis.stats import Bounds, summarize
from kerastransfer.analysis.tables import view
from kerastransfer.designs import split_group
from kerastransfer.workdir.records import AnyRecord, RunRecord

NOUN = "base network"
ACCURACY_BOUNDS: Bounds = (0.0, 1.0)
# {unit: {n: [its values at n]}}: what a series' points are made of.
PointsByUnit = dict[Unit, dict[int, list[float]]]


class Point(TypedDict):
    """A figure point at n: the mean of its units' own means and the 95% interval over them."""

    n: int
    units: list[str]  # unit_label of each unit
    networks: int
    mean: float | None
    ci: list[float] | None
    values: list[float]  # each unit's mean


class FigureLine(TypedDict):
    """A line, a dot group or a base reference of a figure (module doc)."""

    figure: str
    panel: str
    line: str
    series: str
    kind: str  # "line", "dots" or "base"
    units: list[str]
    points: list[Point]


class BaseReference(FigureLine):
    """Figure 2's dashed base line, and the series of the lines it belongs to."""

    belongs_to: list[str]


# Figure 2 (transfer.png): the paper's four copied treatments on the random splits.
TRANSFER_SERIES = ("selffer", "selffer_ft", "transfer", "transfer_ft")
# Figure 3 (dissimilar.png): series key -> (treatment, split group or None for any, panel of
# its accuracies).
DISSIMILAR_SERIES = {
    "random_splits": ("transfer", "random", "accuracy"),
    "dissimilar": ("transfer", "dissimilar", "accuracy"),
    "random_features": ("random", None, "random_features"),
}


def _unit_order(unit: Unit) -> tuple[str, bool, str, int | str]:
    split, target, seed = unit
    return (split, target != "B", target, -1 if seed is None else seed)


def _point(
    n: int, unit_values: dict[Unit, list[float]], networks: int, bounds: Bounds | None = None
) -> Point:
    """A figure point at n: the mean of the units' own means and its interval over units."""
    units = sorted(unit_values, key=_unit_order)
    means = [sum(unit_values[u]) / len(unit_values[u]) for u in units]
    summary = summarize(means, noun=NOUN, bounds=bounds)
    return {
        "n": n,
        "units": [unit_label(u) for u in units],
        "networks": networks,
        "mean": summary["mean"],
        "ci": summary["ci"],
        "values": means,
    }


def unit_groups(points_by_unit: PointsByUnit) -> list[tuple[tuple[int, ...], list[Unit]]]:
    """[(layers, units)]: units with runs at the same n grouped, the group with the most n
    first (then the most units). `points_by_unit` is {unit: {n: [values]}}."""
    by_layers: dict[tuple[int, ...], list[Unit]] = {}
    for unit, per_n in points_by_unit.items():
        by_layers.setdefault(tuple(sorted(per_n)), []).append(unit)
    groups = [(layers, sorted(units, key=_unit_order)) for layers, units in by_layers.items()]
    return sorted(
        groups, key=lambda g: (-len(g[0]), -len(g[1]), g[0], [_unit_order(u) for u in g[1]])
    )


def _series(
    figure: str,
    panel: str,
    series: str,
    label: str,
    points_by_unit: PointsByUnit,
    anchor: Callable[[list[Unit]], Point] | None,
    bounds: Bounds | None,
) -> list[tuple[FigureLine, list[Unit]]]:
    """The entries of one series, its line and its dots, from {unit: {n: [values]}}, each
    with the units it rests on; `anchor(units)` gives the line's n = 0 point (None: the line
    starts at its first n)."""
    entries = []
    for index, (layers, units) in enumerate(unit_groups(points_by_unit)):
        points = [
            _point(
                n,
                {u: points_by_unit[u][n] for u in units},
                sum(len(points_by_unit[u][n]) for u in units),
                bounds,
            )
            for n in layers
        ]
        kind = "line" if index == 0 else "dots"
        if kind == "line" and anchor is not None:
            points.insert(0, anchor(units))
        entry: FigureLine = {
            "figure": figure,
            "panel": panel,
            "line": label,
            "series": series,
            "kind": kind,
            "units": [unit_label(u) for u in units],
            "points": points,
        }
        entries.append((entry, units))
    return entries


def _by_unit(pairs: Iterable[tuple[RunRecord, float]]) -> PointsByUnit:
    """{unit: {n: [values]}} of (record, value) pairs."""
    grouped: PointsByUnit = {}
    for record, value in pairs:
        grouped.setdefault(unit_of(record), {}).setdefault(record.n, []).append(value)
    return grouped


def figure_lines(records: Sequence[AnyRecord]) -> list[FigureLine]:
    """Every line, dot group and base reference that Figures 2 and 3 draw (module doc), from
    normalized run records."""
    ok = ok_records(records)
    baselines = Baselines(records)
    base_of: dict[Unit, float] = {}
    for r in ok:
        if not is_base(r):
            base = baselines.lookup(r)[0]
            if base is not None:
                base_of[unit_of(r)] = base

    def base_anchor(units: Sequence[Unit]) -> Point:
        return _point(0, {u: [base_of[u]] for u in units}, len(units), ACCURACY_BOUNDS)

    def zero_anchor(units: Sequence[Unit]) -> Point:
        point = _point(0, {u: [0.0] for u in units}, len(units))
        return {**point, "ci": None}

    entries: list[FigureLine] = []
    transfer_lines: list[tuple[FigureLine, list[Unit]]] = []
    for name in TRANSFER_SERIES:
        runs = [
            (r, best_k(r))
            for r in ok
            if r.treatment == name and split_group(r.split) == "random" and unit_of(r) in base_of
        ]
        series = _series(
            "transfer",
            "accuracy",
            name,
            treatments.display_name(name, view(ok, "random")),
            _by_unit(runs),
            None,
            ACCURACY_BOUNDS,
        )
        transfer_lines += [(e, units) for e, units in series if e["kind"] == "line"]
        entries += [e for e, _ in series]
    entries += _base_references(transfer_lines, base_anchor)

    matched, _ = matched_points(records)
    for key, (name, group, panel) in DISSIMILAR_SERIES.items():
        chosen = [
            m
            for m in matched
            if m.record.treatment == name
            and (group is None or split_group(m.record.split) == group)
            and unit_of(m.record) in base_of
        ]
        label = treatments.display_name(name, "B")
        for panel_name, values, anchor, bounds in (
            (panel, [(m.record, best_k(m.record)) for m in chosen], base_anchor, ACCURACY_BOUNDS),
            ("relative", [(m.record, m.points) for m in chosen], zero_anchor, None),
        ):
            series = _series("dissimilar", panel_name, key, label, _by_unit(values), anchor, bounds)
            entries += [e for e, _ in series]
    return entries


def _base_references(
    lines: Iterable[tuple[FigureLine, list[Unit]]],
    base_anchor: Callable[[Sequence[Unit]], Point],
) -> list[BaseReference]:
    """Figure 2's dashed base lines: one per set of units that its lines rest on (`lines`:
    (entry, units) pairs), naming the lines it belongs to."""
    by_units: dict[tuple[Unit, ...], list[str]] = {}
    for line, line_units in lines:
        by_units.setdefault(tuple(line_units), []).append(line["series"])
    references: list[BaseReference] = []
    for units, series in by_units.items():
        point = base_anchor(units)
        references.append(
            {
                "figure": "transfer",
                "panel": "accuracy",
                "line": "base",
                "series": treatments.BASE,
                "kind": "base",
                "belongs_to": series,
                "units": point["units"],
                "points": [point],
            }
        )
    return references
