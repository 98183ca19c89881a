"""The paper's figures, drawn from run records: Figure 2 (transfer.png/.pdf), Figure 3
(dissimilar.png/.pdf), and a CKA heatmap helper.

Records are normalized run dicts (kerastransfer.workdir.results); only status "ok" runs are
drawn. Passing the paper's own records (analysis.load_paper_csv()) draws the paper's figures
from its published numbers; passing them as `reference_records` next to a reproduction draws
the paper faintly behind it. Uses matplotlib's Agg backend, so no display is needed.
"""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from kerastransfer import analysis  # noqa: E402
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

# Figure 3's series: key in analysis.relative_drop, legend name, colour.
FIGURE3 = (
    ("random_splits", "transfer AnB, random A/B splits", "#8b0000"),
    ("dissimilar", "transfer AnB, dissimilar split", "#d07000"),
    ("random_features", "random frozen features", "#505050"),
)
REFERENCE_NOTE = "Yosinski et al. 2014 (faint, dotted)"
# Confidence bands are drawn from this many base networks on: a t(1) band of two is 12.7 sd wide.
BAND_UNITS = 3


def plot_figures(figures_dir, records, *, reference_records=None):
    """Draws every figure of a study into `figures_dir`; returns the paths written."""
    return plot_transfer(
        figures_dir, records, reference_records=reference_records
    ) + plot_dissimilar(figures_dir, records, reference_records=reference_records)


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
    """(low, high) of a CI drawn as a band: only over BAND_UNITS or more base networks (a
    cell's networks are one per base network), else (nan, nan), no band."""
    return tuple(ci) if ci is not None and count >= BAND_UNITS else (np.nan, np.nan)


def _means(cells, treatment, group="random"):
    """(n values, means, CI lows, CI highs) of a treatment's pooled cells; nan: no band."""
    rows = [
        c
        for c in cells
        if c["treatment"] == treatment
        and c["group"] == group
        and c["target"] == "all"
        and c["n"] in LAYERS
    ]
    bands = [_band(c["best_k"]["count"], c["best_k"]["ci"]) for c in rows]
    return (
        [c["n"] for c in rows],
        [c["best_k"]["mean"] for c in rows],
        [low for low, _ in bands],
        [high for _, high in bands],
    )


def _random_split_runs(records, treatment):
    """ok runs of `treatment` on the random splits."""
    return [
        r
        for r in analysis.ok_records(records)
        if r["treatment"] == treatment and analysis.split_group(r["split"]) == "random"
    ]


