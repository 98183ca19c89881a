"""The estimators' agreement with the measured grid, rendered: figures/estimators.png and the
report.md section that says which estimator tracks which treatment, and what each estimator's
choice of cut point cost beside rules of thumb (its top-1 regret).

The agreement is kerastransfer.analysis.agreement's dict (computed by the analyze and score
drivers); this module draws and words it. An estimator that could not score a cut point is
"n/a" there, with its reason; a missing correlation prints as formats.MISSING.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from kerastransfer import estimators, treatments  # noqa: E402
from kerastransfer.analysis.agreement import TRACKS, WEAK  # noqa: E402
from kerastransfer.reporting.formats import MISSING  # noqa: E402
from kerastransfer.reporting.plots import save_figure  # noqa: E402

# A verdict of analysis.agreement.verdict with the treatment's name put in.
PHRASES = {
    "tracks": "tracks {}",
    "tracks weakly": "tracks {} weakly",
    "does not track": "does not track {}",
    "ranks in reverse weakly": "ranks {}'s cut points in reverse, weakly",
    "ranks in reverse": "ranks {}'s cut points in reverse",
}
# analysis.agreement.RULES in words.
RULE_NAMES = {
    "deepest": "deepest cut",
    "middle": "middle cut",
    "fine_tune_all": "fine-tune everything",
}


def write_figure(figures_dir: str, result: Mapping[str, Any] | None) -> list[str]:
    """Draws estimators.png and .pdf into `figures_dir` from analysis.agreement's `result`;
    returns the paths ([] when there is no result, i.e. no scores, or it has no groups)."""
    if result is None or not result["groups"]:
        return []
    return plot(result, figures_dir)


def _normalized(values: list[float | None]) -> list[float | None]:
    """Values rescaled to [0, 1] over the cut points (None stays None; all equal: 0.5)."""
    known = [v for v in values if v is not None]
    if not known:
        return values
    low, high = min(known), max(known)
    return [None if v is None else 0.5 if high == low else (v - low) / (high - low) for v in values]


def _span(values: Sequence[float | None]) -> str:
    """The range of the accuracies a rescaled curve stands for, e.g. "0.750-0.901"."""
    known = [v for v in values if v is not None]
    return f"{min(known):.3f}-{max(known):.3f}"


def plot(result: Mapping[str, Any], figures_dir: str) -> list[str]:
    """One panel per split and direction: every estimator's scores against n, each rescaled
    to [0, 1], beside the measured AnB and AnB+ accuracies rescaled the same way. An n/a
    score leaves a gap, and the legend names its n."""
    groups = result["groups"]
    fig, axes = plt.subplots(
        1, len(groups), figsize=(4.2 * len(groups), 3.6), squeeze=False, sharey=True
    )
    for axis, group in zip(axes[0], groups):
        layers = group["n"]
        for name, values in group["scores"].items():
            points = _normalized(values)
            absent = [str(n) for n, v in zip(layers, values) if v is None]
            axis.plot(
                layers,
                [np.nan if v is None else v for v in points],
                marker="o",
                markersize=3,
                linewidth=1,
                label=estimators.title(name)
                + (f" (n/a at n = {', '.join(absent)})" if absent else ""),
            )
        for treatment, values in group["accuracy"].items():
            if any(v is not None for v in values):
                style = treatments.get(treatment).style
                axis.plot(
                    layers,
                    [np.nan if v is None else v for v in _normalized(values)],
                    color=style.colour,
                    linestyle=style.linestyle,
                    linewidth=2.5,
                    label=f"measured {treatments.display_name(treatment, group['target'])} "
                    f"({_span(values)})",
                )
        axis.set_title(f"{group['split']}  {group['source']}->{group['target']}")
        axis.set_xlabel("cut point n")
        axis.set_xticks(layers)
    axes[0][0].set_ylabel("rescaled to [0, 1] over n")
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.suptitle("Transferability estimators against the measured accuracies", fontsize=10)
    return save_figure(fig, figures_dir, "estimators")


def _rho(value: float | None) -> str:
    return MISSING if value is None else f"{value:+.2f}"


def _counts(examples: Sequence[int]) -> str:
    return str(examples[0]) if len(examples) == 1 else f"{examples[0]} to {examples[-1]}"


def section(result: Mapping[str, Any] | None) -> str:
    """report.md's section on the estimators, or "" without scores: the rank correlations,
    a line per estimator, and each n/a score with its reason."""
    if result is None or not result["groups"]:
        return ""
    settings = result["settings"]
    measured = result["measured"]
    lines = [
        "## Transferability estimators against the measured grid",
        "",
        f"Each estimator scored every cut point on {_counts(result['examples'])} training "
        f"images of the target half ({settings['reduction']} features), without training; "
        "Spearman's rho (Kendall's tau) between its scores and the measured mean test "
        "accuracy over the cut points, per split and direction "
        f"(figures/estimators.png). An estimator tracks a treatment at a mean rho of at "
        f"least {TRACKS}, tracks weakly from {WEAK}. The estimators read the cut's features "
        "through a linear or nearest-neighbour readout; AnB retrains every layer above n, "
        "AnB+ every layer.",
        "",
    ]
    columns = [
        f"{g['split']} {treatments.display_name(t, g['target'])}"
        for g in result["groups"]
        for t in measured
    ]
    mean_columns = [f"mean {treatments.display_name(t)}" for t in measured]
    lines.append("| estimator | " + " | ".join(columns + mean_columns) + " |")
    lines.append("|---" * (1 + len(columns) + len(mean_columns)) + "|")
    for name in result["estimators"]:
        cells = []
        for g in result["groups"]:
            for t in measured:
                found = g["correlations"].get(name, {}).get(t)
                cells.append(
                    MISSING
                    if not found or found["spearman"] is None
                    else f"{_rho(found['spearman'])} ({_rho(found['kendall'])})"
                )
        for t in measured:
            mean = result["mean"][name][t]
            cells.append(f"{_rho(mean['spearman'])} ({_rho(mean['kendall'])})")
        lines.append(f"| {estimators.title(name)} | " + " | ".join(cells) + " |")
    lines.append("")
    for name in result["estimators"]:
        words = []
        for t in measured:
            mean = result["mean"][name][t]
            label = treatments.display_name(t)
            words.append(
                f"{PHRASES[mean['verdict']].format(label)} (mean rho {_rho(mean['spearman'])})"
                if mean["spearman"] is not None
                else f"cannot rank {label} ({mean['why']})"
            )
        lines.append(f"- {estimators.title(name)}: " + "; ".join(words) + ".")
    for g in result["groups"]:
        for name in result["estimators"]:
            for reason in g["unscored"].get(name, []):
                seeds = reason["seeds"]
                lines.append(
                    f"- {estimators.title(name)} n/a at n = {', '.join(map(str, reason['n']))} "
                    f"({g['split']} {g['source']}->{g['target']}"
                    + (f", seed {', '.join(map(str, seeds))}" if seeds else "")
                    + f"): {reason['why']}."
                )
    missing = [
        f"{g['split']} {g['source']}->{g['target']}"
        for g in result["groups"]
        if all(v is None for values in g["accuracy"].values() for v in values)
    ]
    if missing:
        lines.append(
            f"- Scored without measured accuracies yet: {', '.join(missing)} "
            "(train the grid there)."
        )
    if result.get("regret"):
        lines += ["", *regret_lines(result["regret"])]
    return "\n".join(lines)


def _cut(choice: Mapping[str, Any]) -> str:
    """A choice's cut point(s): "n = 3", or "n = 3, 4 tied"."""
    ns = choice["n"]
    return f"n = {', '.join(map(str, ns))}" + (" tied" if len(ns) > 1 else "")


