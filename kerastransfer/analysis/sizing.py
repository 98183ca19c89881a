"""How large a study would decide each finding: power analysis of the findings' tests.

For each finding (and each part of finding 1), from the effect and spread the study saw over
its base networks (kerastransfer.analysis.findings):

- decided (reproduced or not reproduced): the smallest effect the study could have detected,
  at POWER power and the 95% level, with its units and observed spread;
- inconclusive, with a spread: about how many units (base networks: split x target half x
  seed) per side the t-test needs to decide the effect seen at POWER power if it is real, and
  the one command that grows the study to that size (the stored command of config.json plus
  `--directions=both` when the study runs one direction, plus `--seeds=...`);
- inconclusive with one unit on a side: the spread is unknown, and a second seed estimates it;
  no number is made up. With base networks that all agree (sd 0) likewise.

Paired findings use the one-sample test on the units' differences, Welch findings the
two-sample test with the sides' spreads pooled (kerastransfer.analysis.power). A study grows
by units per split and target half with every seed it adds; `--directions=both` doubles the
halves of every split that has bases on both. docs/statistics.md, "Power".

The summary carries the report's Power section finished: `rows` (one per finding or part)
and `commands` (each with the findings it would decide), which reporting only words.
"""

import json
import math
import shlex
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, TypedDict, TypeGuard

from kerastransfer.analysis import power
from kerastransfer.analysis.baselines import Unit
from kerastransfer.analysis.intervals import ONE_SAMPLE, PAIRED, WELCH
from kerastransfer.analysis.records import is_base, ok_records
from kerastransfer.analysis.stats import CONFIDENCE
from kerastransfer.workdir.records import AnyRecord

DECIDED = ("reproduced", "not reproduced")
# An extension command lists at most this many seeds; past it the study is out of reach.
MAX_SEEDS = 100
# Flags an extension drops from the stored command besides those it sets: --overwrite would
# discard the finished runs that the extension keeps.
_DROPPED = ("--overwrite", "--nooverwrite")
# Findings whose measure needs a split group the study may lack: what --splits then adds.
_NEEDED_SPLITS = {"dissimilar tasks transfer worse": "dissimilar"}

# The power calculation of each inference test: a paired test is a one-sample test on the
# units' differences; a Welch test is sized as a two-sample test with each side's spread.
TESTS = {
    ONE_SAMPLE: "one-sample t",
    PAIRED: "paired t (one-sample t on the differences)",
    WELCH: "two-sample t (Welch)",
}
# Sizing states.
SIZED, DETECTABLE = "units needed", "smallest detectable effect"
UNKNOWN_SPREAD, NO_SPREAD, NO_EFFECT = "spread unknown", "no spread", "no effect measured"


class Grown(TypedDict):
    """A grown study (grown()): the flags it adds, its command, its seeds, "both" when it
    adds --directions=both, and the units each side would then hold."""

    flags: list[str]
    command: str | None  # None: the study's command is not known
    seeds: int
    directions: str | None
    units: list[int]


class NoExtension(TypedDict):
    """Why no extension grows the study (extension())."""

    why: str


class AddedSplit(TypedDict):
    """The extension that adds a split group a finding needs (_missing_split)."""

    flags: list[str]
    command: str | None
    adds: str


class Layout:
    """How the study's units grow: its seeds, the halves each split has base networks for,
    whether its runs target one half only (one direction), and config.json's command and
    --splits, if given."""

    def __init__(self, records: Sequence[AnyRecord], config: dict[str, Any] | None = None) -> None:
        ok = ok_records(records)
        self.seeds = sorted({r.seed for r in ok if _is_seed(r.seed)})
        self.halves: dict[str, set[str]] = {}
        for r in ok:
            if is_base(r):
                self.halves.setdefault(r.split, set()).add(r.target)
        targets = {r.target for r in ok if not is_base(r) and len(self.halves.get(r.split, ())) > 1}
        self.one_direction = len(targets) == 1
        config = config if isinstance(config, dict) else {}
        command = config.get("command")
        self.command = command if isinstance(command, str) and command.strip() else None
        stored = config.get("experiment")
        experiment = stored if isinstance(stored, dict) else {}
        stored_data = experiment.get("data")
        data = stored_data if isinstance(stored_data, dict) else {}
        splits = experiment.get("splits", data.get("splits"))
        self.splits = list(splits) if isinstance(splits, (list, tuple)) else None


