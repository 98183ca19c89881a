"""The paper's figures: Figure 2 (transfer.png/.pdf), Figure 3 (dissimilar.png/.pdf), and a
CKA heatmap helper.

The lines, their means and intervals are the analysis dict's "figure_lines"
(analysis.figure_lines: every line joins points that rest on the same base networks); its
records (normalized run dicts, kerastransfer.workdir.results) give one dot per network, only
status "ok" runs drawn. The analysis of the paper's own records
(analysis.load_paper_csv()) draws the paper's figures from its published numbers; an analysis
with a "reference" draws the paper's lines faintly behind a reproduction. Uses matplotlib's
Agg backend, so no display is needed.
"""

import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from kerastransfer import treatments  # noqa: E402
from kerastransfer.analysis.figure_lines import TRANSFER_SERIES  # noqa: E402
from kerastransfer.analysis.records import is_base, ok_records  # noqa: E402
from kerastransfer.analysis.tables import find_cell, pooled_bases  # noqa: E402
from kerastransfer.designs import split_group  # noqa: E402
from kerastransfer.reporting.formats import MISSING  # noqa: E402
from kerastransfer.workdir import files  # noqa: E402
from kerastransfer.workdir.records import AnyRecord, RunRecord  # noqa: E402

X_LABEL = "Layer n at which network is chopped and retrained"
LAYERS = range(1, 8)

# Figure 2's treatments, in the paper's legend order; each is drawn in its own style
# (treatments: the same colour in every figure).
FIGURE2 = TRANSFER_SERIES
BASE_STYLE = treatments.get(treatments.BASE).style

# Figure 3's series: key in the analysis's relative_drop, legend name, colour.
FIGURE3 = (
    ("random_splits", "transfer AnB, random A/B splits", "#8b0000"),
    ("dissimilar", "transfer AnB, dissimilar split", "#d07000"),
    ("random_features", "random frozen features", "#505050"),
)
REFERENCE_NOTE = "Yosinski et al. 2014 (faint, dotted)"
# Confidence bands are drawn from this many base networks on: a t(1) band of two is 12.7 sd wide.
BAND_UNITS = 3
ACCURACY_BOUNDS = (0.0, 1.0)
# A band to shade: (xs, lows, highs, colour); a NaN low and high: no band at that x.
Band = tuple[Sequence[float], Sequence[float], Sequence[float], str]


def plot_figures(
    figures_dir: str, result: Mapping[str, Any], records: Sequence[AnyRecord]
) -> list[str]:
    """Draws every figure of a study into `figures_dir` from its analysis dict `result` and
    the normalized `records` it was computed from; returns the paths written."""
    return plot_transfer(figures_dir, result, records) + plot_dissimilar(
        figures_dir, result, records
    )


def save_figure(fig: Figure, figures_dir: str, stem: str) -> list[str]:
    """Writes `fig` as stem.png and stem.pdf atomically and closes it; returns both paths."""
    paths = []
    for ext in ("png", "pdf"):
        path = os.path.join(figures_dir, f"{stem}.{ext}")
        with files.atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def _jitter(count: int, seed: int) -> np.ndarray:
    """Horizontal offsets that spread `count` overlapping dots; fixed seed, so figures repeat."""
    return np.random.default_rng(seed).uniform(-0.06, 0.06, count)


def _band(count: int, ci: Sequence[float] | None) -> tuple[float, float]:
    """(low, high) of a CI drawn as a band: only over BAND_UNITS or more base networks, else
    (nan, nan), no band."""
    return (ci[0], ci[1]) if ci is not None and count >= BAND_UNITS else (np.nan, np.nan)


