"""The paper's figures: Figure 2 (transfer.png/.pdf), Figure 3 (dissimilar.png/.pdf), and a
CKA heatmap helper.

The means, intervals and relative drops are the analysis dict's (analysis.analyze's "cells"
and "relative_drop"); its records (normalized run dicts, kerastransfer.workdir.results) give
one dot per network, only status "ok" runs drawn. The analysis of the paper's own records
(analysis.load_paper_csv()) draws the paper's figures from its published numbers; an analysis
with a "reference" draws the paper's lines faintly behind a reproduction. Uses matplotlib's
Agg backend, so no display is needed.
"""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from kerastransfer.analysis.records import ok_records  # noqa: E402
from kerastransfer.analysis.tables import find_cell, pooled_bases  # noqa: E402
from kerastransfer.designs import split_group  # noqa: E402
from kerastransfer.reporting.formats import MISSING  # noqa: E402
from kerastransfer.workdir import files  # noqa: E402

X_LABEL = "Layer n at which network is chopped and retrained"
LAYERS = range(1, 8)

# Figure 2's treatments, in the paper's legend order, colours and legend names.
FIGURE2 = (
    # treatment, legend name, marker face, marker edge / line colour
    ("selffer", "selffer BnB", "#1f2f8f", "#1f2f8f"),
    ("selffer_ft", "selffer BnB$^+$", "#7fb2e5", "#4f8fd0"),
    ("transfer", "transfer AnB", "#8b0000", "#8b0000"),
    ("transfer_ft", "transfer AnB$^+$", "#ef6f8a", "#e0486a"),
)
BASE_FACE, BASE_EDGE = "white", "#707070"
# The recipes' colour in every figure that draws them (treatments.RECIPES).
RECIPE_COLOURS = {
    "probe": "tab:brown",
    "surgical": "tab:olive",
    "layer_decay": "tab:cyan",
    "lp_ft": "tab:pink",
}

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


def plot_figures(figures_dir, result, records):
    """Draws every figure of a study into `figures_dir` from its analysis dict `result` and
    the normalized `records` it was computed from; returns the paths written."""
    return plot_transfer(figures_dir, result, records) + plot_dissimilar(
        figures_dir, result, records
    )


def save_figure(fig, figures_dir, stem):
    """Writes `fig` as stem.png and stem.pdf atomically and closes it; returns both paths."""
    paths = []
    for ext in ("png", "pdf"):
        path = os.path.join(figures_dir, f"{stem}.{ext}")
        with files.atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def _jitter(count, seed):
    """Horizontal offsets that spread `count` overlapping dots; fixed seed, so figures repeat."""
    return np.random.default_rng(seed).uniform(-0.06, 0.06, count)


def _band(count, ci):
    """(low, high) of a CI drawn as a band: only over BAND_UNITS or more base networks, else
    (nan, nan), no band."""
    return tuple(ci) if ci is not None and count >= BAND_UNITS else (np.nan, np.nan)


def _fill_clipped(axis, xs, lows, highs, limits, colour):
    """Shades the bands (lows, highs) cut to `limits` (the range the panel shows, within the
    data's own bounds), so no band leaves it; returns True when one had to be cut."""
    lows, highs = np.asarray(lows, dtype=float), np.asarray(highs, dtype=float)
    with np.errstate(invalid="ignore"):
        cut = bool(np.any(lows < limits[0]) or np.any(highs > limits[1]))
    axis.fill_between(
        xs,
        np.clip(lows, *limits),
        np.clip(highs, *limits),
        color=colour,
        alpha=0.18,
        linewidth=0,
    )
    return cut


def _draw_bands(axis, bands, limits, few, few_label):
    """Shades every (xs, lows, highs, colour) band cut to `limits`; when some cells have no
    band (`few`), adds their hollow dots to the legend as `few_label`. Returns True when a
    band had to be cut."""
    cut = False
    for xs, lows, highs, colour in bands:
        cut |= _fill_clipped(axis, xs, lows, highs, limits, colour)
    if few:
        axis.scatter(
            [], [], s=14, facecolor="none", edgecolor=BASE_EDGE, label=f"{few_label} (no band)"
        )
    return cut


def _band_note(few, cut):
    """The caption's words after "bands from BAND_UNITS base networks": on cells without a
    band (`few`) and on bands cut at the panel's edge (`cut`)."""
    return "".join(
        [
            "; fewer: their dots, no band" if few else "",
            "; bands cut at the panel's edge" if cut else "",
        ]
    )


