"""report.md: the analysis of a transfer study as a Markdown document.

Renders the dict of kerastransfer.analysis.analyze() (analysis.json's, as written); every
number in the report is read from that dict, none is typed in.
Accuracies print as fractions (0.6251) with intervals clipped to [0, 1], differences as
percentage points (+1.60) with intervals over base networks; intervals are 95% t-intervals, and
a missing number prints as formats.MISSING. The Power section formats analysis.sizing's
finished rows and commands.
"""

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from kerastransfer.analysis.intervals import NOUN
from kerastransfer.analysis.power import MAX_UNITS
from kerastransfer.analysis.sizing import DETECTABLE, NO_EFFECT, NO_SPREAD, UNKNOWN_SPREAD
from kerastransfer.reporting import estimator_agreement
from kerastransfer.reporting.formats import MISSING, accuracy
from kerastransfer.workdir import files


def write_report(path: str, analysis: Mapping[str, Any]) -> str:
    """Writes render_report(analysis) to `path` atomically; returns `path`."""
    files.write_text(path, render_report(analysis))
    return path


def render_report(analysis: Mapping[str, Any]) -> str:
    """The whole report as Markdown text."""
    sections = [
        _title(analysis),
        _summary(analysis),
        _findings(analysis),
        _figures(analysis),
        _results(analysis),
        _table1(analysis),
        _relative_drop(analysis),
        _power(analysis),
        estimator_agreement.section(analysis.get("estimators")),
        _statistics(analysis),
        _timing(analysis),
        _not_ok(analysis),
        _configuration(analysis),
        _reproduce(analysis),
    ]
    return "\n\n".join(s.rstrip() for s in sections if s) + "\n"


# ----------------------------------------------------------------------------- formatting


def _pts(value: float | None) -> str:
    if value is None:
        return MISSING
    return f"{0.0 if round(value, 2) == 0 else value:+.2f}"  # no "-0.00"


def _interval(ci: Sequence[float] | None, fmt: Callable[[float], str]) -> str:
    return MISSING if ci is None else f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def _acc_ci(stats: Mapping[str, Any] | None) -> str:
    """'mean [low, high] (count)' of a summarize() dict of accuracies (its interval clipped to
    [0, 1]); without an interval just 'mean (count)'."""
    if not stats or stats["mean"] is None:
        return MISSING
    interval = "" if stats["ci"] is None else f" {_interval(stats['ci'], accuracy)}"
    return f"{accuracy(stats['mean'])}{interval} ({stats['count']})"


def _pts_pm(effect: Mapping[str, Any] | None) -> str:
    """'effect ± half-width (units)' of an inference dict in points; without an interval just
    'effect (units)'."""
    if not effect or effect["effect"] is None:
        return MISSING
    if effect["ci"] is None:
        return f"{_pts(effect['effect'])} ({effect['units']})"
    half = (effect["ci"][1] - effect["ci"][0]) / 2.0
    return f"{_pts(effect['effect'])} ± {_pts(half).lstrip('+')} ({effect['units']})"


def _units(effect: Mapping[str, Any]) -> str:
    """Base networks behind an effect: '4', or '2 vs 8' for two separate sides."""
    if effect["reference_units"] is None:
        return str(effect["units"])
    return f"{effect['units']} vs {effect['reference_units']}"


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table from a header list and rows of strings."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _flatten(config: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(dotted key, JSON value) pairs of a nested config dict, in key order."""
    for key in sorted(config):
        value = config[key]
        if isinstance(value, dict) and value:
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", json.dumps(value)


# ----------------------------------------------------------------------------- sections


def _title(analysis: Mapping[str, Any]) -> str:
    counts = analysis["counts"]
    units = analysis["base_networks"]
    listed = f" ({', '.join(units)})" if 0 < len(units) <= 12 else ""
    return (
        f"# Transfer study report\n\n"
        f"Source: {analysis['source']}. Runs: {counts['ok']} ok, {counts['failed']} failed, "
        f"{counts['skipped']} skipped. Metric: {analysis['metric']['name']}, "
        f"{analysis['metric']['description']}. Base networks that runs are compared with, "
        f"the unit of replication (split x target half x seed): {len(units)}{listed}. "
        f"Intervals are "
        f"{round(100 * analysis['confidence'])}% t-intervals: of accuracies over networks, "
        f'of effects over base networks (see "Statistics" below).'
    )