def _fill_clipped(
    axis: Axes,
    xs: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    limits: tuple[float, float],
    colour: str,
) -> bool:
    """Shades the bands (lows, highs) cut to `limits` (the range the panel shows, within the
    data's own bounds), so no band leaves it; returns True when one had to be cut."""
    low, high = np.asarray(lows, dtype=float), np.asarray(highs, dtype=float)
    with np.errstate(invalid="ignore"):
        cut = bool(np.any(low < limits[0]) or np.any(high > limits[1]))
    axis.fill_between(
        xs,
        np.clip(low, *limits),
        np.clip(high, *limits),
        color=colour,
        alpha=0.18,
        linewidth=0,
    )
    return cut


def _draw_bands(
    axis: Axes, bands: Iterable[Band], limits: tuple[float, float], few: bool, few_label: str
) -> bool:
    """Shades every (xs, lows, highs, colour) band cut to `limits`; when some cells have no
    band (`few`), adds their hollow dots to the legend as `few_label`. Returns True when a
    band had to be cut."""
    cut = False
    for xs, lows, highs, colour in bands:
        cut |= _fill_clipped(axis, xs, lows, highs, limits, colour)
    if few:
        axis.scatter(
            [],
            [],
            s=14,
            facecolor="none",
            edgecolor=BASE_STYLE.colour,
            label=f"{few_label} (no band)",
        )
    return cut


def _band_note(few: bool, cut: bool) -> str:
    """The caption's words after "bands from BAND_UNITS base networks": on cells without a
    band (`few`) and on bands cut at the panel's edge (`cut`)."""
    return "".join(
        [
            "; fewer: their dots, no band" if few else "",
            "; bands cut at the panel's edge" if cut else "",
        ]
    )


def _entries(
    lines: Iterable[Mapping[str, Any]],
    figure: str,
    panel: str,
    series: str | None = None,
    kind: str | None = None,
) -> list[Mapping[str, Any]]:
    """The `figure_lines` entries (analysis.figure_lines) of one figure's panel, optionally of
    one series and kind ("line", "dots", "base")."""
    return [
        e
        for e in lines
        if e["figure"] == figure
        and e["panel"] == panel
        and (series is None or e["series"] == series)
        and (kind is None or e["kind"] == kind)
    ]


def _means(entry: Mapping[str, Any]) -> tuple[list[int], list[float]]:
    """(n values, means) of a figure line's points."""
    return [p["n"] for p in entry["points"]], [p["mean"] for p in entry["points"]]


def _units_text(entry: Mapping[str, Any]) -> str:
    """ "2 base networks" of a figure line, dot group or base reference."""
    count = len(entry["units"])
    return f"{count} base network{'s' if count != 1 else ''}"


def _draw_line(
    axis: Axes, entry: Mapping[str, Any], colour: str, label: str, bands: list[Band]
) -> bool:
    """A line through its points' means; its band (appended to `bands`) where a point rests
    on BAND_UNITS or more base networks, else the point's per-unit values as small hollow
    dots. Returns True when a point had no band."""
    points = entry["points"]
    xs, means = _means(entry)
    axis.plot(xs, means, color=colour, linewidth=2, zorder=2, label=label)
    limits = [_band(len(p["units"]), p["ci"]) for p in points]
    bands.append((xs, [low for low, _ in limits], [high for _, high in limits], colour))
    few = False
    for seed, (point, (low, _)) in enumerate(zip(points, limits)):
        if np.isnan(low) and point["ci"] is not None:
            few = True
            axis.scatter(
                point["n"] + _jitter(len(point["values"]), seed + 20),
                point["values"],
                s=14,
                facecolor="none",
                edgecolor=colour,
                linewidth=1,
                zorder=3,
            )
    return few


def _draw_dots(axis: Axes, entry: Mapping[str, Any], colour: str, label: str) -> None:
    """A dot group (the points of other base networks than its series' line): a hollow
    diamond at each point's mean, with its 95% CI as an error bar from BAND_UNITS units on."""
    for index, point in enumerate(entry["points"]):
        low, high = _band(len(point["units"]), point["ci"])
        error = None if np.isnan(low) else [[point["mean"] - low], [high - point["mean"]]]
        axis.errorbar(
            point["n"] + 0.12,
            point["mean"],
            yerr=error,
            fmt="D",
            markersize=6,
            markerfacecolor="white",
            markeredgecolor=colour,
            ecolor=colour,
            elinewidth=1,
            capsize=2,
            zorder=4,
            label=label if index == 0 else None,
        )