def _means(cells, treatment, group="random"):
    """(n values, means, CI lows, CI highs, n values of cells with no band) of a treatment's
    pooled cells; nan: no band (fewer than BAND_UNITS base networks)."""
    rows = [
        c
        for c in cells
        if c["treatment"] == treatment
        and c["group"] == group
        and c["target"] == "all"
        and c["n"] in LAYERS
    ]
    bands = [_band(c.get("units", c["best_k"]["count"]), c["best_k"]["ci"]) for c in rows]
    return (
        [c["n"] for c in rows],
        [c["best_k"]["mean"] for c in rows],
        [low for low, _ in bands],
        [high for _, high in bands],
        [c["n"] for c, (low, _) in zip(rows, bands) if np.isnan(low)],
    )


def _random_split_runs(records, treatment):
    """ok runs of `treatment` on the random splits."""
    return [
        r
        for r in ok_records(records)
        if r["treatment"] == treatment and split_group(r["split"]) == "random"
    ]


def _directions_note(records, treatments, group="random"):
    """ "; both directions pooled, networks targeting 28 B, 28 A" when the group's networks of
    `treatments` target both halves, as the paper's do; "" otherwise."""
    counts = {}
    for r in ok_records(records):
        if r["treatment"] in treatments and split_group(r["split"]) == group:
            counts[r["target"]] = counts.get(r["target"], 0) + 1
    if len(counts) < 2:
        return ""
    listed = ", ".join(f"{counts[h]} {h}" for h in sorted(counts, key=lambda h: h != "B"))
    return f"; both directions pooled, networks targeting {listed}"


def plot_transfer(figures_dir, result, records, *, stem="transfer"):
    """The paper's Figure 2: top-1 accuracy against n for baseB, BnB, BnB+, AnB and AnB+.

    Top: one dot per network (at n = 0, white, the bases of the halves the runs target), lines
    through the means; A->B and B->A networks pooled, as in the paper. Bottom: the mean lines
    with shaded 95% CIs where a cell has BAND_UNITS or more base networks (cut at the panel,
    which spans the dots, within [0, 1]); a cell with fewer shows its networks as small hollow
    dots instead, and the legend says so; the base mean as a dashed line. The means and bands
    are `result`'s cells, the dots `records`' networks; `result`'s "reference" adds the
    paper's mean lines, faint and dotted, on a right-hand axis of their own (another
    dataset's accuracies live on another scale). Returns the PNG and PDF paths.
    """
    cells = result["cells"]
    metric = f"Top-1 accuracy ({result['metric']['description']})"
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8.5, 9.5), sharex=True)

    bases = [r["best_k"] for r in pooled_bases(records, "random")]
    base_cell = find_cell(cells, "base", 0)
    base_label = base_cell["label"] if base_cell else "baseB"
    if bases:
        top.scatter(
            np.zeros(len(bases)) + _jitter(len(bases), 0),
            bases,
            s=36,
            facecolor=BASE_FACE,
            edgecolor=BASE_EDGE,
            linewidth=1.2,
            zorder=3,
            label=base_label,
        )
    bands, few = [], False
    for offset, (treatment, name, face, edge) in zip((-0.15, -0.05, 0.05, 0.15), FIGURE2):
        runs = _random_split_runs(records, treatment)
        if not runs:
            continue
        x = np.array([r["n"] for r in runs], dtype=float) + offset + _jitter(len(runs), 1)
        y = np.array([r["best_k"] for r in runs])
        top.scatter(x, y, s=22, facecolor=face, edgecolor=edge, alpha=0.75, zorder=3, label=name)
        ns, means, lows, highs, bandless = _means(cells, treatment)
        for axis in (top, bottom):
            axis.plot(
                ns, means, color=edge, linewidth=2, zorder=2, label=name if axis is bottom else None
            )
        alone = np.isin([r["n"] for r in runs], bandless)
        if alone.any():
            few = True
            bottom.scatter(
                x[alone], y[alone], s=14, facecolor="none", edgecolor=edge, linewidth=1, zorder=3
            )
        bands.append((ns, lows, highs, edge))

    if base_cell:
        stats = base_cell["best_k"]
        low, high = _band(base_cell.get("units", stats["count"]), stats["ci"])
        if not np.isnan(low):
            bands.append(([-0.5, 7.5], [low, low], [high, high], BASE_EDGE))
        elif bases:
            few = True
            bottom.scatter(
                np.zeros(len(bases)) + _jitter(len(bases), 0),
                bases,
                s=14,
                facecolor="none",
                edgecolor=BASE_EDGE,
                linewidth=1,
                zorder=3,
            )
        for axis in (top, bottom):
            axis.axhline(
                stats["mean"],
                color=BASE_EDGE,
                linestyle="--",
                linewidth=1,
                zorder=1,
                label=f"{base_label} mean" if axis is bottom else None,
            )

    bottom.set_ylim(top.get_ylim())  # the same scale as the dots; the bands are cut to it
    low, high = bottom.get_ylim()
    limits = (max(low, ACCURACY_BOUNDS[0]), min(high, ACCURACY_BOUNDS[1]))
    cut = _draw_bands(
        bottom, bands, limits, few, f"networks of a cell with < {BAND_UNITS} base networks"
    )
    if result["reference"] is not None:
        _overlay_reference_means(bottom, result["reference"]["cells"])

    pooled = _directions_note(records, [row[0] for row in FIGURE2])
    top.set_title(
        f"Transfer across random splits, one dot per network ({len(bases)} "
        f"{base_label} network{'s' if len(bases) != 1 else ''}{pooled})",
        fontsize=10,
    )
    bottom.set_title(
        f"Means with 95% CIs (bands from {BAND_UNITS} base networks{_band_note(few, cut)})"
    )
    for axis in (top, bottom):
        axis.set_ylabel(metric if axis is top else "Top-1 accuracy (mean over networks)")
        axis.set_xlim(-0.5, 7.5)
        axis.set_xticks(range(0, 8))
        axis.grid(alpha=0.3)
    top.legend(loc="best", fontsize=8, framealpha=0.9)
    bottom.legend(loc="best", fontsize=8, framealpha=0.9, ncol=2)
    bottom.set_xlabel(X_LABEL)
    if not cells:
        top.text(0.5, 0.5, "no successful runs", transform=top.transAxes, ha="center")
    fig.tight_layout()
    return save_figure(fig, figures_dir, stem)


