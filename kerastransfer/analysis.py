"""Statistics of a transfer study: per-layer tables, the paper's Table 1, matched baselines, the
relative drop of Figure 3 and a check of the paper's five findings.

Input is a list of run records (dicts), one per trained network, in the schema the runner writes
to `workdir/results.jsonl`; `load_paper_csv` reads Yosinski et al.'s 136 published networks into
the same schema, so a reproduction and the paper go through identical code. Everything here is
pure Python and numpy (no TensorFlow): the analysis runs anywhere the results file is.

Units: accuracies are fractions (.6251); differences between accuracies (boosts, drops, effects)
are percentage points (+1.6), as the paper reports them. Every interval is a two-sided 95%
t-interval; statistics that need two or more networks are None (null in JSON) with fewer.

Command line:
    python -m kerastransfer.analysis WORKDIR          # WORKDIR/results.jsonl -> all outputs
    python -m kerastransfer.analysis --paper OUT_DIR  # the same from the paper's published networks
"""

import argparse
import csv
import json
import math
import os
import shlex
import sys

import numpy as np

from kerastransfer import fileio
from kerastransfer.errors import UsageError

TREATMENTS = ("base", "selffer", "selffer_ft", "transfer", "transfer_ft", "random")
STATUSES = ("ok", "failed", "skipped")

# The paper's names, seen from the target half B (Figure 2's legend).
PAPER_NAMES = {
    "selffer": "BnB",
    "selffer_ft": "BnB+",
    "transfer": "AnB",
    "transfer_ft": "AnB+",
    "random": "random",
}

# The layer ranges of the paper's Table 1.
LAYER_RANGES = {"1-7": range(1, 8), "3-7": range(3, 8), "5-7": range(5, 8)}

# Layers the findings look at: where BnB dips (finding 1) and where AnB leaves BnB (finding 2).
MIDDLE_LAYERS = range(3, 6)
HIGH_LAYERS = range(6, 8)

CONFIDENCE = 0.95
# An effect whose whole 95% CI lies within +-NEGLIGIBLE_POINTS points counts as no effect: the
# smallest effect the paper reports (Table 1) is 1.4 points, and split-to-split sd is 0.5.
NEGLIGIBLE_POINTS = 0.5

# The paper's 1000-class network ("netbase"): top-1 .5763, 42.5% error (SPEC.md, "Results to
# reproduce"). It is the baseline of the random-features networks, which trained on all 1000
# classes (split "full"). The shipped CSV holds it as a row; this constant stands in when a
# record set has split-"full" runs but not that base row (a filtered or hand-made subset).
PAPER_FULL_SPLIT = "full"
PAPER_FULL_BASE_TOP1 = 0.5763
PAPER_K = 10  # the paper reports the mean of each network's 10 best evaluations

# How the paper's CSV names splits.
_CSV_SPLITS = {"0": "random0", "1": "random1", "2": "random2", "3": "random3",
               "natman": "dissimilar", "full": PAPER_FULL_SPLIT}
_CSV_COLUMNS = ("network", "treatment", "split", "source", "target", "n", "best10", "final",
                "evaluations")


# ----------------------------------------------------------------------------- statistics


def _betainc(a, b, x):
    """Regularized incomplete beta function I_x(a, b) by Lentz's continued fraction.

    Numerical Recipes' `betai`; converges fast for x < (a + 1) / (a + b + 2), so the other side
    is computed by symmetry.
    """
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1.0) / (a + b + 2.0):
        return 1.0 - _betainc(b, a, 1.0 - x)
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    fraction = d
    for m in range(1, 500):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            fraction *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return math.exp(log_front) * fraction / a