def _is_seed(seed: object) -> TypeGuard[int]:
    return isinstance(seed, int) and not isinstance(seed, bool)


def _halves_after(layout: Layout, side: Iterable[Unit], both: bool) -> int:
    """The (split, half) pairs a side's units come from now, or with --directions=both."""
    now = {(unit[0], unit[1]) for unit in side}
    if not both:
        return len(now)
    return len({(split, half) for split, _ in now for half in layout.halves.get(split, ())} | now)


def _command(layout: Layout, flags: list[str]) -> str | None:
    """The study's stored command with `flags` (--name=value) replacing its own values of
    those flags (as --name=value or --name value) and without --overwrite; None without a
    stored command."""
    if layout.command is None:
        return None
    replaced = {flag.split("=", 1)[0] for flag in flags}
    kept: list[str] = []
    skip = False
    for token in shlex.split(layout.command):
        name = token.split("=", 1)[0]
        if skip or name in _DROPPED:
            skip = False
        elif name in replaced:
            skip = "=" not in token  # --seeds 0,1: the value is the next token
        else:
            kept.append(token)
    return shlex.join(kept + flags)


def extension(
    layout: Layout, sides: Sequence[Sequence[Unit]], needed: int | None = None
) -> Grown | NoExtension:
    """The smallest extension that gives every side (a list of unit ids) `needed` units, or
    one more seed when `needed` is None (to estimate a spread).

    Adds --directions=both when the study runs one direction and that adds halves to a
    side, then as few seeds as reach `needed` (more seeds multiply units per split and
    half). Returns grown(): {"flags", "command", "seeds", "directions", "units"} (units: per
    side, what the grown study holds), or {"why": ...} when seeds cannot be added (units
    without seeds, as the paper's) or more than MAX_SEEDS would be needed.
    """
    if not layout.seeds or any(not _is_seed(unit[2]) for side in sides for unit in side):
        return {
            "why": "its base networks have no seeds to add to (published networks, or runs "
            "compared with their half's mean of bases)"
        }
    both = (
        needed is not None
        and layout.one_direction
        and any(_halves_after(layout, s, True) > _halves_after(layout, s, False) for s in sides)
    )
    seeds = len(layout.seeds) + 1
    if needed is not None:
        halves = [max(1, _halves_after(layout, side, both)) for side in sides]
        seeds = max(len(layout.seeds), max(math.ceil(needed / h) for h in halves))
    if seeds > MAX_SEEDS:
        return {"why": f"it would take {seeds} seeds, more than {MAX_SEEDS}"}
    return grown(layout, sides, both, seeds)


def grown(layout: Layout, sides: Sequence[Sequence[Unit]], both: bool, seeds: int) -> Grown:
    """The study's command with --directions=both (if `both`) and `seeds` seeds (its own,
    then the next integers), and the units each side would then hold."""
    listed = list(layout.seeds)
    while len(listed) < seeds:
        listed.append(max(listed) + 1)
    flags = (["--directions=both"] if both else []) + (
        [f"--seeds={','.join(map(str, listed))}"] if seeds > len(layout.seeds) else []
    )
    return {
        "flags": flags,
        "command": _command(layout, flags),
        "seeds": seeds,
        "directions": "both" if both else None,
        "units": [max(1, _halves_after(layout, side, both)) * seeds for side in sides],
    }


def _sides(measured: Mapping[str, Any]) -> list[list[Unit]]:
    """The unit ids of each side of a measured effect (one side unless it is Welch's)."""
    sides = [measured.get("unit_ids") or []]
    if measured.get("reference_unit_ids") is not None:
        sides.append(measured["reference_unit_ids"])
    return sides