def _dots_label(name: str, entry: Mapping[str, Any]) -> str:
    """ "BnB at n=4,7 on 2 other base networks" of a dot group."""
    layers = ",".join(str(p["n"]) for p in entry["points"])
    return f"{name} at n={layers} on {len(entry['units'])} other base networks"


def _random_split_runs(records: Iterable[AnyRecord], treatment: str) -> list[RunRecord]:
    """ok runs of `treatment` on the random splits."""
    return [
        r
        for r in ok_records(records)
        if r.treatment == treatment and split_group(r.split) == "random"
    ]


def _directions_note(
    records: Iterable[AnyRecord], treatments: Collection[str], group: str = "random"
) -> str:
    """ "; both directions pooled, networks targeting 28 B, 28 A" when the group's networks of
    `treatments` target both halves, as the paper's do; "" otherwise."""
    counts: dict[str, int] = {}
    for r in ok_records(records):
        if r.treatment in treatments and split_group(r.split) == group:
            counts[r.target] = counts.get(r.target, 0) + 1
    if len(counts) < 2:
        return ""
    listed = ", ".join(f"{counts[h]} {h}" for h in sorted(counts, key=lambda h: h != "B"))
    return f"; both directions pooled, networks targeting {listed}"


def plot_transfer(
    figures_dir: str,
    result: Mapping[str, Any],
    records: Sequence[AnyRecord],
    *,
    stem: str = "transfer",
) -> list[str]:
    """The paper's Figure 2: top-1 accuracy against n for baseB, BnB, BnB+, AnB and AnB+.

    Top: one dot per network (at n = 0, white, the bases of the halves the runs target), and
    each treatment's line; A->B and B->A networks pooled, as in the paper. Bottom: each
    treatment's line with shaded 95% CIs where a point rests on BAND_UNITS or more base
    networks (cut at the panel, which spans the dots, within [0, 1]); a point on fewer shows
    its base networks' values as small hollow dots, and the legend says so. Every line joins
    points that rest on the same base networks, and the legend says how many; the points of
    other base networks are hollow diamonds of their own, and the dashed base line is the
    bases of the lines it belongs to (`result`'s "figure_lines", analysis.figure_lines).
    `result`'s "reference" adds the paper's lines, faint and dotted, on a right-hand axis of
    their own (another dataset's accuracies live on another scale). Returns the PNG and PDF
    paths.
    """
    lines = result["figure_lines"]
    metric = f"Top-1 accuracy ({result['metric']['description']})"
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8.5, 9.5), sharex=True)

    bases = [r.best_k for r in pooled_bases(records, "random")]
    base_cell = find_cell(result["cells"], "base", 0)
    base_label = base_cell["label"] if base_cell else "baseB"
    if bases:
        top.scatter(
            np.zeros(len(bases)) + _jitter(len(bases), 0),
            bases,
            s=36,
            facecolor=BASE_STYLE.face,
            edgecolor=BASE_STYLE.colour,
            linewidth=1.2,
            zorder=3,
            label=base_label,
        )
    bands: list[Band] = []
    few = False
    colours: dict[str, str] = {}
    for offset, treatment in zip((-0.15, -0.05, 0.05, 0.15), FIGURE2):
        style = treatments.get(treatment).style
        name, face, edge = style.legend, style.face, style.colour
        runs = _random_split_runs(records, treatment)
        if not runs:
            continue
        colours[treatment] = edge
        x = np.array([r.n for r in runs], dtype=float) + offset + _jitter(len(runs), 1)
        y = np.array([r.best_k for r in runs])
        top.scatter(x, y, s=22, facecolor=face, edgecolor=edge, alpha=0.75, zorder=3, label=name)
        for entry in _entries(lines, "transfer", "accuracy", treatment, "line"):
            top.plot(
                *_means(entry),
                color=edge,
                linewidth=2,
                zorder=2,
            )
            few |= _draw_line(bottom, entry, edge, f"{name} ({_units_text(entry)})", bands)
        for entry in _entries(lines, "transfer", "accuracy", treatment, "dots"):
            _draw_dots(bottom, entry, edge, _dots_label(name, entry))

    references = _entries(lines, "transfer", "accuracy", kind="base")
    for entry in references:
        point = entry["points"][0]
        owners = [t for t in entry["belongs_to"] if t in colours]
        colour = BASE_STYLE.colour if len(references) == 1 or not owners else colours[owners[0]]
        low, high = _band(len(point["units"]), point["ci"])
        if not np.isnan(low):
            bands.append(([-0.5, 7.5], [low, low], [high, high], colour))
        whose = (
            ""
            if len(references) == 1
            else " of " + ", ".join(treatments.display_name(t, "B") for t in entry["belongs_to"])
        )
        for axis in (top, bottom):
            axis.axhline(
                point["mean"],
                color=colour,
                linestyle="--",
                linewidth=1,
                zorder=1,
                label=f"{base_label} mean{whose} ({_units_text(entry)})"
                if axis is bottom
                else None,
            )

    bottom.set_ylim(top.get_ylim())  # the same scale as the dots; the bands are cut to it
    low, high = bottom.get_ylim()
    limits = (max(low, ACCURACY_BOUNDS[0]), min(high, ACCURACY_BOUNDS[1]))
    cut = _draw_bands(bottom, bands, limits, few, f"base networks of a point with < {BAND_UNITS}")
    if result["reference"] is not None:
        _overlay_reference_means(bottom, result["reference"]["figure_lines"])

    pooled = _directions_note(records, FIGURE2)
    top.set_title(
        f"Transfer across random splits, one dot per network ({len(bases)} "
        f"{base_label} network{'s' if len(bases) != 1 else ''}{pooled})",
        fontsize=10,
    )
    bottom.set_title(
        "Means over base networks; each line on one set of them, other base networks as "
        f"diamonds\n(95% CI bands from {BAND_UNITS} base networks{_band_note(few, cut)})",
        fontsize=10,
    )
    for axis in (top, bottom):
        axis.set_ylabel(metric if axis is top else "Top-1 accuracy (mean over base networks)")
        axis.set_xlim(-0.5, 7.5)
        axis.set_xticks(range(0, 8))
        axis.grid(alpha=0.3)
    top.legend(loc="best", fontsize=8, framealpha=0.9)
    bottom.legend(loc="best", fontsize=7, framealpha=0.9, ncol=2)
    bottom.set_xlabel(X_LABEL)
    if not result["cells"]:
        top.text(0.5, 0.5, "no successful runs", transform=top.transAxes, ha="center")
    fig.tight_layout()
    return save_figure(fig, figures_dir, stem)


