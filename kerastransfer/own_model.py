"""Transfer your own model to your own images: which n, frozen or fine-tuned?

The practitioner's version of the study. The source is a trained model (a user's `.keras`
file, or a keras.applications backbone with local weights) instead of a base net trained on
half A; the target is a whole dataset (`--dataset`, e.g. `image_folder` with `--image_dir`).
For each n it trains frozen (AnB) and fine-tuned (AnB+) transfers, plus the same architecture
from scratch on the target as the baseline, and recommends the n and mode with the best
validation accuracy, with its margin over the baseline and the runner-up.
"""

import os

from kerastransfer import analysis, data, fileio, grid, models, plots, surgery
from kerastransfer.data.preprocessing import Preprocessing
from kerastransfer.data.splits import ClassSplit
from kerastransfer.errors import UsageError

TARGET = "target"
MODES = ("transfer", "transfer_ft")


def is_own_model(experiment):
    return bool(experiment.source_model or experiment.source_weights)


def make_study(experiment, log=print):
    """The Study for an experiment: the paper's grid, or transfer of the user's own model."""
    cls = OwnModelStudy if is_own_model(experiment) else grid.Study
    return cls(experiment, log=log)


class OwnModelStudy(grid.Study):
    """A Study whose source network is given rather than trained on half A."""

    def prepare(self):
        e = self.experiment
        self.source = data.load_source(e.dataset, data_dir=e.data_dir, manual_dir=e.manual_dir,
                                       image_dir=e.image_dir)
        every_class = tuple(range(self.source.num_classes))
        self.splits = {TARGET: ClassSplit(spec=TARGET, name=TARGET, dataset=e.dataset,
                                          a_classes=(), b_classes=every_class,
                                          class_names=tuple(self.source.class_names))}
        self.source_net = self._load_source_net()
        self.source_digest = grid.file_digest(e.source_model or e.source_weights)
        self.preprocessing = self._adapt_input(self.source_net)
        self.cuts = list(e.cut_layers) or None
        blocks = surgery.num_blocks(self.source_net, self.cuts)
        for n in e.layers:
            if n > blocks:
                raise UsageError(f"--layers value n={n} is past the last block of the source "
                                 f"model (use 1..{blocks}; pass --cut_layers to define blocks)")
        self.runs = self._plan()
        return self

    def _load_source_net(self):
        e = self.experiment
        if e.source_model:
            return models.load_user_model(e.source_model)
        if e.arch not in models.BACKBONES:
            raise UsageError(f"--source_weights needs --arch={'|'.join(models.BACKBONES)}, "
                             f"not --arch={e.arch}")
        size = e.image_size or 224
        return models.build(e.arch, num_classes=2, input_shape=(size, size, 3),
                            weights=e.source_weights, dropout=0.0)

    def _adapt_input(self, model):
        """Target images are resized and their channels mapped to what the model takes."""
        shape = model.input_shape
        if len(shape) != 4 or None in shape[1:]:
            raise UsageError(f"the source model's input shape {shape} is not a fixed image "
                             "size; rebuild it with keras.Input((H, W, C)) and save it again")
        height, width, channels = shape[1:]
        if channels not in (1, 3):
            raise UsageError(f"the source model takes {channels}-channel images; only 1 "
                             "(grey) or 3 (RGB) can be made from image files")
        return Preprocessing((height, width), channels)

    def _plan(self):
        e = self.experiment
        modes = [t for t in e.treatments if t in MODES] or list(MODES)
        runs = [grid.RunSpec(grid.base_id(TARGET, "B", s), "base", TARGET, "", "B", 0, s)
                for s in e.seeds]
        runs += [grid.RunSpec(f"{TARGET}/{mode}/n{n}/seed{s}", mode, TARGET, "A", "B", n, s)
                 for n in e.layers for mode in modes for s in e.seeds]
        return runs

    def finished(self):
        """Finished runs, plus the given source model standing in for every base A."""
        done = super().finished()
        for seed in self.experiment.seeds:
            run_id = grid.base_id(TARGET, "A", seed)
            done[run_id] = {"run": run_id, "status": "ok", "source_model": True,
                            "weights_sha256": self.source_digest}
        return done

    def build_model(self, num_classes):
        return surgery.fresh_clone(self.source_net, num_classes)

    def _network(self, spec, base_record, num_classes):
        if spec.treatment == "base":
            return self.build_model(num_classes)
        mode = grid.TREATMENT_SOURCE[spec.treatment][1]
        return surgery.transfer(self.source_net, spec.n, mode, num_classes=num_classes,
                                cut_names=self.cuts)


def recommend(records):
    """Which n and mode to use, from validation accuracy (best-k), never from test.

    Returns a dict with one entry per (mode, n): mean validation and test accuracy and the
    gain over the from-scratch baseline with its 95% CI (Welch; needs 2+ seeds per cell),
    and `choice`: the best cell, its gain over the baseline and its margin over the
    runner-up (the best cell of the other mode), each with CI.
    """
    ok = [r for r in records if r["status"] == "ok" and r["split"] == TARGET]
    baseline = [r["best_k"] for r in ok if r["treatment"] == "base"]
    cells = []
    for mode in MODES:
        for n in sorted({r["n"] for r in ok if r["treatment"] == mode}):
            runs = [r for r in ok if r["treatment"] == mode and r["n"] == n]
            val = [r["best_k"] for r in runs]
            cells.append({
                "treatment": mode, "mode": "frozen" if mode == "transfer" else "fine-tuned",
                "n": n, "val": analysis.summarize(val),
                "test": analysis.summarize([r["test_accuracy"] for r in runs]),
                "gain_over_scratch": analysis.difference(val, baseline), "_val": val})
    if not cells or not baseline:
        return {"baseline": analysis.summarize(baseline), "cells": cells, "choice": None}
    best = max(cells, key=lambda c: c["val"]["mean"])
    others = [c for c in cells if c["treatment"] != best["treatment"]]
    runner_up = max(others, key=lambda c: c["val"]["mean"]) if others else None
    choice = {
        "treatment": best["treatment"], "mode": best["mode"], "n": best["n"],
        "val": best["val"]["mean"], "test": best["test"]["mean"],
        "gain_over_scratch": best["gain_over_scratch"],
        "runner_up": ({"mode": runner_up["mode"], "n": runner_up["n"],
                       "margin": analysis.difference(best["_val"], runner_up["_val"])}
                      if runner_up else None),
    }
    for cell in cells:
        del cell["_val"]
    return {"baseline": analysis.summarize(baseline), "cells": cells, "choice": choice}


def _points(diff):
    """'+1.23 points [0.40, 2.06]' or '+1.23 points (no CI: one seed)'."""
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


def write_recommendation(workdir, records, command=None):
    """Writes recommendation.json, report.md and figures/own_transfer.png; returns paths."""
    result = recommend(records)
    figure = os.path.join(workdir, "figures", "own_transfer.png")
    plot(result, figure)
    paths = [os.path.join(workdir, "recommendation.json"), os.path.join(workdir, "report.md")]
    fileio.write_json(paths[0], analysis.json_safe(result))
    fileio.write_text(paths[1], render(result, command))
    return paths + [figure]


def plot(result, path):
    """Validation accuracy vs n for frozen and fine-tuned transfer, scratch as a line."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

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