def size(measured: Mapping[str, Any], layout: Layout) -> dict[str, Any]:
    """The sizing entry of one measured effect (a finding, or a part of finding 1): its test,
    the effect, sd and units it saw, and what it needs (the module doc)."""
    two_sample = measured["test"] == WELCH
    sds = (measured["sd"], measured["reference_sd"]) if two_sample else (measured["sd"],)
    units = (measured["units"], measured["reference_units"]) if two_sample else (measured["units"],)
    entry: dict[str, Any] = {
        "test": TESTS[measured["test"]],
        "power": power.POWER,
        "confidence": CONFIDENCE,
        "effect": measured["effect"],
        "sds": list(sds),
        "units": list(units),
        "state": None,
        "units_needed": None,
        "detectable": None,
        "extension": None,
    }
    if measured["effect"] is None:
        entry["state"] = NO_EFFECT
    elif measured["status"] in DECIDED:
        entry["state"] = DETECTABLE
        entry["detectable"] = power.detectable(sds, units)
    elif min(units) < 2 or None in sds:
        entry["state"] = UNKNOWN_SPREAD
        entry["extension"] = extension(layout, _sides(measured))
    elif power.design(sds, units) is None:  # every side's base networks agree
        entry["state"] = NO_SPREAD
        entry["extension"] = extension(layout, _sides(measured))
    else:
        entry["state"] = SIZED
        needed = power.units_needed(measured["effect"], sds)
        entry["units_needed"] = needed
        if needed is not None and needed > min(units):
            entry["extension"] = extension(layout, _sides(measured), needed)
    return entry


