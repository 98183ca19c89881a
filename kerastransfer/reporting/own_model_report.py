"""The own-model study's outputs: recommendation.json, report.md and figures/own_transfer.png.

The numbers come from kerastransfer.analysis.recommend (which chooses the n and mode) and the
estimators' agreement, computed by the analyze driver (app/analyze.py); this module renders
and writes them. A missing number prints as formats.MISSING.
"""

import os
from collections.abc import Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from kerastransfer import estimators, treatments  # noqa: E402
from kerastransfer.reporting import estimator_agreement, plots  # noqa: E402
from kerastransfer.reporting.formats import MISSING, accuracy  # noqa: E402
from kerastransfer.workdir import files  # noqa: E402


def write_own_model_report(
    workdir: str, result: Mapping[str, Any], command: str | None = None
) -> list[str]:
    """Writes recommendation.json, report.md and figures/own_transfer.png (and, when `result`
    has the estimators, figures/estimators.png); returns paths.

    `result`: analysis.recommend's dict, with "estimators" and "pruning" given scores, made
    JSON-safe (analysis.json_safe) by the driver.
    """
    figure = os.path.join(workdir, "figures", "own_transfer.png")
    plot(result, figure)
    figures = [figure] + estimator_agreement.write_figure(
        os.path.dirname(figure), result.get("estimators")
    )
    paths = [os.path.join(workdir, "recommendation.json"), os.path.join(workdir, "report.md")]
    files.write_json(paths[0], result)
    files.write_text(paths[1], render(result, command))
    return paths + figures


def _points(diff: Mapping[str, Any] | None) -> str:
    """'+1.23 points [95% CI +0.40, +2.06]', or with the reason there is no interval."""
    if diff is None or diff.get("effect") is None:
        return MISSING
    text = f"{100 * diff['effect']:+.2f} points"
    if diff.get("ci"):
        low, high = (100 * v for v in diff["ci"])
        return f"{text} [95% CI {low:+.2f}, {high:+.2f}]"
    return f"{text} (no CI: {diff['why']})"


def _separable(validation: Mapping[str, Any], test: Mapping[str, Any] | None) -> bool:
    """Whether a difference's interval lies above 0: on test, which the choice never saw, or
    on validation when the records have no test accuracy."""
    judged = test if test and test["effect"] is not None else validation
    return bool(judged["ci"]) and judged["ci"][0] > 0


def _why_not(validation: Mapping[str, Any], test: Mapping[str, Any] | None) -> str:
    """Why _separable() is False, in words."""
    judged = test if test and test["effect"] is not None else validation
    return f"the {'test' if judged is test else 'validation'} interval " + (
        "does not lie above 0" if judged["ci"] else f"is missing ({judged['why']})"
    )


def _sizes(result: Mapping[str, Any]) -> str:
    """The validation and test set sizes, or that the records do not carry them."""
    parts = []
    for name, counts in result["examples"].items():
        if not counts:
            parts.append(f"{name} size not recorded")
        elif len(counts) == 1:
            parts.append(f"{name}: {counts[0]} images (one image = {100 / counts[0]:.2f} points)")
        else:
            parts.append(f"{name}: {counts[0]} to {counts[-1]} images")
    return "; ".join(parts)


def _spread(result: Mapping[str, Any]) -> str:
    """How the intervals get their seed-to-seed sd, in words."""
    texts = []
    for name, spread in result["spread"].items():
        if spread["sd"] is None:
            texts.append(f"{name}: one seed per cell, no spread to measure")
        else:
            texts.append(
                f"{name} sd {100 * spread['sd']:.2f} points on {spread['df']} degrees of freedom"
            )
    return (
        "Intervals use the seed-to-seed sd pooled over every cell and the baseline, on the "
        "assumption that all have the same spread (" + "; ".join(texts) + ")."
    )


def _seconds(value: float | None) -> str:
    return MISSING if value is None else f"{value:.1f}"


def _at(cell: Mapping[str, Any]) -> str:
    """A cut point in words: "n = 3 (conv3_block4_out)", the layer the model's own name for
    it; "n = 3" when the records do not name it; layer-wise decay adds its decay."""
    decay = f", decay {cell['layer_decay']:g}" if cell.get("layer_decay") else ""
    return f"n = {cell['n']}" + (f" ({cell['cut']}{decay})" if cell.get("cut") else decay)