def _overlay_reference_means(axis: Axes, lines: Iterable[Mapping[str, Any]]) -> None:
    """The paper's Figure 2 lines and base references (its analysis's `figure_lines`), faint
    and dotted, on a twin y axis at the right."""
    twin = axis.twinx()
    for treatment in FIGURE2:
        for entry in _entries(lines, "transfer", "accuracy", treatment, "line"):
            twin.plot(
                *_means(entry),
                color=treatments.get(treatment).style.colour,
                linestyle=":",
                linewidth=1.5,
                alpha=0.45,
            )
    for entry in _entries(lines, "transfer", "accuracy", kind="base"):
        twin.axhline(
            entry["points"][0]["mean"],
            color=BASE_STYLE.colour,
            linestyle=":",
            linewidth=1,
            alpha=0.45,
        )
    twin.set_ylabel(f"Top-1 accuracy, {REFERENCE_NOTE}", color="#808080", fontsize=8)
    twin.tick_params(axis="y", colors="#808080", labelsize=8)
    # Keep `axis` (its lines and legend) above the faint twin.
    axis.set_zorder(twin.get_zorder() + 1)
    axis.patch.set_visible(False)
    axis.plot(
        [], [], color="#808080", linestyle=":", alpha=0.6, label=f"{REFERENCE_NOTE}, right axis"
    )