def plot_transfer(figures_dir, records, *, reference_records=None, stem="transfer"):
    """The paper's Figure 2: top-1 accuracy against n for baseB, BnB, BnB+, AnB and AnB+.

    Top: one dot per network (at n = 0, white, the bases of the halves the runs target), lines
    through the means. Bottom: the mean lines alone with shaded 95% CIs where a cell has
    BAND_UNITS or more networks, and the base mean as a dashed line. `reference_records` adds
    the paper's mean lines, faint and dotted, on a right-hand axis of their own (another
    dataset's accuracies live on another scale). Returns the PNG and PDF paths.
    """
    cells = analysis.cell_table(records)
    metric = f"Top-1 accuracy ({analysis.metric_description(records)})"
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8.5, 9.5), sharex=True)

    bases = [r["best_k"] for r in analysis.pooled_bases(records, "random")]
    base_cell = analysis.find_cell(cells, "base", 0)
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
    for offset, (treatment, name, face, edge) in zip((-0.15, -0.05, 0.05, 0.15), FIGURE2):
        runs = _random_split_runs(records, treatment)
        if not runs:
            continue
        x = np.array([r["n"] for r in runs], dtype=float) + offset + _jitter(len(runs), 1)
        top.scatter(
            x,
            [r["best_k"] for r in runs],
            s=22,
            facecolor=face,
            edgecolor=edge,
            alpha=0.75,
            zorder=3,
            label=name,
        )
        ns, means, lows, highs = _means(cells, treatment)
        for axis in (top, bottom):
            axis.plot(
                ns, means, color=edge, linewidth=2, zorder=2, label=name if axis is bottom else None
            )
        bottom.fill_between(ns, lows, highs, color=edge, alpha=0.18, linewidth=0)

    if base_cell:
        stats = base_cell["best_k"]
        low, high = _band(stats["count"], stats["ci"])
        if not np.isnan(low):
            bottom.axhspan(low, high, color=BASE_EDGE, alpha=0.15, linewidth=0)
        for axis in (top, bottom):
            axis.axhline(
                stats["mean"],
                color=BASE_EDGE,
                linestyle="--",
                linewidth=1,
                zorder=1,
                label=f"{base_label} mean" if axis is bottom else None,
            )

    bottom.set_ylim(top.get_ylim())  # the same scale as the dots
    if reference_records is not None:
        _overlay_reference_means(bottom, reference_records)

    top.set_title(
        f"Transfer across random splits, one dot per network ({len(bases)} "
        f"{base_label} network{'s' if len(bases) != 1 else ''})"
    )
    bottom.set_title(
        f"Means with 95% confidence intervals (bands from {BAND_UNITS} networks, "
        f"one per base network)"
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


def _overlay_reference_means(axis, reference_records):
    """The paper's Figure 2 mean lines, faint and dotted, on a twin y axis at the right."""
    cells = analysis.cell_table(reference_records)
    twin = axis.twinx()
    for treatment, _, _, edge in FIGURE2:
        ns, means, _, _ = _means(cells, treatment)
        twin.plot(ns, means, color=edge, linestyle=":", linewidth=1.5, alpha=0.45)
    base = analysis.find_cell(cells, "base", 0)
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
        if r["treatment"] == treatment
        and (group is None or analysis.split_group(r["split"]) == group)
    ]
    halves = {(r["split"], r["target"]) for r in runs}
    return [
        r for r in ok if r["treatment"] == "base" and (r["split"], r["target"]) in halves
    ] + runs


def plot_dissimilar(figures_dir, records, *, reference_records=None, stem="dissimilar"):
    """The paper's Figure 3: how much transfer loses, by task distance, and random features.

    Top left: AnB accuracy per network across the random splits and across the dissimilar
    split, each starting at n = 0 from the bases of the halves it targets. Top right: random
    frozen features with their bases. Bottom: relative top-1 accuracy (each run minus its own
    split and target base, in points), means over base networks with 95% CIs where there are
    BAND_UNITS or more; `reference_records` adds the paper's lines, faint and dotted.
    """
    ok = analysis.ok_records(records)
    drop = analysis.relative_drop(records)
    fig = plt.figure(figsize=(10, 9))
    grid = fig.add_gridspec(2, 2)
    absolute, random_panel = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    relative = fig.add_subplot(grid[1, :])

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
        bands = [(0.0, 0.0)] + [_band(c["units"], c["ci"]) for c in series]
        relative.plot(
            [0] + [c["n"] for c in series],
            [0.0] + [c["effect"] for c in series],
            color=colour,
            linewidth=2,
            marker="o",
            markersize=4,
            label=name,
        )
        relative.fill_between(
            [0] + [c["n"] for c in series],
            [low for low, _ in bands],
            [high for _, high in bands],
            color=colour,
            alpha=0.18,
            linewidth=0,
        )

    if reference_records is not None:
        reference = analysis.relative_drop(reference_records)
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

    absolute.set_title("Transfer by task distance (white: the bases of the targeted halves)")
    random_panel.set_title("Random frozen features (white: their bases)")
    relative.set_title(
        f"Relative to each run's own base, means over base networks (95% CI "
        f"bands from {BAND_UNITS} base networks)"
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
    relative.axhline(0.0, color="#909090", linewidth=1)
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
    """Heatmap of a CKA matrix (rows: row_labels, columns: col_labels), values written in cells.

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
                f"{matrix[i, j]:.2f}",
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
