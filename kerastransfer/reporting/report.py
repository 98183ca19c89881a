"""report.md: the analysis of a transfer study as a Markdown document.

Renders the dict of kerastransfer.analysis.analyze() (plus the "figures" and "command" that
write_analysis adds); every number in the report is read from that dict, none is typed in.
Accuracies print as fractions (0.6251), differences as percentage points (+1.60), intervals as
95% t-intervals; a missing value prints as "–".
"""

import json

from kerastransfer.workdir import files

MISSING = "–"


def write_report(path, analysis):
    """Writes render_report(analysis) to `path` atomically; returns `path`."""
    files.write_text(path, render_report(analysis))
    return path


def render_report(analysis):
    """The whole report as Markdown text."""
    sections = [
        _title(analysis), _configuration(analysis), _results(analysis), _table1(analysis),
        _relative_drop(analysis), _findings(analysis), _figures(analysis), _timing(analysis),
        _not_ok(analysis), _reproduce(analysis),
    ]
    return "\n\n".join(s.rstrip() for s in sections if s) + "\n"


# ----------------------------------------------------------------------------- formatting


def _acc(value):
    return MISSING if value is None else f"{value:.4f}"


def _pts(value):
    if value is None:
        return MISSING
    return f"{0.0 if round(value, 2) == 0 else value:+.2f}"  # no "-0.00"


def _interval(ci, fmt):
    return MISSING if ci is None else f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def _mean_pm(stats, fmt):
    """'mean ± half-width (count)' of a summarize() dict; without a CI just 'mean (count)'."""
    if not stats or stats["mean"] is None:
        return MISSING
    if stats["ci"] is None:
        return f"{fmt(stats['mean'])} ({stats['count']})"
    half = (stats["ci"][1] - stats["ci"][0]) / 2.0
    return f"{fmt(stats['mean'])} ± {fmt(half).lstrip('+')} ({stats['count']})"