def _choice_cell(choice: Mapping[str, Any] | None) -> str:
    """A regret in points and the cut it chose, e.g. "1.2 (n = 3)"; MISSING without one."""
    if choice is None or choice["regret"] is None:
        return MISSING
    return f"{choice['regret']:.1f} ({_cut(choice)})"


def regret_lines(regret: Mapping[str, Any]) -> list[str]:
    """The top-1 regret table of analysis.agreement.regret's dict, and a line per estimator
    that lost fewer points than a rule."""
    measured = regret["measured"]
    groups = regret["groups"]
    columns = [
        (g, t, f"{g['split']} {treatments.display_name(t, g['target'])}")
        for g in groups
        for t in measured
    ]
    means = [f"mean {treatments.display_name(t)}" for t in measured]
    lines = [
        "Top-1 regret: the points of mean test accuracy lost by training the cut point an "
        "estimator scores best instead of the best measured one (0: it picked the best; tied "
        "scores: the mean over the tied cut points), beside rules that read no data. "
        "Fine-tune everything is the fine-tuned treatment at its deepest cut (every block "
        "copied and trained)."
        + (" Over the trained cut points only (--prune)." if regret["pruned"] else ""),
        "",
        "| choice | " + " | ".join([label for _, _, label in columns] + means) + " |",
        "|---" * (1 + len(columns) + len(means)) + "|",
    ]
    best = [
        MISSING
        if g["best"][t] is None
        else f"{g['best'][t]['accuracy']:.3f} (n = {g['best'][t]['n']})"
        for g, t, _ in columns
    ]
    lines.append("| best measured | " + " | ".join(best + [""] * len(means)) + " |")
    for choice in [*regret["estimators"], *regret["rules"]]:
        label = RULE_NAMES.get(choice) or estimators.title(choice)
        cells = [_choice_cell(g["choices"].get(choice, {}).get(t)) for g, t, _ in columns]
        for t in measured:
            mean = regret["mean"][choice][t]["regret"]
            cells.append(MISSING if mean is None else f"{mean:.1f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    for name in regret["estimators"]:
        beaten = [
            f"on {treatments.display_name(t)} than "
            + ", ".join(RULE_NAMES[rule] for rule in regret["mean"][name][t]["beats"])
            for t in measured
            if regret["mean"][name][t]["beats"]
        ]
        if beaten:
            lines.append(f"- {estimators.title(name)} lost fewer points {'; '.join(beaten)}.")
    return lines