def _verdict(entry: Mapping[str, Any]) -> str:
    """'**status** (+0.89 points, 95% CI [+0.28, +1.50], 4 base networks)' of a finding."""
    if entry["effect"] is None:
        return f"**{entry['status']}** ({entry['why']})"
    interval = "" if entry["ci"] is None else f", CI {_interval(entry['ci'], _pts)}"
    return (
        f"**{entry['status']}** ({_pts(entry['effect'])} points{interval}, {_units(entry)} {NOUN}s)"
    )


def _beside_role(finding: Mapping[str, Any]) -> str:
    """What a finding's `beside` comparison is: the paper's (the plain base) when the
    compute-matched base decided, else the compute-matched control."""
    if finding.get("basis"):
        return f"against {finding['beside']['comparison']}, as the paper measures it"
    return f"against {finding['beside']['comparison']} (the control)"


def _summary(analysis: Mapping[str, Any]) -> str:
    """What the study found, in a few lines: each finding's verdict and what it is measured
    against, and a warning when the base networks were still improving."""
    lines = ["## What this study found", ""]
    for f in analysis["findings"]:
        line = f"- Finding {f['finding']}, {f['name']}: {_verdict(f)}, against {f['comparison']}"
        beside = f.get("beside")
        if f.get("basis"):
            line += f", because {f['basis']}"
        if beside:
            line += f"; {_beside_role(f)}: {_verdict(beside)}"
        lines.append(line + ".")
    convergence = analysis.get("base_convergence")
    if convergence and convergence["improving"]:
        late, longer = convergence["late_gain"], convergence["long_base"]
        evidence = []
        if longer:
            evidence.append(
                f"trained on for as many more steps as a transferred network, they gained "
                f"{_pts(longer['effect'])} points (CI {_interval(longer['ci'], _pts)}, "
                f"{longer['units']} {NOUN}s)"
            )
        if late:
            evidence.append(
                f"their last validation accuracies were {_pts(late['mean'])} points above the "
                f"ones before ({late['count']} bases)"
            )
        lines += [
            "",
            "**Warning: the base networks had not stopped improving** when their training "
            f"ended: {'; '.join(evidence)}. An effect measured against the plain base may be "
            "extra training rather than transfer; the compute-matched comparison separates "
            "the two.",
        ]
    return "\n".join(lines)


def _configuration(analysis: Mapping[str, Any]) -> str:
    config = analysis.get("config")
    splits = ", ".join(f"{s['split']} ({s['ok_runs']} ok runs)" for s in analysis["splits"])
    text = [f"## Configuration\n\nSplits: {splits or MISSING}."]
    if config is None:
        text.append(
            "No run configuration was given (as for published results read from the paper's CSV)."
        )
    else:
        dataset = config.get("dataset") if isinstance(config, dict) else None
        if dataset is not None:
            text.append(f"Dataset: {json.dumps(dataset)}.")
        text.append(
            _table(["setting", "value"], [(f"`{k}`", f"`{v}`") for k, v in _flatten(config)])
        )
    return "\n\n".join(text)