def _worst(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The part that asks the most of a finding: no effect, then an unknown or zero spread,
    then the most units needed; among decided parts, the first."""
    order = {NO_EFFECT: 0, UNKNOWN_SPREAD: 1, NO_SPREAD: 2, SIZED: 3, DETECTABLE: 4}

    def demand(part: Mapping[str, Any]) -> tuple[int, float]:
        entry = part["power"]
        needed = entry["units_needed"]
        if needed is None and entry["state"] == SIZED:
            needed = math.inf  # out of reach
        return order[entry["state"]], -(needed or 0)

    return min(parts, key=demand)


def _missing_split(finding: Mapping[str, Any], layout: Layout) -> AddedSplit | None:
    """For a finding measured on a split group the study lacks, the extension that adds it."""
    split = _NEEDED_SPLITS.get(finding["name"])
    if finding["effect"] is not None or split is None or split in layout.halves:
        return None
    if not layout.halves:  # no runs at all: nothing to grow
        return None
    if layout.splits is None:  # the study's --splits are not known: name the split only
        return {"flags": [], "command": None, "adds": split}
    flags = [f"--splits={','.join([*layout.splits, split])}"]
    return {"flags": flags, "command": _command(layout, flags), "adds": split}


def size_findings(
    checked: Sequence[dict[str, Any]],
    records: Sequence[AnyRecord],
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Adds a "power" entry to every finding of `checked` (findings.check) and to each of its
    parts (a finding with parts takes the entry of its most demanding undecided part, and
    names it); returns the study-wide summary: the method in words and the one command that
    grows the study to decide every inconclusive finding whose spread is known and whose
    size is within MAX_SEEDS (or, when no spread is known, the one that estimates them)."""
    layout = Layout(records, config)
    sides: dict[int, list[list[Unit]]] = {}
    for finding in checked:
        parts = finding.get("parts")
        if parts:
            for part in parts:
                part["power"] = size(part, layout)
            worst = _worst([p for p in parts if p["status"] not in DECIDED] or parts)
            finding["power"] = dict(worst["power"], part=parts.index(worst) + 1)
            sides[finding["finding"]] = _sides(worst)
        else:
            finding["power"] = size(finding, layout)
            sides[finding["finding"]] = _sides(finding)
        finding["power"]["adds_split"] = _missing_split(finding, layout)
    sized = [
        f
        for f in checked
        if f["power"]["state"] == SIZED and "flags" in (f["power"]["extension"] or {})
    ]
    unknown = [
        f
        for f in checked
        if f["power"]["state"] in (UNKNOWN_SPREAD, NO_SPREAD)
        and "flags" in (f["power"]["extension"] or {})
    ]
    chosen = sized or unknown
    combined = None
    if chosen:
        extensions = [f["power"]["extension"] for f in chosen]
        combined = grown(
            layout,
            [side for f in chosen for side in sides[f["finding"]]],
            any(e["directions"] for e in extensions),
            max(e["seeds"] for e in extensions),
        )
    return {
        "power": power.POWER,
        "confidence": CONFIDENCE,
        "method": METHOD,
        "seeds": layout.seeds,
        "one_direction": layout.one_direction,
        "command": layout.command,
        "decide_all": combined,
        "decide_all_findings": [f["finding"] for f in chosen],
        "rows": rows(checked),
        "commands": commands(checked, combined, [f["finding"] for f in chosen]),
    }


def rows(checked: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The Power table's rows, one per finding or part of a sized `checked` list: what it
    measured and saw, and what deciding it takes. `part` is None for a finding of one
    part; `enough` (units needed sized) says whether the study already has the units, None
    when the answer is past power.MAX_UNITS; `adds_split` names the split group a finding
    without an effect lacks."""
    table = []
    for finding in checked:
        parts = finding.get("parts") or [finding]
        for index, part in enumerate(parts, 1):
            entry = part["power"]
            needed = entry["units_needed"]
            table.append(
                {
                    "finding": finding["finding"],
                    "part": None if len(parts) == 1 else index,
                    "measure": part["measure"],
                    "status": part["status"],
                    "state": entry["state"],
                    "test": entry["test"],
                    "effect": entry["effect"],
                    "sds": entry["sds"],
                    "units": entry["units"],
                    "per_side": len(entry["units"]) > 1,
                    "detectable": entry["detectable"],
                    "units_needed": needed,
                    "enough": None if needed is None else needed <= min(entry["units"]),
                    "adds_split": (entry.get("adds_split") or {}).get("adds"),
                }
            )
    return table


def _command_line(entry: Mapping[str, Any]) -> dict[str, Any] | None:
    """What a finding's sized `entry` asks to run, without the findings it decides: "grow"
    (its extension command: `estimate_spread`, or `units_needed` to decide it, and the units
    per side the grown study `gives`), "no command" (`why` there is none), "add split" (the
    split group it `adds`, with the command when the study's --splits are known); None when
    it asks for nothing."""
    extension = entry["extension"] or {}
    if "flags" in extension:
        sized = entry["state"] == SIZED
        return {
            "kind": "grow",
            "estimate_spread": not sized,
            "units_needed": entry["units_needed"] if sized else None,
            "per_side": len(entry["units"]) > 1 if sized else None,
            "command": extension["command"],
            "flags": extension["flags"],
            "gives": sorted(set(extension["units"])),
            "gives_per_side": len(extension["units"]) > 1,
            "seeds": extension["seeds"],
            "directions": extension["directions"],
        }
    if "why" in extension:
        return {"kind": "no command", "why": extension["why"]}
    added = entry.get("adds_split")
    if added:
        return {
            "kind": "add split",
            "adds": added["adds"],
            "command": added["command"],
            "flags": added["flags"],
        }
    return None


def commands(
    checked: Iterable[Mapping[str, Any]],
    combined: Grown | None,
    decide_all_findings: Collection[int],
) -> list[dict[str, Any]]:
    """The commands that grow the study, each with the `findings` it would decide, in the
    order of the first finding that asks for it (findings asking for the same one share it);
    last, `combined` ("all") when it decides `decide_all_findings` and no one finding's
    command does (their extensions differ)."""
    lines: dict[str, dict[str, Any]] = {}
    for finding in checked:
        line = _command_line(finding["power"])
        if line is not None:
            key = json.dumps(line, sort_keys=True)
            lines.setdefault(key, dict(line, findings=[]))["findings"].append(finding["finding"])
    listed = list(lines.values())
    distinct = {
        tuple(f["power"]["extension"]["flags"])
        for f in checked
        if f["finding"] in decide_all_findings
    }
    if combined is not None and len(distinct) > 1:
        listed.append(
            {
                "kind": "all",
                "findings": list(decide_all_findings),
                "command": combined["command"],
                "flags": combined["flags"],
                "seeds": combined["seeds"],
                "directions": combined["directions"],
            }
        )
    return listed


METHOD = (
    f"two-sided t-test at the {round(100 * CONFIDENCE)}% level with "
    f"{round(100 * power.POWER)}% power, from the effect and the spread over base networks "
    f"that the study saw, as if they were the truth: a one-sample t on the base networks' "
    f"means for one-sample and paired findings (a paired test is a one-sample test on the "
    f"differences; df = n - 1), a two-sample t with the two sides' own spreads for Welch "
    f"findings (Welch-Satterthwaite df; with equal spreads the textbook two-sample test, df = "
    f"2n - 2, n per side); the noncentral t by numerical integration (docs/statistics.md, "
    f'"Power"). The effects and spreads are themselves estimated from few base networks, '
    f"so the sizes are rough (an effect seen in a small study tends to overstate the true "
    f"one, which makes them optimistic)"
)