def _overlay_reference_means(axis, cells):
    """The paper's Figure 2 mean lines (its analysis's `cells`), faint and dotted, on a twin y
    axis at the right."""
    twin = axis.twinx()
    for treatment, _, _, edge in FIGURE2:
        ns, means = _means(cells, treatment)[:2]
        twin.plot(ns, means, color=edge, linestyle=":", linewidth=1.5, alpha=0.45)
    base = find_cell(cells, "base", 0)
    if base:
        twin.axhline(
            base["best_k"]["mean"], color=BASE_EDGE, linestyle=":", linewidth=1, alpha=0.45
        )
    twin.set_ylabel(f"Top-1 accuracy, {REFERENCE_NOTE}", color="#808080", fontsize=8)
    twin.tick_params(axis="y", colors="#808080", labelsize=8)
    # Keep `axis` (its lines and legend) above the faint twin.
    axis.set_zorder(twin.get_zorder() + 1)
    axis.patch.set_visible(False)
    axis.plot(
        [], [], color="#808080", linestyle=":", alpha=0.6, label=f"{REFERENCE_NOTE}, right axis"
    )


def _series_runs(ok, treatment, group):
    """ok runs of `treatment` on split group `group` (None: any), and the bases of the halves
    they target."""
    runs = [
        r
        for r in ok
        if r["treatment"] == treatment and (group is None or split_group(r["split"]) == group)
    ]
    halves = {(r["split"], r["target"]) for r in runs}
    return [
        r for r in ok if r["treatment"] == "base" and (r["split"], r["target"]) in halves
    ] + runs