def _series_runs(ok: Sequence[RunRecord], treatment: str, group: str | None) -> list[RunRecord]:
    """ok runs of `treatment` on split group `group` (None: any), and the bases of the halves
    they target."""
    runs = [
        r
        for r in ok
        if r.treatment == treatment and (group is None or split_group(r.split) == group)
    ]
    halves = {(r.split, r.target) for r in runs}
    return [r for r in ok if is_base(r) and (r.split, r.target) in halves] + runs


def plot_dissimilar(
    figures_dir: str,
    result: Mapping[str, Any],
    records: Sequence[AnyRecord],
    *,
    stem: str = "dissimilar",
) -> list[str]:
    """The paper's Figure 3: how much transfer loses, by task distance, and random features.

    Top left: AnB accuracy per network across the random splits and across the dissimilar
    split; top right: random frozen features; white dots: the bases of the halves they
    target. Bottom: relative top-1 accuracy (each run minus its own split and target base,
    in points), means over base networks with 95% CIs where there are BAND_UNITS or more, cut
    to the range the panel shows (the lines and dots set it, never a band); a point with
    fewer shows its base networks' values as small hollow dots, and the legend says so.
    Every line joins points that rest on the same base networks, from its n = 0 anchor (their
    bases; 0 in the relative panel), and the legend says how many; the points of other base
    networks are hollow diamonds of their own (`result`'s "figure_lines"). `result`'s
    "reference" adds the paper's relative lines, faint and dotted.
    """
    ok = ok_records(records)
    lines = result["figure_lines"]
    fig = plt.figure(figsize=(10, 9))
    grid = fig.add_gridspec(2, 2)
    absolute, random_panel = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    relative = fig.add_subplot(grid[1, :])

    bands: list[Band] = []
    few = False
    selections = {
        "random_splits": ("transfer", "random", "accuracy"),
        "dissimilar": ("transfer", "dissimilar", "accuracy"),
        "random_features": ("random", None, "random_features"),
    }
    for seed, (key, name, colour) in enumerate(FIGURE3):
        treatment, group, panel = selections[key]
        runs = _series_runs(ok, treatment, group)
        if all(is_base(r) for r in runs):
            continue
        axis = random_panel if key == "random_features" else absolute
        ns = np.array([r.n for r in runs], dtype=float)
        accuracies = np.array([r.best_k for r in runs])
        at_zero = ns == 0
        axis.scatter(
            ns[~at_zero] + _jitter(int((~at_zero).sum()), seed),
            accuracies[~at_zero],
            s=22,
            color=colour,
            alpha=0.7,
            zorder=3,
            label=name,
        )
        axis.scatter(
            ns[at_zero] + _jitter(int(at_zero.sum()), seed + 10),
            accuracies[at_zero],
            s=36,
            facecolor=BASE_STYLE.face,
            edgecolor=colour,
            linewidth=1.2,
            zorder=3,
        )
        for entry in _entries(lines, "dissimilar", panel, key, "line"):
            axis.plot(
                *_means(entry),
                color=colour,
                linewidth=2,
                zorder=2,
                label=f"mean ({_units_text(entry)})",
            )
        for entry in _entries(lines, "dissimilar", panel, key, "dots"):
            _draw_dots(axis, entry, colour, _dots_label("mean", entry))
        for entry in _entries(lines, "dissimilar", "relative", key, "line"):
            few |= _draw_line(relative, entry, colour, f"{name} ({_units_text(entry)})", bands)
        for entry in _entries(lines, "dissimilar", "relative", key, "dots"):
            _draw_dots(relative, entry, colour, _dots_label(name, entry))

    if result["reference"] is not None:
        for key, _, colour in FIGURE3:
            for entry in _entries(
                result["reference"]["figure_lines"], "dissimilar", "relative", key, "line"
            ):
                relative.plot(
                    *_means(entry),
                    color=colour,
                    linestyle=":",
                    linewidth=1.5,
                    alpha=0.45,
                )
        relative.plot([], [], color="#808080", linestyle=":", alpha=0.6, label=REFERENCE_NOTE)
    # The panel spans the lines and dots (and 0); the bands are cut to it, never widen it.
    relative.axhline(0.0, color="#909090", linewidth=1)
    limits = relative.get_ylim()  # autoscaled to what is drawn so far: no band yet
    relative.set_ylim(limits)
    cut = _draw_bands(relative, bands, limits, few, f"base networks of a point with < {BAND_UNITS}")

    absolute.set_title("Transfer by task distance (white: the bases of the targeted halves)")
    random_panel.set_title("Random frozen features (white: their bases)")
    relative.set_title(
        "Relative to each run's own base, means over base networks; each line on one set of "
        f"them\n(95% CI bands from {BAND_UNITS} base networks{_band_note(few, cut)})",
        fontsize=10,
    )
    for axis in (absolute, random_panel):
        axis.set_ylabel("Top-1 accuracy")
        axis.set_xticks(range(0, 8))
        axis.set_xlim(-0.5, 7.5)
        axis.grid(alpha=0.3)
        if axis.has_data():
            axis.legend(loc="best", fontsize=7, framealpha=0.9)
        else:
            axis.text(0.5, 0.5, "no runs", transform=axis.transAxes, ha="center")
        axis.set_xlabel(X_LABEL, fontsize=8)
    relative.set_xticks(range(0, 8))
    relative.set_xlim(-0.3, 7.3)
    relative.set_ylabel("Relative top-1 accuracy (points vs. own base)")
    relative.set_xlabel(X_LABEL)
    relative.grid(alpha=0.3)
    if relative.get_legend_handles_labels()[0]:
        relative.legend(loc="best", fontsize=8, framealpha=0.9)
    fig.tight_layout()
    return save_figure(fig, figures_dir, stem)