def _table_cells(source: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The cells the results table shows, from an analysis (or its "reference"): random splits
    pooled over target halves (the paper's convention: every half plays B; a base whose half
    no run targets is marked "source only"), every other split group per target half, since
    there the halves are different tasks (natural vs man-made)."""
    return [
        c | {"label": f"{c['label']} (source only)"} if c["target"] != "all" else c
        for c in source["cells"]
        if c["group"] == "random"
    ] + [c for c in source["cells_by_target"] if c["group"] != "random"]


def _cell_rows(
    cells: Sequence[Mapping[str, Any]], reference_cells: Sequence[Mapping[str, Any]], metric: str
) -> tuple[list[str], list[list[object]]]:
    """One row per (group, target, treatment): mean [CI] (count) of `metric` per n; below it,
    in italics, the reference's means for the same row where it has one."""
    ns = sorted({c["n"] for c in cells})
    rows = []
    for group, target, treatment, label in dict.fromkeys(
        (c["group"], c["target"], c["treatment"], c["label"]) for c in cells
    ):
        mine = {
            c["n"]: c
            for c in cells
            if (c["group"], c["target"], c["treatment"], c["label"])
            == (group, target, treatment, label)
        }
        rows.append(
            [group, target, label]
            + [_acc_ci(mine[n][metric]) if n in mine else "" for n in ns]
            + [_directions(mine)]
        )
        paper = {
            c["n"]: c
            for c in reference_cells
            if (c["group"], c["target"], c["treatment"]) == (group, target, treatment)
        }
        if paper:
            rows.append(
                ["", "", f"*paper {label}*"]
                + [f"*{accuracy(paper[n][metric]['mean'])}*" if n in paper else "" for n in ns]
                + [""]
            )
    header = ["split group", "target", "treatment"] + [f"n={n}" for n in ns]
    return header + [DIRECTIONS_HEADER], rows


DIRECTIONS_HEADER = "networks per cell, target B + target A"


def _directions(cells: Mapping[int, Mapping[str, Any]]) -> str:
    """How many networks of each direction a row's cells hold, by the half they target:
    "1 + 1" (target B + target A), a range "0 + 1-2" where the row's cells differ; a split
    whose networks target one shared half (the 1000-class "full") names it: "1 (full)"."""
    targets = [c["targets"] for c in cells.values() if c.get("targets") is not None]
    halves = sorted({h for t in targets for h in t}, key=lambda h: (h != "B", h != "A", h))

    def spread(half: str) -> str:
        counts = sorted({t.get(half, 0) for t in targets})
        return str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"

    if not targets:
        return ""
    if not {"A", "B"} & set(halves):
        return " + ".join(f"{spread(h)} ({h})" for h in halves)
    text = f"{spread('B')} + {spread('A')}"
    return text + "".join(f" + {spread(h)} ({h})" for h in halves if h not in ("A", "B"))


def _results(analysis: Mapping[str, Any]) -> str:
    cells = _table_cells(analysis)
    if not cells:
        return "## Results per treatment and layer\n\nNo successful runs."
    reference = _table_cells(analysis["reference"]) if analysis.get("reference") else []
    header, rows = _cell_rows(cells, reference, "best_k")
    text = [
        "## Results per treatment and layer",
        f"{analysis['metric']['name']} ({analysis['metric']['description']}), mean [95% CI, "
        "clipped to 0..1] (number of networks); random splits pooled over target halves, "
        "other splits per target half"
        + (", the paper's means in italics" if reference else "")
        + ". The random splits' baseB row holds "
        "the bases of the halves their runs target (in the paper all 8: each half plays B); "
        'a base that only gave layers is "source only". Both directions are pooled as in the '
        "paper's figures: a B->A network (it targets A) shares the cell of its A->B "
        f'counterpart under the B name; "{DIRECTIONS_HEADER}" counts each direction.',
        _table(header, rows),
    ]
    tested = [c for c in cells if c["test_accuracy"]]
    if tested:
        header, rows = _cell_rows(tested, [], "test_accuracy")
        text += [
            "Test accuracy, mean [95% CI, clipped to 0..1] (number of networks):",
            _table(header, rows),
        ]
    return "\n\n".join(text)


def _table1(analysis: Mapping[str, Any]) -> str:
    table1, matched = analysis["table1"], analysis["matched"]
    reference = analysis.get("reference")
    header = [
        "layers",
        "paper's way: AnB+ − baseB",
        "paper's way: AnB+ − BnB+",
        "networks (AnB+ / baseB / BnB+)",
        "matched: AnB+ − own base",
        "95% CI",
        "base networks",
        "matched: AnB+ − BnB+",
        "95% CI",
        "base networks",
    ]
    if reference:
        header += ["paper: AnB+ − baseB", "paper: AnB+ − BnB+"]
    rows = []
    for name, row in table1.items():
        counts = row["counts"]
        boost = matched["by_range"][name]["AnB+"]
        versus = matched["anb_plus_vs_bnb_plus"][name]["matched"]
        line = [
            name,
            _pts(row["over_base"]),
            _pts(row["over_selffer_ft"]),
            f"{counts['transfer_ft']} / {counts['base']} / {counts['selffer_ft']}",
            _pts(boost["effect"]),
            _interval(boost["ci"], _pts),
            _units(boost),
            _pts(versus["effect"]),
            _interval(versus["ci"], _pts),
            _units(versus),
        ]
        if reference:
            paper = reference["table1"][name]
            line += [_pts(paper["over_base"]), _pts(paper["over_selffer_ft"])]
        rows.append(line)
    labels = list(next(iter(matched["by_range"].values()), {}))
    matched_rows = [
        [name] + [_pts_pm(by_label[label]) for label in labels]
        for name, by_label in matched["by_range"].items()
    ]
    unmatched = matched["unmatched_runs"]
    sources = "; ".join(
        f"{how}: {count} runs" for how, count in matched["baseline_sources"].items()
    )
    return "\n\n".join(
        part
        for part in [
            "## Table 1: the generalization boost of AnB+",
            "Percentage points, two ways side by side. **The paper's way** (Section 4.1): the AnB+ "
            "networks of the layer range, pooled, minus the pooled mean of the baseB networks (the "
            "bases of the halves the random splits' runs target: all 8 in the paper), or minus "
            "the pooled BnB+ networks of the range; no interval, since pooled networks are not "
            "independent replicates. **Matched, per base network**: each AnB+ minus the base of "
            "its own split and target half, averaged per base network, with a 95% CI over base "
            "networks; AnB+ − BnB+ paired where the two share split, target half, seed and n, "
            "else "
            "compared over the two sides' base networks (Welch). The paper's AnB+ all target B "
            "halves and its BnB+ A halves, so its pooled AnB+ − BnB+ carries half-to-half variance "
            "that the matched one removes.",
            _table(header, rows),
            "Matched, every copied treatment: each run minus its own base, averaged per base "
            "network; mean ± 95% CI half-width over base networks (base networks).",
            _table(["layers"] + labels, matched_rows),
            f"How the baselines were found: {sources}." if sources else "",
            (
                "Runs without a base of their split and target half, left out of matched "
                f"statistics: {', '.join(unmatched)}."
                if unmatched
                else ""
            ),
        ]
        if part
    )


def _relative_drop(analysis: Mapping[str, Any]) -> str:
    drop = analysis["relative_drop"]
    series = ("random_splits", "dissimilar", "random_features")
    by_n = {name: {c["n"]: c for c in drop[name]} for name in series}
    ns = sorted(set().union(*by_n.values()))
    if not ns:
        return ""
    rows = [[n] + [_pts_pm(by_n[name].get(n)) for name in series] for n in ns]
    text = [
        "## Relative drop (Figure 3)",
        "Each run minus the base of its own split and target half, in points, mean ± 95% CI "
        "half-width over base networks (base networks).",
        _table(
            ["n", "AnB, random splits", "AnB, dissimilar split", "random frozen features"], rows
        ),
    ]
    if drop["at_top"]:
        top = drop["at_top"]
        line = (
            f"At n={top['n']}: {_pts(top['random_splits'])} points across random splits, "
            f"{_pts(top['dissimilar'])} across the dissimilar split"
        )
        reference = analysis.get("reference")
        if reference and reference["relative_drop"]["at_top"]:
            paper = reference["relative_drop"]["at_top"]
            line += (
                f" (paper at n={paper['n']}: {_pts(paper['random_splits'])} and "
                f"{_pts(paper['dissimilar'])})"
            )
        text.append(line + ".")
    return "\n\n".join(text)


def _findings(analysis: Mapping[str, Any]) -> str:
    reference = analysis.get("reference")
    paper = {f["finding"]: f for f in reference["findings"]} if reference else {}
    header = [
        "#",
        "finding",
        "status",
        "effect (points)",
        "95% CI",
        "base networks",
        "test",
        "measure",
        "compared with",
        "why",
    ]
    if paper:
        header.append("paper: status, effect")
    rows = []
    for f in analysis["findings"]:
        row = [
            f["finding"],
            f"{f['name']}: {f['claim']}",
            f"**{f['status']}**",
            _pts(f["effect"]),
            _interval(f["ci"], _pts),
            _units(f),
            f["test"],
            f["measure"],
            f["comparison"],
            f["why"],
        ]
        if paper:
            row.append(f"{paper[f['finding']]['status']}, {_pts(paper[f['finding']]['effect'])}")
        rows.append(row)
        extra = [("part", part) for part in f.get("parts", [])]
        if f.get("beside"):
            extra.append(("paper's" if f.get("basis") else "control", f["beside"]))
        for kind, entry in extra:
            rows.append(
                [
                    "",
                    f"{kind}: {entry['measure']}",
                    entry["status"],
                    _pts(entry["effect"]),
                    _interval(entry["ci"], _pts),
                    _units(entry),
                    entry["test"],
                    "",
                    entry["comparison"],
                    entry["why"],
                ]
                + ([""] if paper else [])
            )
    return "\n\n".join(
        [
            "## Findings check",
            "Effects are differences of matched points (each run minus the base of its own split "
            "and target half), averaged per base network; intervals are over base networks. "
            "Findings 1 (its dip) and 3 are measured against the plain base, as the paper does, "
            "and against the compute-matched base (the base trained on for as many more steps "
            "as a transferred network trains). The plain base decides, and a control row shows "
            "the compute-matched comparison, unless the bases were still improving (What this "
            "study found): then the compute-matched base decides, and a paper's row shows the "
            "plain comparison.",
            _table(header, rows),
        ]
    )


def _side_counts(values: Iterable[int]) -> str:
    """'4' for one side, '2 vs 8' for two."""
    return " vs ".join(str(v) for v in values)


def _sds(sds: Iterable[float | None]) -> str:
    """The spread(s) in points, '2.83' or '0.61 / 0.28'; MISSING where a side has none."""
    return " / ".join(MISSING if sd is None else f"{sd:.2f}" for sd in sds)


def _units_of(noun: str, per_side: bool) -> str:
    """`noun`, followed by "per side" for a two-sample test."""
    return f"{noun} per side" if per_side else noun


def _grown_units(line: Mapping[str, Any]) -> str:
    """What a "grow" command gives: '8 base networks' or '4 or 6 base networks per side', and
    how (halves x seeds)."""
    how = f"{line['seeds']} seed{'s' if line['seeds'] != 1 else ''}"
    if line["directions"]:
        how = f"both directions, {how}"
    units = _units_of(f"{NOUN}s", line["gives_per_side"])
    return f"{' or '.join(map(str, line['gives']))} {units} ({how})"


def _needs(row: Mapping[str, Any], level: str) -> str:
    """What a Power row says deciding it would take, in words."""
    state = row["state"]
    if state == DETECTABLE:
        if row["detectable"] is None:
            return f"{MISSING} (no spread to compute it from)"
        return (
            f"could have detected ±{row['detectable']:.2f} points or more ({level}, "
            f"{_side_counts(row['units'])} {NOUN}s, sd {_sds(row['sds'])})"
        )
    if state == NO_EFFECT:
        added = row["adds_split"]
        return "no effect measured" + (f"; the study lacks the {added} split" if added else "")
    if state == UNKNOWN_SPREAD:
        return (
            f"spread unknown (one {NOUN} on a side): a second seed estimates it; no size "
            f"is guessed before then"
        )
    if state == NO_SPREAD:
        return f"no spread: the {NOUN}s all give the same value (sd 0); more seeds measure one"
    units = _units_of(f"{NOUN}s", row["per_side"])
    if row["enough"] is None:
        return (
            f"more than {MAX_UNITS:,} {units} ({level}): the effect seen is tiny against its spread"
        )
    if row["enough"]:
        return (
            f"about {row['units_needed']} {units} ({level}): the study has them; its interval "
            f"missed 0 though a real effect of this size would mostly be found"
        )
    return f"about {row['units_needed']} {units} ({level}), if the effect seen is real"


def _command(line: Mapping[str, Any]) -> str:
    """A command of the Power section, after the findings it decides."""
    kind = line["kind"]
    if kind == "grow":
        goal = (
            "to estimate the spread"
            if line["estimate_spread"]
            else f"about {line['units_needed']} {_units_of(f'{NOUN}s', line['per_side'])} needed"
        )
        return f"({goal}): {_run(line)} gives {_grown_units(line)}"
    if kind == "no command":
        return f"(no command): {line['why']}"
    if kind == "add split":
        if line["flags"]:
            return f"(to measure it): {_run(line)} adds the {line['adds']} split"
        return f"(to measure it): add the {line['adds']} split to the study's --splits"
    return (
        f"at once: {_run(line)} ({line['seeds']} seeds"
        + (", both directions" if line["directions"] else "")
        + ")"
    )


def _power(analysis: Mapping[str, Any]) -> str:
    """## Power: per finding (and part), the effect and spread seen and what would decide it,
    or, decided, the smallest effect the study could have detected; the commands that grow
    the study to that size (analysis.sizing's finished rows and commands)."""
    summary = analysis.get("power")
    if not summary or not summary["rows"]:
        return ""
    level = f"{round(100 * summary['power'])}% power, {round(100 * summary['confidence'])}% level"
    rows = [
        [
            row["finding"] if row["part"] is None else f"{row['finding']}, part {row['part']}",
            row["measure"],
            row["status"],
            _pts(row["effect"]),
            _sds(row["sds"]),
            _side_counts(row["units"]),
            row["test"],
            _needs(row, level),
        ]
        for row in summary["rows"]
    ]
    lines = [
        f"- Finding{'s' if len(line['findings']) > 1 else ''} "
        f"{', '.join(map(str, line['findings']))} {_command(line)}."
        for line in summary["commands"]
    ]
    return "\n\n".join(
        part
        for part in [
            "## Power: what would decide each finding",
            f"For an inconclusive finding, the effect and spread (sd over {NOUN}s of their "
            f"values, in points) the study saw, and about how many {NOUN}s per side (split x "
            f"target half x seed) the test would need to decide it with {level} if the "
            f"effect seen is real; for a decided one, the smallest effect the study could "
            f"have detected with its {NOUN}s and spread. Method: {summary['method']}.",
            _table(
                [
                    "#",
                    "measure",
                    "status",
                    "effect (points)",
                    "sd (points)",
                    f"{NOUN}s",
                    "power calculation",
                    "what it would take",
                ],
                rows,
            ),
            (
                "Commands that grow the study (finished runs are kept; only the new ones "
                "train):\n\n" + "\n".join(lines)
                if lines
                else ""
            ),
        ]
        if part
    )


def _run(line: Mapping[str, Any]) -> str:
    """A Power command in backticks, or its flags added to the study's command."""
    if line["command"]:
        return f"`{line['command']}`"
    return f"the study's command with `{' '.join(line['flags'])}`"


def _statistics(analysis: Mapping[str, Any]) -> str:
    rule = analysis["findings"][0]["rule"] if analysis["findings"] else MISSING
    short = any(f"one {NOUN}" in (f["why"] or "") for f in analysis["findings"])
    return "\n\n".join(
        part
        for part in [
            "## Statistics",
            "The unit of replication is the base network (split x target half x seed): every run "
            "compared with one base shares that base's error, so a base network's runs are "
            "averaged first and intervals are taken over base networks. One base network on a "
            "side gives no interval, and so do base networks that all give the same value (sd 0); "
            "the effect "
            "alone then decides nothing. Two treatments that share split, target half, seed and n "
            "are compared in pairs. Accuracy intervals are clipped to [0, 1]. docs/statistics.md "
            "has the details.",
            f"Rule: {rule}.",
            f"**Multiple testing.** {analysis['multiple_testing']}",
            (
                "Findings with one base network on a side get intervals from more seeds or "
                "splits, or both directions: each seed adds one base network per split and "
                'target half ("Power" above gives the commands).'
                if short
                else ""
            ),
        ]
        if part
    )


def _figures(analysis: Mapping[str, Any]) -> str:
    figures = analysis.get("figures") or []
    if not figures:
        return ""
    lines = ["## Figures"]
    for png in (f for f in figures if f.endswith(".png")):
        pdf = png[:-4] + ".pdf"
        link = f" ([PDF]({pdf}))" if pdf in figures else ""
        lines.append(f"![{png}]({png}){link}")
    return "\n\n".join(lines)


def _timing(analysis: Mapping[str, Any]) -> str:
    timing = analysis["timing"]
    if not timing["by_treatment"]:
        return "## Run times and throughput\n\nThe records report no training times."
    rows = [
        [
            t["label"],
            t["runs"],
            MISSING if t["total_seconds"] is None else f"{t['total_seconds'] / 3600:.2f}",
            MISSING if t["mean_seconds"] is None else f"{t['mean_seconds']:.1f}",
            MISSING
            if t["mean_images_per_second"] is None
            else f"{t['mean_images_per_second']:.0f}",
        ]
        for t in timing["by_treatment"]
    ]
    total = timing["total_seconds"]
    return "\n\n".join(
        [
            "## Run times and throughput",
            _table(
                ["treatment", "ok runs", "total hours", "mean seconds per run", "mean images/s"],
                rows,
            ),
            f"Total training time: {MISSING if total is None else f'{total / 3600:.2f}'} hours.",
        ]
    )


def _not_ok(analysis: Mapping[str, Any]) -> str:
    runs = analysis["not_ok"]
    if not runs:
        return "## Failed and skipped runs\n\nNo run failed or was skipped."
    rows = [[f"`{r['run']}`", r["status"], r["reason"] or MISSING] for r in runs]
    return "\n\n".join(
        [
            "## Failed and skipped runs",
            "These runs enter no statistic above.",
            _table(["run", "status", "reason"], rows),
        ]
    )


def _reproduce(analysis: Mapping[str, Any]) -> str:
    command = analysis.get("command")
    if not command:
        return "## How to reproduce\n\nThe command that produced these runs was not recorded."
    return f"## How to reproduce\n\n```\n{command}\n```"
