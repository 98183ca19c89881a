"""The own-model study's outputs: recommendation.json, report.md and figures/own_transfer.png.

The numbers come from kerastransfer.analysis.recommend; this module renders and writes them.
"""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from kerastransfer import analysis  # noqa: E402
from kerastransfer.reporting import plots  # noqa: E402
from kerastransfer.workdir import files  # noqa: E402


def write_recommendation(workdir, records, command=None):
    """Writes recommendation.json, report.md and figures/own_transfer.png; returns paths."""
    result = analysis.recommend(records)
    figure = os.path.join(workdir, "figures", "own_transfer.png")
    plot(result, figure)
    paths = [os.path.join(workdir, "recommendation.json"), os.path.join(workdir, "report.md")]
    files.write_json(paths[0], analysis.json_safe(result))
    files.write_text(paths[1], render(result, command))
    return paths + [figure]


def _points(diff):
    """'+1.23 points [95% CI +0.40, +2.06]' or '+1.23 points (no CI: run 2+ --seeds)'."""
    if diff is None or diff.get("effect") is None:
        return "n/a"
    text = f"{100 * diff['effect']:+.2f} points"
    if diff.get("ci"):
        low, high = (100 * v for v in diff["ci"])
        return f"{text} [95% CI {low:+.2f}, {high:+.2f}]"
    return f"{text} (no CI: run 2+ --seeds)"


def render(result, command=None):
    """report.md for an own-model study: the recommendation first, then the table."""
    lines = ["# Transfer your own model: recommendation", ""]
    choice = result["choice"]
    if choice is None:
        lines.append("No recommendation: the baseline or the transferred runs are missing.")
    else:
        lines += [f"**Use n = {choice['n']}, {choice['mode']}** (validation accuracy "
                  f"{choice['val']:.4f}, test {choice['test']:.4f}).", "",
                  f"- gain over training from scratch: {_points(choice['gain_over_scratch'])}"]
        if choice["runner_up"]:
            ru = choice["runner_up"]
            lines.append(f"- margin over the best {ru['mode']} choice (n = {ru['n']}): "
                         f"{_points(ru['margin'])}")
        if choice["gain_over_scratch"]["effect"] < 0:
            lines.append("- **training from scratch beat every transferred network here**: "
                         "prefer it, or try a source model closer to these images")
        lines += ["", "Chosen by mean validation accuracy (the paper's best-k metric); test "
                  "accuracy is reported, never used to choose."]
    base = result["baseline"]
    lines += ["", "| mode | n | networks | validation | test | gain over scratch |",
              "|---|---|---|---|---|---|"]
    if base["mean"] is not None:
        lines.append(f"| from scratch | - | {base['count']} | {base['mean']:.4f} | | |")
    for cell in result["cells"]:
        lines.append(f"| {cell['mode']} | {cell['n']} | {cell['val']['count']} | "
                     f"{cell['val']['mean']:.4f} | {cell['test']['mean']:.4f} | "
                     f"{_points(cell['gain_over_scratch'])} |")
    lines += ["", "![accuracy vs n](figures/own_transfer.png)", ""]
    if command:
        lines += ["Reproduce with:", "", "```", command, "```", ""]
    return "\n".join(lines)


def plot(result, path):
    """Validation accuracy vs n for frozen and fine-tuned transfer, scratch as a line."""
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    colours = {"transfer": "#8b1a1a", "transfer_ft": "#e8687a"}
    for mode, label in (("transfer", "frozen (AnB)"), ("transfer_ft", "fine-tuned (AnB+)")):
        cells = [c for c in result["cells"] if c["treatment"] == mode]
        if cells:
            axes.plot([c["n"] for c in cells], [c["val"]["mean"] for c in cells], "o-",
                      color=colours[mode], label=label)
    if result["baseline"]["mean"] is not None:
        axes.axhline(result["baseline"]["mean"], color="grey", linestyle="--",
                     label="from scratch")
    axes.set_xlabel("Layer n up to which the source model is transferred")
    axes.set_ylabel("Validation accuracy (best-k mean)")
    axes.legend(loc="best")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    plots.save_figure(figure, os.path.dirname(path), os.path.splitext(os.path.basename(path))[0])