def t_cdf(t, df):
    """P(T <= t) for Student's t with `df` (> 0, not necessarily whole) degrees of freedom."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p, df):
    """The p-quantile of Student's t with `df` degrees of freedom (bisection on `t_cdf`).

    Exact to about 1e-9, so no scipy is needed; `df` may be fractional (Welch's test).
    """
    if not 0.0 < p < 1.0 or not df > 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    high = 1.0
    while t_cdf(high, df) < p:
        high *= 2.0
    low = 0.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        if t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
        if high - low < 1e-10:
            break
    return 0.5 * (low + high)


def summarize(values):
    """Count, mean, sample sd and 95% t-interval of the mean of `values`.

    With one value sd and ci are None; with none, mean is None too.
    """
    values = [float(v) for v in values]
    count = len(values)
    if count == 0:
        return {"count": 0, "mean": None, "sd": None, "ci": None}
    mean = math.fsum(values) / count
    if count == 1:
        return {"count": 1, "mean": mean, "sd": None, "ci": None}
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (count - 1))
    half = t_quantile(0.5 + CONFIDENCE / 2.0, count - 1) * sd / math.sqrt(count)
    return {"count": count, "mean": mean, "sd": sd, "ci": [mean - half, mean + half]}


def difference(values, reference_values):
    """mean(values) - mean(reference_values) with Welch's 95% t-interval.

    The two groups are separate networks (unpaired); the interval needs two or more in each.
    """
    a, b = summarize(values), summarize(reference_values)
    result = {"effect": None, "ci": None, "count": a["count"], "reference_count": b["count"]}
    if a["mean"] is None or b["mean"] is None:
        return result
    result["effect"] = a["mean"] - b["mean"]
    if a["sd"] is None or b["sd"] is None:
        return result
    var_a, var_b = a["sd"] ** 2 / a["count"], b["sd"] ** 2 / b["count"]
    se = math.sqrt(var_a + var_b)
    if se == 0.0:
        result["ci"] = [result["effect"], result["effect"]]
        return result
    df = (var_a + var_b) ** 2 / (var_a ** 2 / (a["count"] - 1) + var_b ** 2 / (b["count"] - 1))
    half = t_quantile(0.5 + CONFIDENCE / 2.0, df) * se
    result["ci"] = [result["effect"] - half, result["effect"] + half]
    return result


def _one_sample(values):
    """summarize() in the effect/ci shape of difference(), for effects measured per network."""
    stats = summarize(values)
    return {"effect": stats["mean"], "ci": stats["ci"], "count": stats["count"],
            "sd": stats["sd"]}


# ----------------------------------------------------------------------------- records


def normalize_record(raw, where):
    """Checks one run record and returns it in canonical form; raises UsageError naming `where`.

    Canonical: source "" becomes None, n an int, status defaults to "ok", and an "ok" record
    has a finite `best_k`. Unknown keys (val_history, ...) are kept as they are.
    """
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: expected a JSON object per run, got {type(raw).__name__}; "
                         "fix or remove that record")

    def bad(field, why):
        return UsageError(f"{where}: {field}={raw.get(field)!r} {why}; fix or remove that record")

    record = dict(raw)
    if record.get("treatment") not in TREATMENTS:
        raise bad("treatment", f"is not one of {', '.join(TREATMENTS)}")
    record["status"] = record.get("status") or "ok"
    if record["status"] not in STATUSES:
        raise bad("status", f"is not one of {', '.join(STATUSES)}")
    for field in ("split", "target"):
        if not isinstance(record.get(field), str) or not record[field]:
            raise bad(field, "must be a non-empty string")
    record["source"] = record.get("source") or None
    n = record.get("n")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise bad("n", "must be a whole number >= 0 (0 for base networks)")
    seed = record.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise bad("seed", "must be a whole number or null")
    record["seed"] = seed
    for field in ("best_k", "test_accuracy", "final_val", "train_seconds", "images_per_second"):
        value = record.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value)):
            raise bad(field, "must be a finite number or null")
        record[field] = None if value is None else float(value)
    if record["status"] == "ok" and record["best_k"] is None:
        raise bad("best_k", "is missing for a run with status ok")
    if not record.get("run"):
        seed_part = "" if seed is None else f"/seed{seed}"
        record["run"] = (f"{record['split']}/{record['treatment']}/{record['target']}"
                         f"/n{n}{seed_part}")
    return record


def normalize_records(records, what="record"):
    """normalize_record() for every record of a list, each named by its position and run."""
    return [normalize_record(r, f"{what} {i} ({r.get('run') if isinstance(r, dict) else r!r})")
            for i, r in enumerate(records)]


def load_results_jsonl(path):
    """Reads a runner's results.jsonl: one JSON record per line, blank lines skipped.

    As kerastransfer.results.ResultStore reads it: an unterminated last line that does not parse
    is a write torn by a crash and is ignored, and when a run id appears more than once (a redone
    run) its last record wins. Any other bad line raises UsageError naming file and line.
    """
    if not os.path.isfile(path):
        raise UsageError(f"results file {path} does not exist; run the study first or pass the "
                         "workdir that holds results.jsonl")
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    latest = {}
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{line_number}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as error:
            if line_number == len(lines):  # no newline after it: a torn append
                break
            raise UsageError(f"{where}: not valid JSON ({error.msg}); fix or remove that "
                             "line") from None
        record = normalize_record(raw, where)
        latest.pop(record["run"], None)  # a redone run moves to its newest position
        latest[record["run"]] = record
    return list(latest.values())


# The shipped copy of the paper's per-network results (see reference/README.md).
PAPER_CSV = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference",
                         "yosinski2014_networks.csv")


def load_paper_csv(path=None):
    """Reads the paper's per-network CSV (default: the shipped copy) as run records.

    best10 -> best_k (k = 10), final -> final_val, splits 0..3 -> random0..random3,
    natman -> dissimilar, full stays full; test_accuracy is None (the paper has none).
    """
    path = path or PAPER_CSV
    if not os.path.isfile(path):
        raise UsageError(f"paper CSV {path} does not exist; pass the path of "
                         "yosinski2014_networks.csv")
    records = []
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in _CSV_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise UsageError(f"{path}:1: header lacks column(s) {', '.join(missing)}; expected "
                             f"{','.join(_CSV_COLUMNS)}")
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if row["split"] not in _CSV_SPLITS:
                raise UsageError(f"{where}: split={row['split']!r} is not one of "
                                 f"{', '.join(_CSV_SPLITS)}; fix that row")
            try:
                n, evaluations = int(row["n"]), int(row["evaluations"])
                best, final = float(row["best10"]), float(row["final"])
            except (TypeError, ValueError):
                raise UsageError(f"{where}: n, evaluations, best10 and final must be numbers, "
                                 f"got {row['n']!r}, {row['evaluations']!r}, {row['best10']!r}, "
                                 f"{row['final']!r}; fix that row") from None
            records.append(normalize_record({
                "run": row["network"], "treatment": row["treatment"],
                "split": _CSV_SPLITS[row["split"]], "source": row["source"],
                "target": row["target"], "n": n, "seed": None, "best_k": best, "k": PAPER_K,
                "final_val": final, "test_accuracy": None, "evaluations": evaluations,
                "status": "ok", "reason": None,
            }, where))
    return records


def split_group(split):
    """"random" for every random split (random0, random1, ...); any other split is its own group."""
    return "random" if split.startswith("random") else split


def _group_order(group):
    """Sort key: random splits first, then the dissimilar split, then the rest by name."""
    return ({"random": 0, "dissimilar": 1}.get(group, 2), group)


def paper_label(treatment, targets):
    """The paper's name for a treatment whose networks target `targets` (a set of halves).

    Every half plays the role of B for its own networks, so base networks pooled over halves are
    "baseB", as the paper's eight are; base networks of a single target X are "baseX".
    """
    if treatment == "base":
        return "base" + (next(iter(targets)) if len(targets) == 1 else "B")
    return PAPER_NAMES[treatment]


def ok_records(records):
    """The records that enter statistics: status "ok"."""
    return [r for r in records if r["status"] == "ok"]


def metric_description(records):
    """Human name of best_k for these records, e.g. "mean of the 10 best validation evaluations"."""
    ks = sorted({r.get("k") for r in ok_records(records) if r.get("k") is not None})
    if len(ks) == 1:
        return f"mean of the {ks[0]} best validation evaluations"
    if ks:
        return f"mean of the k best validation evaluations, k in {{{', '.join(map(str, ks))}}}"
    return "mean of the k best validation evaluations"


class Baselines:
    """Finds the base accuracy each run is compared with: its own split and target half.

    Same seed when that base exists, else the mean over the half's base seeds; for the paper's
    1000-class split without its base row, PAPER_FULL_BASE_TOP1.
    """

    def __init__(self, records):
        self._by_seed, self._by_half = {}, {}
        for r in ok_records(records):
            if r["treatment"] == "base":
                half = (r["split"], r["target"])
                self._by_half.setdefault(half, []).append(r["best_k"])
                self._by_seed.setdefault(half + (r["seed"],), []).append(r["best_k"])

    def lookup(self, record):
        """(baseline accuracy, how it was found) for `record`, or (None, None) if it has none."""
        half = (record["split"], record["target"])
        if record["seed"] is not None and half + (record["seed"],) in self._by_seed:
            return float(np.mean(self._by_seed[half + (record["seed"],)])), "same seed"
        if half in self._by_half:
            return float(np.mean(self._by_half[half])), "mean over the half's bases"
        if record["split"] == PAPER_FULL_SPLIT:
            return PAPER_FULL_BASE_TOP1, "paper constant (SPEC.md)"
        return None, None


def matched_points(records, sources=None):
    """(record, accuracy - its own baseline in points) for every ok non-base run with a baseline,
    and the names of the runs that have none. `sources`, a dict if given, counts how the
    baselines were found (Baselines.lookup)."""
    baselines = Baselines(records)
    matched, unmatched = [], []
    for r in ok_records(records):
        if r["treatment"] == "base":
            continue
        base, source = baselines.lookup(r)
        if base is None:
            unmatched.append(r["run"])
            continue
        matched.append((r, 100.0 * (r["best_k"] - base)))
        if sources is not None:
            sources[source] = sources.get(source, 0) + 1
    return matched, unmatched


# ----------------------------------------------------------------------------- tables


def _metric_stats(members, metric):
    """summarize() of `metric` over the records that have it, or None if none has it."""
    values = [r[metric] for r in members if r.get(metric) is not None]
    return summarize(values) if values else None


def cell_table(records, *, by_target=False):
    """Per (split group, treatment, n) statistics of best_k and test_accuracy over ok runs.

    Pooled over target halves, as the paper's Figure 2 and per-layer table are, unless
    `by_target`, which keeps one cell per target half.
    """
    cells = {}
    for r in ok_records(records):
        key = (split_group(r["split"]), r["treatment"], r["target"] if by_target else None, r["n"])
        cells.setdefault(key, []).append(r)
    table = []
    for (group, treatment, target, n), members in sorted(
            cells.items(), key=lambda item: (_group_order(item[0][0]),
                                             TREATMENTS.index(item[0][1]), item[0][2] or "",
                                             item[0][3])):
        targets = {m["target"] for m in members}
        table.append({
            "group": group, "treatment": treatment, "target": target if by_target else "all",
            "n": n, "label": paper_label(treatment, targets),
            "best_k": _metric_stats(members, "best_k"),
            "test_accuracy": _metric_stats(members, "test_accuracy"),
        })
    return table


def find_cell(cells, treatment, n, *, group="random", target="all"):
    """The cell of `cells` (from cell_table) for treatment/n/group/target, or None."""
    for cell in cells:
        if (cell["treatment"], cell["n"], cell["group"], cell["target"]) == (
                treatment, n, group, target):
            return cell
    return None


def _random_split_values(records, treatment, layers=None):
    """best_k of the ok runs of `treatment` on random splits, optionally with n in `layers`."""
    return [r["best_k"] for r in ok_records(records)
            if split_group(r["split"]) == "random" and r["treatment"] == treatment
            and (layers is None or r["n"] in layers)]


def table1(records):
    """The paper's Table 1: mean boost of AnB+ in points over base and over BnB+, per layer range.

    The paper's way: pool the AnB+ networks of the range (random splits only) and subtract the
    pooled mean of all base networks of the random splits, or of the BnB+ networks in the same
    range. CIs are Welch's, treating the pooled groups as independent networks.
    """
    bases = [100.0 * v for v in _random_split_values(records, "base")]
    table = {}
    for name, layers in LAYER_RANGES.items():
        boosted = [100.0 * v for v in _random_split_values(records, "transfer_ft", layers)]
        selffers = [100.0 * v for v in _random_split_values(records, "selffer_ft", layers)]
        over_base, over_selffer = difference(boosted, bases), difference(boosted, selffers)
        table[name] = {
            "layers": list(layers),
            "over_base": over_base["effect"], "over_base_ci": over_base["ci"],
            "over_selffer_ft": over_selffer["effect"], "over_selffer_ft_ci": over_selffer["ci"],
            "counts": {"transfer_ft": len(boosted), "base": len(bases),
                       "selffer_ft": len(selffers)},
        }
    return table


def matched_table(records):
    """Each run minus the base of its own split and target half, in points.

    `by_cell`: per (split group, treatment, n); `by_range`: per treatment and Table 1 range over
    the random splits; `anb_plus_vs_bnb_plus`: AnB+ against BnB+ both ways, the paper's pooled
    difference (Table 1) and the difference of their matched boosts, which removes the
    half-to-half variance the pooled one carries (every AnB+ of the paper targets a B half and
    every BnB+ an A half).
    """
    sources = {}
    matched, unmatched = matched_points(records, sources)
    cells = {}
    for r, points in matched:
        cells.setdefault((split_group(r["split"]), r["treatment"], r["n"]), []).append(
            (r["target"], points))
    by_cell = []
    for (group, treatment, n), members in sorted(
            cells.items(), key=lambda item: (_group_order(item[0][0]),
                                             TREATMENTS.index(item[0][1]), item[0][2])):
        by_cell.append({"group": group, "treatment": treatment, "n": n,
                        "label": paper_label(treatment, {t for t, _ in members}),
                        **summarize([p for _, p in members])})

    def range_points(treatment, layers):
        return [p for r, p in matched if split_group(r["split"]) == "random"
                and r["treatment"] == treatment and r["n"] in layers]

    pooled = table1(records)
    by_range, versus = {}, {}
    for name, layers in LAYER_RANGES.items():
        by_range[name] = {PAPER_NAMES[t]: summarize(range_points(t, layers))
                          for t in ("selffer", "selffer_ft", "transfer", "transfer_ft")}
        matched_difference = difference(range_points("transfer_ft", layers),
                                         range_points("selffer_ft", layers))
        versus[name] = {
            "pooled": pooled[name]["over_selffer_ft"],
            "pooled_ci": pooled[name]["over_selffer_ft_ci"],
            "matched": matched_difference["effect"], "matched_ci": matched_difference["ci"],
        }
    return {"by_cell": by_cell, "by_range": by_range, "anb_plus_vs_bnb_plus": versus,
            "baseline_sources": sources, "unmatched_runs": unmatched}


def relative_drop(records):
    """Figure 3's relative top-1 accuracy, per n, in points against each run's own base.

    Three series: transfer (AnB) across the random splits, across the dissimilar split, and
    random frozen features (any split). `at_top` compares the first two at the deepest n both
    have (the paper: about -8.3 vs -25.0 points at n = 7).
    """
    matched, _ = matched_points(records)

    def series(select):
        per_n = {}
        for r, points in matched:
            if select(r):
                per_n.setdefault(r["n"], []).append(points)
        return [{"n": n, **summarize(values)} for n, values in sorted(per_n.items())]

    result = {
        "random_splits": series(lambda r: r["treatment"] == "transfer"
                                and split_group(r["split"]) == "random"),
        "dissimilar": series(lambda r: r["treatment"] == "transfer"
                             and split_group(r["split"]) == "dissimilar"),
        "random_features": series(lambda r: r["treatment"] == "random"),
    }
    common = ({c["n"] for c in result["random_splits"]} & {c["n"] for c in result["dissimilar"]})
    if common:
        top = max(common)
        pick = {name: next(c for c in result[name] if c["n"] == top)
                for name in ("random_splits", "dissimilar")}
        result["at_top"] = {"n": top, "random_splits": pick["random_splits"]["mean"],
                            "dissimilar": pick["dissimilar"]["mean"]}
    else:
        result["at_top"] = None
    return result


# ----------------------------------------------------------------------------- findings


RULE = (f"reproduced if the 95% CI of the effect excludes 0 in the paper's direction; not "
        f"reproduced if it excludes 0 the other way, or lies entirely within "
        f"+-{NEGLIGIBLE_POINTS} points (negligible, checked first); inconclusive otherwise, and "
        f"whenever a side has a single network (no CI: the effect alone decides nothing)")


def decide(effect, ci, direction):
    """Status of an effect (points) whose paper direction is `direction` (+1 or -1); see RULE."""
    if effect is None:
        return "inconclusive", "no runs to measure it"
    if ci is None:
        return "inconclusive", "a single network on one side: no confidence interval"
    low, high = ci
    if -NEGLIGIBLE_POINTS < low and high < NEGLIGIBLE_POINTS:
        return "not reproduced", f"negligible: the CI lies within +-{NEGLIGIBLE_POINTS} points"
    if direction * low > 0 and direction * high > 0:
        return "reproduced", "the CI excludes 0 in the paper's direction"
    if direction * low < 0 and direction * high < 0:
        return "not reproduced", "the CI excludes 0 against the paper's direction"
    return "inconclusive", "the CI includes 0"


def _layers_text(layers):
    """"n=1..7", "n=3,5" or "none" for a sorted list of layers."""
    if not layers:
        return "none"
    if list(layers) == list(range(layers[0], layers[-1] + 1)) and len(layers) > 2:
        return f"n={layers[0]}..{layers[-1]}"
    return "n=" + ",".join(map(str, layers))


def _finding(number, name, claim, measure, direction, effect, parts=None):
    """One findings entry; `effect` is a difference()/one-sample dict in points."""
    status, why = decide(effect["effect"], effect["ci"], direction)
    entry = {"finding": number, "name": name, "claim": claim, "measure": measure,
             "direction": "positive" if direction > 0 else "negative",
             "effect": effect["effect"], "ci": effect["ci"], "count": effect["count"],
             "reference_count": effect.get("reference_count"), "unit": "points",
             "status": status, "why": why, "rule": RULE}
    if parts:
        entry["parts"] = parts
        statuses = [p["status"] for p in parts]
        if "not reproduced" in statuses:
            entry["status"], entry["why"] = "not reproduced", "a part is not reproduced"
        elif all(s == "reproduced" for s in statuses):
            entry["status"], entry["why"] = "reproduced", "every part is reproduced"
        else:
            entry["status"], entry["why"] = "inconclusive", "a part is inconclusive"
        entry["rule"] = RULE + "; a finding with parts is reproduced only if every part is"
    return entry


def findings(records):
    """Checks the paper's five findings on `records`; every effect is in matched points.

    Matched points (each run minus its own split and target base) remove the half-to-half
    variance that the paper's pooled comparisons carry, so findings hold or fail on their own.
    """
    matched, _ = matched_points(records)

    def points(treatment, layers=None, group="random"):
        return [p for r, p in matched if r["treatment"] == treatment
                and (group is None or split_group(r["split"]) == group)
                and (layers is None or r["n"] in layers)]

    middle, high = _layers_text(list(MIDDLE_LAYERS)), _layers_text(list(HIGH_LAYERS))

    dip = _one_sample(points("selffer", MIDDLE_LAYERS))
    repair = difference(points("selffer_ft", MIDDLE_LAYERS), points("selffer", MIDDLE_LAYERS))
    parts = []
    for effect, direction, measure in (
            (dip, -1, f"BnB - own base at {middle} (the dip)"),
            (repair, +1, f"BnB+ - BnB at {middle} (fine-tuning removes the dip)")):
        status, why = decide(effect["effect"], effect["ci"], direction)
        parts.append({"measure": measure, "effect": effect["effect"], "ci": effect["ci"],
                      "status": status, "why": why})
    result = [_finding(
        1, "fragile co-adaptation",
        "BnB dips below base at middle layers (worst -3.2 points at n=5); BnB+ removes the dip",
        f"BnB - own base at {middle}, random splits", -1, dip, parts)]

    result.append(_finding(
        2, "specificity", "AnB follows BnB up to n=5, then falls below it (-8.3 points at n=7)",
        f"(AnB - own base) - (BnB - own base) at {high}, random splits", -1,
        difference(points("transfer", HIGH_LAYERS), points("selffer", HIGH_LAYERS))))

    result.append(_finding(
        3, "generalization boost",
        "AnB+ beats the base at every n (Table 1: +1.6 / +1.8 / +2.1 points over baseB)",
        f"AnB+ - own base at {_layers_text(list(LAYER_RANGES['1-7']))}, random splits", +1,
        _one_sample(points("transfer_ft", LAYER_RANGES["1-7"]))))

    drop = relative_drop(records)
    layers = [drop["at_top"]["n"]] if drop["at_top"] else []
    result.append(_finding(
        4, "dissimilar tasks transfer worse",
        "relative drop at n=7: about -25 points across natural/man-made vs -8 across random splits",
        f"(AnB - own base) dissimilar split - random splits, at the deepest n both have "
        f"({_layers_text(layers)})", -1,
        difference(points("transfer", layers, "dissimilar"), points("transfer", layers))))

    # Random features against the most distant transfer there is, at the n values both have.
    distant_group = "dissimilar" if points("transfer", None, "dissimilar") else "random"
    shared = sorted({r["n"] for r, _ in matched if r["treatment"] == "random"}
                    & {r["n"] for r, _ in matched if r["treatment"] == "transfer"
                       and split_group(r["split"]) == distant_group})
    result.append(_finding(
        5, "random frozen features are far worse",
        "frozen random layers lose more than even distant transferred ones (.4917 at n=1, "
        ".4026 at n=2, chance for n>=3, against .5763 for the trained network)",
        f"(random - own base) - (AnB - own base, {distant_group} split"
        f"{'s' if distant_group == 'random' else ''}) at the n both have "
        f"({_layers_text(shared)})", -1,
        difference(points("random", shared, None), points("transfer", shared, distant_group))))
    return result


# ----------------------------------------------------------------------------- the whole analysis


def timing(records):
    """Training time and throughput per treatment label, from ok runs that report them."""
    groups = {}
    for r in ok_records(records):
        label = paper_label(r["treatment"], {r["target"]})
        groups.setdefault(label, []).append(r)
    rows = []
    for label, members in groups.items():
        seconds = [r["train_seconds"] for r in members if r["train_seconds"] is not None]
        speeds = [r["images_per_second"] for r in members if r["images_per_second"] is not None]
        if not seconds and not speeds:
            continue
        rows.append({"label": label, "runs": len(members),
                     "total_seconds": math.fsum(seconds) if seconds else None,
                     "mean_seconds": float(np.mean(seconds)) if seconds else None,
                     "mean_images_per_second": float(np.mean(speeds)) if speeds else None})
    total = [r["train_seconds"] for r in ok_records(records) if r["train_seconds"] is not None]
    return {"by_treatment": rows, "total_seconds": math.fsum(total) if total else None}


def analyze(records, *, config=None, reference_records=None, source_label="records"):
    """The full analysis of `records` (run dicts, see module doc) as a JSON-ready dict.

    `reference_records` (e.g. load_paper_csv()) adds their Table 1, cells and findings under
    "reference" for side-by-side comparison; `config` is carried into the report as given.
    """
    records = normalize_records(records)
    ok = ok_records(records)
    splits = {}
    for r in ok:
        splits[r["split"]] = splits.get(r["split"], 0) + 1
    analysis = {
        "source": source_label,
        "config": config,
        "metric": {"key": "best_k", "name": "Top-1 accuracy",
                   "description": metric_description(records)},
        "confidence": CONFIDENCE,
        "negligible_points": NEGLIGIBLE_POINTS,
        "counts": {status: sum(r["status"] == status for r in records) for status in STATUSES},
        "splits": [{"split": s, "group": split_group(s), "ok_runs": splits[s]}
                   for s in sorted(splits, key=lambda s: (_group_order(split_group(s)), s))],
        "cells": cell_table(records),
        "cells_by_target": cell_table(records, by_target=True),
        "table1": table1(records),
        "matched": matched_table(records),
        "relative_drop": relative_drop(records),
        "findings": findings(records),
        "timing": timing(records),
        "not_ok": [{"run": r["run"], "status": r["status"], "reason": r.get("reason"),
                    "treatment": r["treatment"], "split": r["split"], "n": r["n"]}
                   for r in records if r["status"] != "ok"],
        "reference": None,
    }
    if reference_records is not None:
        reference_records = normalize_records(reference_records, "reference record")
        analysis["reference"] = {
            "source": "Yosinski et al. 2014 (shipped yosinski2014_networks.csv)",
            "table1": table1(reference_records),
            "cells": cell_table(reference_records),
            "cells_by_target": cell_table(reference_records, by_target=True),
            "relative_drop": relative_drop(reference_records),
            "findings": [{k: f[k] for k in ("finding", "status", "effect", "ci")}
                         for f in findings(reference_records)],
        }
    return json_safe(analysis)


def json_safe(value):
    """`value` with numpy scalars made Python numbers and NaN/inf made None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_analysis(workdir, records, *, config=None, reference=None, source_label="results.jsonl",
                   command=None):
    """Analyzes `records` and writes workdir/analysis.json, workdir/figures/* and workdir/report.md.

    `reference`: records to compare with and draw faintly (load_paper_csv()), or None.
    `command`: the exact command that reproduces the study, quoted in the report.
    Returns the paths written: analysis.json, report.md, then the figures.
    """
    # Imported here: matplotlib is slow to load and analyze() never needs it.
    from kerastransfer import plots, report

    records = normalize_records(records)
    if reference is not None:
        reference = normalize_records(reference, "reference record")
    analysis = analyze(records, config=config, reference_records=reference,
                       source_label=source_label)
    figures = plots.plot_figures(os.path.join(workdir, "figures"), records,
                                 reference_records=reference)
    analysis["figures"] = [os.path.relpath(p, workdir) for p in figures]
    analysis["report"] = "report.md"
    analysis["command"] = command
    paths = [os.path.join(workdir, "analysis.json"), os.path.join(workdir, "report.md")]
    fileio.write_json(paths[0], analysis)
    report.write_report(paths[1], analysis)
    return paths + figures


def main(argv=None):
    """Command line: analyze a workdir, or the paper's own networks with --paper."""
    parser = argparse.ArgumentParser(prog="python -m kerastransfer.analysis",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", help="run directory with results.jsonl (and config.json); "
                        "with --paper, where to write the paper's analysis")
    parser.add_argument("--paper", action="store_true",
                        help="analyze the paper's published networks (shipped CSV) instead")
    parser.add_argument("--no-reference", action="store_true",
                        help="do not compare with or overlay the paper's numbers")
    args = parser.parse_args(argv)
    command = shlex.join(["python", "-m", "kerastransfer.analysis",
                          *(sys.argv[1:] if argv is None else argv)])
    try:
        if args.paper:
            paths = write_analysis(args.workdir, load_paper_csv(), command=command,
                                   source_label="Yosinski et al. 2014, published networks")
        else:
            config_path = os.path.join(args.workdir, "config.json")
            config = None
            if os.path.isfile(config_path):
                with open(config_path, encoding="utf-8") as f:
                    config = json.load(f)
            paths = write_analysis(
                args.workdir, load_results_jsonl(os.path.join(args.workdir, "results.jsonl")),
                config=config, reference=None if args.no_reference else load_paper_csv(),
                command=command)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with open(paths[0], encoding="utf-8") as f:
        for finding in json.load(f)["findings"]:
            print(f"finding {finding['finding']} ({finding['name']}): {finding['status']}")
    print("wrote " + ", ".join(paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