def plot_cka(
    matrix: npt.ArrayLike,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    path: str,
    *,
    title: str = "Linear CKA",
) -> str:
    """Heatmap of a CKA matrix (rows: row_labels, columns: col_labels), values written in cells
    (NaN, an undefined CKA, as MISSING).

    Writes `path` (its extension picks the format) atomically and returns it.
    """
    values = np.asarray(matrix, dtype=float)
    if values.shape != (len(row_labels), len(col_labels)):
        raise ValueError(
            f"plot_cka: matrix shape {values.shape} does not match "
            f"{len(row_labels)} row and {len(col_labels)} column labels"
        )
    fig, axis = plt.subplots(figsize=(1.0 + 0.8 * len(col_labels), 1.0 + 0.7 * len(row_labels)))
    image = axis.imshow(values, vmin=0.0, vmax=1.0, cmap="magma")
    axis.set_xticks(range(len(col_labels)), col_labels, rotation=45, ha="right")
    axis.set_yticks(range(len(row_labels)), row_labels)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            axis.text(
                j,
                i,
                MISSING if np.isnan(values[i, j]) else f"{values[i, j]:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="black" if values[i, j] > 0.6 else "white",
            )
    fig.colorbar(image, ax=axis, label="CKA")
    axis.set_title(title)
    fig.tight_layout()
    with files.atomic_path(path) as tmp:
        fig.savefig(
            tmp, format=os.path.splitext(path)[1][1:] or "png", dpi=150, bbox_inches="tight"
        )
    plt.close(fig)
    return path