def render(result: Mapping[str, Any], command: str | None = None) -> str:
    """report.md for an own-model study: the recommendation first, then the table."""
    lines = ["# Transfer your own model: recommendation", ""]
    choice = result["choice"]
    if choice is None:
        lines.append("No recommendation: the baseline or the transferred runs are missing.")
    else:
        name = f"{_at(choice)} {choice['mode']}"
        lines += [
            f"**Use {_at(choice)}, {choice['mode']}** (validation accuracy "
            f"{accuracy(choice['validation'])}, test {accuracy(choice['test'])}).",
            "",
        ]
        runner_up = choice["runner_up"]
        margins = (runner_up["margin"], runner_up["test_margin"]) if runner_up else ()
        if runner_up and not _separable(*margins):
            lines += [
                f"{name}, not separable from {_at(runner_up)} {runner_up['mode']} at "
                f"this size: {_why_not(*margins)}.",
                "",
            ]
        gains = (choice["gain_over_scratch"], choice["test_gain_over_scratch"])
        lines += [
            f"- gain over training from scratch, test: {_points(gains[1])}",
            f"- gain over training from scratch, validation: {_points(gains[0])} "
            "(optimistic: the choice was made on validation)",
        ]
        if runner_up:
            lines += [
                f"- margin over the best {runner_up['mode']} choice ({_at(runner_up)}): "
                f"test {_points(runner_up['test_margin'])}, validation "
                f"{_points(runner_up['margin'])}"
            ]
        plain = choice.get("over_fine_tuning")  # absent from a recommendation made before it
        if plain:
            lines += [
                f"- gain over plain fine-tuning (AnB+ at its best, {_at(plain)}): "
                f"test {_points(plain['test_margin'])}, validation {_points(plain['margin'])}"
            ]
        if gains[0]["effect"] is not None and gains[0]["effect"] < 0:
            lines.append(
                "- **training from scratch beat every transferred network on "
                "validation**: prefer it, or try a source model closer to these images"
            )
        elif not _separable(*gains):
            lines.append(
                f"- {name} is not separable from training from scratch at this size: "
                f"{_why_not(*gains)}"
            )
        lines += [
            "",
            "Chosen by the mean validation accuracy of the delivered networks (the "
            "final weights, which are saved and exported); test accuracy of the same "
            "weights is reported, never used to choose, so the test gain is the unbiased "
            "one and separability is judged on it. "
            + _spread(result)
            + f" Set sizes: {_sizes(result)}.",
        ]
    base = result["baseline"]
    lines += [
        "",
        "| mode | n | seeds | validation | test | best-k (the paper's metric) | "
        "gain over scratch, validation | gain over scratch, test | seconds per network |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    if base["validation"]["count"]:
        lines.append(
            f"| from scratch | - | {base['validation']['count']} | "
            f"{accuracy(base['validation']['mean'])} | {accuracy(base['test']['mean'])} | | | | |"
        )
    for cell in result["cells"]:
        lines.append(
            f"| {cell['mode']} | {cell['n']}"
            + (f" ({cell['cut']})" if cell.get("cut") else "")
            + f" | {cell['seeds']} | "
            f"{accuracy(cell['validation']['mean'])} | {accuracy(cell['test']['mean'])} | "
            f"{accuracy(cell['best_k']['mean'])} | {_points(cell['gain_over_scratch'])} | "
            f"{_points(cell['test_gain_over_scratch'])} | {_seconds(cell.get('seconds'))} |"
        )
    if result.get("cost"):
        lines += [
            "",
            "Training time per mode: "
            + ", ".join(
                f"{treatments.get(mode).recipe} {seconds:.0f} s"
                for mode, seconds in result["cost"].items()
            )
            + ".",
        ]
    lines += ["", "![accuracy vs n](figures/own_transfer.png)", ""]
    lines += _pruning(result.get("pruning"))
    if result.get("estimators"):
        lines += [estimator_agreement.section(result["estimators"]), ""]
    if command:
        lines += ["Reproduce with:", "", "```", command, "```", ""]
    return "\n".join(lines)


def _pruning(pruned: Mapping[str, Any] | None) -> list[str]:
    """The --prune section: which n were skipped, by which estimator (and where it was n/a,
    with the reason), whether its order held among the trained ones, and the cost saved."""
    if not pruned:
        return []
    name = estimators.title(pruned["estimator"])
    orders = []
    for treatment, order in pruned["agreement"].items():
        mode = treatments.get(treatment).recipe
        if order["kendall"] is None:
            orders.append(f"{mode}: not measured ({order['why']})")
        else:
            orders.append(f"{mode}: Kendall's tau {order['kendall']:+.2f}")
    saved = pruned["seconds_saved_estimate"]
    lines = [
        "## Pruned by an estimator (--prune)",
        "",
        f"- {name} ranked the cut points n = {', '.join(map(str, pruned['ranking']))} "
        f"(best first); the {pruned['k']} best were trained: n = "
        f"{', '.join(map(str, pruned['trained']))}. Skipped: n = "
        f"{', '.join(map(str, pruned['skipped']))}.",
        *(
            f"- {name} is n/a at n = {u['n']} ({u['why']}): ranked below every score."
            for u in pruned.get("unscored", [])  # absent from a choice made before n/a
        ),
        *_bootstrap(pruned),
        "- Its order against the trained cut points' validation accuracy: "
        + "; ".join(orders)
        + " (+1: the same order as training's, -1: the reverse).",
        f"- Cost: {pruned['networks_trained']} of {pruned['networks_planned']} networks "
        f"trained ({pruned['networks_skipped']} skipped); scoring took "
        f"{pruned['scoring_seconds']:.1f} s"
        + (
            ""
            if saved is None
            else f", training the skipped networks would have taken about {saved:.0f} s "
            "more (their count times the mean training time of the trained transfers)"
        )
        + ".",
        "- The recommendation is the best of the trained cut points only: a skipped n "
        "that training would have preferred is not seen.",
        "",
    ]
    return lines


def _bootstrap(pruned: Mapping[str, Any]) -> list[str]:
    """The --prune separability line: how often its K best held under the bootstrap."""
    bootstrap = pruned.get("bootstrap")  # absent from a choice made before the bootstrap
    if not bootstrap:
        return []
    line = (
        f"- Its {pruned['k']} best held in {100 * bootstrap['held']:.0f}% of "
        f"{bootstrap['replicates']} bootstrap resamples of the scored images "
        f"({bootstrap['seconds']:.1f} s)"
    )
    if bootstrap["extra"] is None:
        return [line + ": separable, no cut point added."]
    return [
        line + f": not separable, so n = {bootstrap['extra']}, the next in its ranking, "
        "was trained too."
    ]


def plot(result: Mapping[str, Any], path: str) -> None:
    """Validation accuracy of the delivered networks vs n, per transfer mode and recipe;
    scratch as a line."""
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    for mode in treatments.TRANSFER_MODES:
        label = f"{treatments.get(mode).recipe} ({treatments.display_name(mode)})"
        cells = [c for c in result["cells"] if c["treatment"] == mode]
        if cells:
            axes.plot(
                [c["n"] for c in cells],
                [c["validation"]["mean"] for c in cells],
                "o-",
                color=treatments.get(mode).style.colour,
                label=label,
            )
    if result["baseline"]["validation"]["mean"] is not None:
        axes.axhline(
            result["baseline"]["validation"]["mean"],
            color="grey",
            linestyle="--",
            label="from scratch",
        )
    cuts = {c["n"]: c.get("cut") for c in result["cells"]}
    axes.set_xticks(sorted(cuts), [f"{n}\n{cuts[n]}" if cuts[n] else str(n) for n in sorted(cuts)])
    axes.set_xlabel("Block n up to which the source model is transferred (its last layer)")
    axes.set_ylabel("Validation accuracy (final weights)")
    axes.legend(loc="best")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    plots.save_figure(figure, os.path.dirname(path), os.path.splitext(os.path.basename(path))[0])