def plot_dissimilar(figures_dir, result, records, *, stem="dissimilar"):
    """The paper's Figure 3: how much transfer loses, by task distance, and random features.

    Top left: AnB accuracy per network across the random splits and across the dissimilar
    split, each starting at n = 0 from the bases of the halves it targets. Top right: random
    frozen features with their bases. Bottom: relative top-1 accuracy (each run minus its own
    split and target base, in points), means over base networks with 95% CIs where there are
    BAND_UNITS or more, cut to the range the panel shows (the lines and dots set it, never a
    band); an n with fewer shows its base networks' values as small hollow dots, and the
    legend says so. The relative drops are `result`'s, the dots `records`' networks;
    `result`'s "reference" adds the paper's lines, faint and dotted.
    """
    ok = ok_records(records)
    drop = result["relative_drop"]
    fig = plt.figure(figsize=(10, 9))
    grid = fig.add_gridspec(2, 2)
    absolute, random_panel = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    relative = fig.add_subplot(grid[1, :])

    bands, few = [], False
    selections = {
        "random_splits": ("transfer", "random"),
        "dissimilar": ("transfer", "dissimilar"),
        "random_features": ("random", None),
    }
    for seed, (key, name, colour) in enumerate(FIGURE3):
        runs = _series_runs(ok, *selections[key])
        if not any(r["treatment"] != "base" for r in runs):
            continue
        axis = random_panel if key == "random_features" else absolute
        ns = np.array([r["n"] for r in runs], dtype=float)
        accuracies = [r["best_k"] for r in runs]
        is_base = ns == 0
        axis.scatter(
            ns[~is_base] + _jitter(int((~is_base).sum()), seed),
            np.array(accuracies)[~is_base],
            s=22,
            color=colour,
            alpha=0.7,
            zorder=3,
            label=name,
        )
        axis.scatter(
            ns[is_base] + _jitter(int(is_base.sum()), seed + 10),
            np.array(accuracies)[is_base],
            s=36,
            facecolor=BASE_FACE,
            edgecolor=colour,
            linewidth=1.2,
            zorder=3,
        )
        per_n = {}
        for n, accuracy in zip(ns, accuracies):
            per_n.setdefault(int(n), []).append(accuracy)
        xs = sorted(per_n)
        axis.plot(xs, [np.mean(per_n[n]) for n in xs], color=colour, linewidth=2, zorder=2)

        series = drop[key]
        xs = [0] + [c["n"] for c in series]
        relative.plot(
            xs,
            [0.0] + [c["effect"] for c in series],
            color=colour,
            linewidth=2,
            marker="o",
            markersize=4,
            label=name,
        )
        for c in series:
            if np.isnan(_band(c["units"], c["ci"])[0]) and c.get("unit_values"):
                few = True
                relative.scatter(
                    c["n"] + _jitter(len(c["unit_values"]), seed + 20) * 1.5,
                    c["unit_values"],
                    s=14,
                    facecolor="none",
                    edgecolor=colour,
                    linewidth=1,
                    zorder=3,
                )
        bands.append(
            (xs, *zip(*([(0.0, 0.0)] + [_band(c["units"], c["ci"]) for c in series])), colour)
        )

    if result["reference"] is not None:
        reference = result["reference"]["relative_drop"]
        for key, _, colour in FIGURE3:
            if reference[key]:
                relative.plot(
                    [0] + [c["n"] for c in reference[key]],
                    [0.0] + [c["effect"] for c in reference[key]],
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
    cut = _draw_bands(relative, bands, limits, few, f"base networks of an n with < {BAND_UNITS}")

    absolute.set_title("Transfer by task distance (white: the bases of the targeted halves)")
    random_panel.set_title("Random frozen features (white: their bases)")
    relative.set_title(
        f"Relative to each run's own base, means over base networks\n(95% CI bands from "
        f"{BAND_UNITS} base networks{_band_note(few, cut)})",
        fontsize=10,
    )
    for axis in (absolute, random_panel):
        axis.set_ylabel("Top-1 accuracy")
        axis.set_xticks(range(0, 8))
        axis.set_xlim(-0.5, 7.5)
        axis.grid(alpha=0.3)
        if axis.has_data():
            axis.legend(loc="best", fontsize=8, framealpha=0.9)
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


def plot_cka(matrix, row_labels, col_labels, path, *, title="Linear CKA"):
    """Heatmap of a CKA matrix (rows: row_labels, columns: col_labels), values written in cells
    (NaN, an undefined CKA, as MISSING).

    Writes `path` (its extension picks the format) atomically and returns it.
    """
    matrix = np.asarray(matrix, dtype=float)
    if matrix.shape != (len(row_labels), len(col_labels)):
        raise ValueError(
            f"plot_cka: matrix shape {matrix.shape} does not match "
            f"{len(row_labels)} row and {len(col_labels)} column labels"
        )
    fig, axis = plt.subplots(figsize=(1.0 + 0.8 * len(col_labels), 1.0 + 0.7 * len(row_labels)))
    image = axis.imshow(matrix, vmin=0.0, vmax=1.0, cmap="magma")
    axis.set_xticks(range(len(col_labels)), col_labels, rotation=45, ha="right")
    axis.set_yticks(range(len(row_labels)), row_labels)
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            axis.text(
                j,
                i,
                MISSING if np.isnan(matrix[i, j]) else f"{matrix[i, j]:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="black" if matrix[i, j] > 0.6 else "white",
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