def _table(header, rows):
    """A Markdown table from a header list and rows of strings."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _flatten(config, prefix=""):
    """(dotted key, JSON value) pairs of a nested config dict, in key order."""
    for key in sorted(config):
        value = config[key]
        if isinstance(value, dict) and value:
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", json.dumps(value)


# ----------------------------------------------------------------------------- sections


def _title(analysis):
    counts = analysis["counts"]
    return (f"# Transfer study report\n\n"
            f"Source: {analysis['source']}. Runs: {counts['ok']} ok, {counts['failed']} failed, "
            f"{counts['skipped']} skipped. Metric: {analysis['metric']['name']}, "
            f"{analysis['metric']['description']}. Intervals are "
            f"{round(100 * analysis['confidence'])}% t-intervals over networks.")


def _configuration(analysis):
    config = analysis.get("config")
    splits = ", ".join(f"{s['split']} ({s['ok_runs']} ok runs)" for s in analysis["splits"])
    text = [f"## Configuration\n\nSplits: {splits or MISSING}."]
    if config is None:
        text.append("No run configuration was given (as for published results read from the "
                    "paper's CSV).")
    else:
        dataset = config.get("dataset") if isinstance(config, dict) else None
        if dataset is not None:
            text.append(f"Dataset: {json.dumps(dataset)}.")
        text.append(_table(["setting", "value"], [(f"`{k}`", f"`{v}`") for k, v in
                                                  _flatten(config)]))
    return "\n\n".join(text)


def _table_cells(source):
    """The cells the results table shows, from an analysis (or its "reference"): random splits
    pooled over target halves (the paper's convention: every half plays B), every other split
    group per target half, since there the halves are different tasks (natural vs man-made)."""
    return ([c for c in source["cells"] if c["group"] == "random"]
            + [c for c in source["cells_by_target"] if c["group"] != "random"])


def _cell_rows(cells, reference_cells, metric):
    """One row per (group, target, treatment): mean ± CI (count) of `metric` per n; below it,
    in italics, the reference's means for the same row where it has one."""
    ns = sorted({c["n"] for c in cells})
    rows = []
    for group, target, treatment, label in dict.fromkeys(
            (c["group"], c["target"], c["treatment"], c["label"]) for c in cells):
        mine = {c["n"]: c for c in cells
                if (c["group"], c["target"], c["treatment"], c["label"])
                == (group, target, treatment, label)}
        rows.append([group, target, label] + [_mean_pm(mine[n][metric], _acc) if n in mine
                                              else "" for n in ns])
        paper = {c["n"]: c for c in reference_cells
                 if (c["group"], c["target"], c["treatment"]) == (group, target, treatment)}
        if paper:
            rows.append(["", "", f"*paper {label}*"] + [
                f"*{_acc(paper[n][metric]['mean'])}*" if n in paper else "" for n in ns])
    return ["split group", "target", "treatment"] + [f"n={n}" for n in ns], rows


def _results(analysis):
    cells = _table_cells(analysis)
    if not cells:
        return "## Results per treatment and layer\n\nNo successful runs."
    reference = _table_cells(analysis["reference"]) if analysis.get("reference") else []
    header, rows = _cell_rows(cells, reference, "best_k")
    text = ["## Results per treatment and layer",
            f"{analysis['metric']['name']} ({analysis['metric']['description']}), mean ± 95% CI "
            "half-width (number of networks); random splits pooled over target halves, other "
            "splits per target half" + (", the paper's means in italics." if reference else "."),
            _table(header, rows)]
    tested = [c for c in cells if c["test_accuracy"]]
    if tested:
        header, rows = _cell_rows(tested, [], "test_accuracy")
        text += ["Test accuracy, mean ± 95% CI half-width (number of networks):",
                 _table(header, rows)]
    return "\n\n".join(text)


def _table1(analysis):
    table1 = analysis["table1"]
    reference = analysis.get("reference")
    header = ["layers", "AnB+ over base", "95% CI", "AnB+ over BnB+", "95% CI",
              "networks (AnB+ / base / BnB+)"]
    if reference:
        header += ["paper: over base", "paper: over BnB+"]
    rows = []
    for name, row in table1.items():
        counts = row["counts"]
        line = [name, _pts(row["over_base"]), _interval(row["over_base_ci"], _pts),
                _pts(row["over_selffer_ft"]), _interval(row["over_selffer_ft_ci"], _pts),
                f"{counts['transfer_ft']} / {counts['base']} / {counts['selffer_ft']}"]
        if reference:
            paper = reference["table1"][name]
            line += [_pts(paper["over_base"]), _pts(paper["over_selffer_ft"])]
        rows.append(line)

    matched = analysis["matched"]
    labels = list(next(iter(matched["by_range"].values()), {}))
    matched_rows = []
    for name, by_label in matched["by_range"].items():
        versus = matched["anb_plus_vs_bnb_plus"][name]
        matched_rows.append([name] + [_mean_pm(by_label[label], _pts) for label in labels]
                            + [_pts(versus["matched"]), _interval(versus["matched_ci"], _pts),
                               _pts(versus["pooled"])])
    unmatched = matched["unmatched_runs"]
    sources = "; ".join(f"{how}: {count} runs" for how, count in
                        matched["baseline_sources"].items())
    return "\n\n".join([
        "## Table 1: the generalization boost of AnB+",
        "The paper's way: the AnB+ networks of the layer range, pooled, minus the pooled mean of "
        "every base network of the random splits, or of the BnB+ networks of the range "
        "(percentage points, Welch 95% CI).",
        _table(header, rows),
        "Matched baselines: each run minus the base of its own split and target half (same seed "
        "where there is one, else the mean over seeds), in points, mean ± 95% CI half-width "
        "(networks). The last columns compare AnB+ with BnB+ both ways: the difference of their "
        "matched boosts, and the paper's pooled difference. Every AnB+ and BnB+ network may "
        "target a different half (in the paper all AnB+ target B halves and all BnB+ A halves), "
        "so the pooled difference carries half-to-half variance that the matched one removes.",
        _table(["layers"] + labels + ["AnB+ − BnB+ matched", "95% CI", "AnB+ − BnB+ pooled"],
               matched_rows),
        f"How the baselines were found: {sources}." if sources else "",
        (f"Runs without a base of their split and target half, left out of matched statistics: "
         f"{', '.join(unmatched)}." if unmatched else ""),
    ])


def _relative_drop(analysis):
    drop = analysis["relative_drop"]
    series = ("random_splits", "dissimilar", "random_features")
    by_n = {name: {c["n"]: c for c in drop[name]} for name in series}
    ns = sorted(set().union(*by_n.values()))
    if not ns:
        return ""
    rows = [[n] + [_mean_pm(by_n[name].get(n), _pts) for name in series] for n in ns]
    text = ["## Relative drop (Figure 3)",
            "Each run minus the base of its own split and target half, in points, mean ± 95% CI "
            "half-width (networks).",
            _table(["n", "AnB, random splits", "AnB, dissimilar split", "random frozen features"],
                   rows)]
    if drop["at_top"]:
        top = drop["at_top"]
        line = (f"At n={top['n']}: {_pts(top['random_splits'])} points across random splits, "
                f"{_pts(top['dissimilar'])} across the dissimilar split")
        reference = analysis.get("reference")
        if reference and reference["relative_drop"]["at_top"]:
            paper = reference["relative_drop"]["at_top"]
            line += (f" (paper at n={paper['n']}: {_pts(paper['random_splits'])} and "
                     f"{_pts(paper['dissimilar'])})")
        text.append(line + ".")
    return "\n\n".join(text)


def _findings(analysis):
    reference = analysis.get("reference")
    paper = {f["finding"]: f for f in reference["findings"]} if reference else {}
    header = ["#", "finding", "status", "effect (points)", "95% CI", "networks", "measure", "why"]
    if paper:
        header.append("paper: status, effect")
    rows = []
    for f in analysis["findings"]:
        count = str(f["count"]) + (f" vs {f['reference_count']}"
                                   if f["reference_count"] is not None else "")
        row = [f["finding"], f"{f['name']}: {f['claim']}", f"**{f['status']}**",
               _pts(f["effect"]), _interval(f["ci"], _pts), count, f["measure"], f["why"]]
        if paper:
            row.append(f"{paper[f['finding']]['status']}, {_pts(paper[f['finding']]['effect'])}")
        rows.append(row)
        for part in f.get("parts", []):
            rows.append(["", f"part: {part['measure']}", part["status"], _pts(part["effect"]),
                         _interval(part["ci"], _pts), "", "", part["why"]]
                        + ([""] if paper else []))
    rule = analysis["findings"][0]["rule"] if analysis["findings"] else MISSING
    return "\n\n".join([
        "## Findings check",
        "Effects are differences of matched points (each run minus the base of its own split "
        "and target half).",
        _table(header, rows),
        f"Rule: {rule}."])


def _figures(analysis):
    figures = analysis.get("figures") or []
    if not figures:
        return ""
    lines = ["## Figures"]
    for png in (f for f in figures if f.endswith(".png")):
        pdf = png[:-4] + ".pdf"
        link = f" ([PDF]({pdf}))" if pdf in figures else ""
        lines.append(f"![{png}]({png}){link}")
    return "\n\n".join(lines)


def _timing(analysis):
    timing = analysis["timing"]
    if not timing["by_treatment"]:
        return "## Run times and throughput\n\nThe records report no training times."
    rows = [[t["label"], t["runs"],
             MISSING if t["total_seconds"] is None else f"{t['total_seconds'] / 3600:.2f}",
             MISSING if t["mean_seconds"] is None else f"{t['mean_seconds']:.1f}",
             MISSING if t["mean_images_per_second"] is None
             else f"{t['mean_images_per_second']:.0f}"] for t in timing["by_treatment"]]
    total = timing["total_seconds"]
    return "\n\n".join([
        "## Run times and throughput",
        _table(["treatment", "ok runs", "total hours", "mean seconds per run",
                "mean images/s"], rows),
        f"Total training time: {MISSING if total is None else f'{total / 3600:.2f}'} hours."])


def _not_ok(analysis):
    runs = analysis["not_ok"]
    if not runs:
        return "## Failed and skipped runs\n\nNo run failed or was skipped."
    rows = [[f"`{r['run']}`", r["status"], r["reason"] or MISSING] for r in runs]
    return "\n\n".join(["## Failed and skipped runs",
                        "These runs enter no statistic above.",
                        _table(["run", "status", "reason"], rows)])


def _reproduce(analysis):
    command = analysis.get("command")
    if not command:
        return "## How to reproduce\n\nThe command that produced these runs was not recorded."
    return f"## How to reproduce\n\n```\n{command}\n```"
