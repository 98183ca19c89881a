"""Transferability estimators against the measured grid: do they rank the cut points as
training does?

For each split and direction (source half -> target half), an estimator's score at each n,
averaged over the seeds' source networks, is set against the mean measured test accuracy at
the same n of the frozen (AnB) and of the fine-tuned (AnB+) transfers. Spearman's rho and
Kendall's tau over the n that have both (at least MIN_POINTS of them) say how closely the
estimator's ranking of the cut points follows training's; their mean over the groups
summarizes an estimator, and `verdict` puts it in words. Scores of a base network that was
trained again since (another weights_sha256 in the results) are left out.

A score an estimator could not give (None in scores.json, the reason under the entry's
"unscored") is n/a: the cut point drops out of that estimator's correlations (their `why`
counts it) and each group lists it with its reason; NaN anywhere counts as n/a too.

`regret` asks what taking an estimator's best-scored cut point would have cost: per split,
direction and measured treatment, its top-1 regret is the best mean test accuracy over the
measured n minus the mean test accuracy at the n the estimator scores highest (among the n with
both a score and a measured accuracy; tied scores: the mean accuracy over the tied n, what a
random pick among them gives on average), in percentage points, 0 when it picks the best. Beside
the estimators stand rules that read no data (RULES): the deepest measured cut, the middle one
(the lower of the two middles for an even count) and "fine-tune everything", which is the
fine-tuned treatment at its deepest cut, where every block is copied and trained and only the
head starts fresh (on the fine-tuned curve it is the deepest cut by construction; frozen
treatments have no such rule). A treatment with fewer than 2 measured n, or an estimator with
fewer than 2 such n or the same score at all of them, has no regret (None, with `why`). A
--prune study measured only the cut points its estimator chose, so every choice there is among
those (`pruned`).

`pruning` reports an own-model study's --prune choice: what it skipped, how the estimator's
order agreed with the cut points that were trained, and the networks and time it saved.
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypedDict, TypeGuard

import numpy as np
import numpy.typing as npt

from kerastransfer import treatments
from kerastransfer.analysis.records import is_base, ok_records
from kerastransfer.workdir.records import AnyRecord
from kerastransfer.workdir.scores import PruneRecord, ScoreEntry, Scores

# Fewest cut points with both a score and a measured accuracy that a correlation is taken on.
MIN_POINTS = 3
# A mean rank correlation of at least TRACKS "tracks" a treatment, of at least WEAK "tracks
# weakly"; the same below 0 ranks the cut points in reverse.
TRACKS, WEAK = 0.7, 0.3
# The rules of thumb beside the estimators in `regret`: they choose a cut point without data.
RULES = ("deepest", "middle", "fine_tune_all")
# Fewest measured cut points a choice is made among.
MIN_CHOICES = 2

# A group of the agreement: (split, source half, target half); the source is None for the
# recipes' records that copy nothing.
GroupKey = tuple[str, str | None, str]
# {n: a score or accuracy averaged over the seeds}, None where none is known.
Curve = dict[int, float | None]


class Correlation(TypedDict):
    """correlate's answer: the rank correlations over the cut points that have both."""

    points: int
    spearman: float | None
    kendall: float | None
    why: str | None  # why there is no correlation


class UnscoredGroup(TypedDict):
    """n/a scores of one reason: its cut points and the seeds' source networks."""

    n: list[int]
    seeds: list[int]
    why: str


class Best(TypedDict):
    """The best measured cut point of a curve."""

    n: int
    accuracy: float


class Choice(TypedDict):
    """A choice of cut point(s) on a measured curve and its top-1 regret in points, or why
    there is none (every other field None)."""

    n: list[int] | None
    accuracy: float | None
    regret: float | None
    why: str | None


class Pruning(PruneRecord):
    """pruning's answer: --prune's record, how its order agreed with the trained cut points'
    validation accuracy per treatment, and the networks and time it saved."""

    agreement: dict[str, Correlation]
    networks_skipped: int
    train_seconds: float | None
    seconds_saved_estimate: float | None


def verdict(rho: float | None) -> str:
    """A mean rank correlation in words."""
    if rho is None:
        return "undetermined"
    if rho >= TRACKS:
        return "tracks"
    if rho >= WEAK:
        return "tracks weakly"
    if rho > -WEAK:
        return "does not track"
    if rho > -TRACKS:
        return "ranks in reverse weakly"
    return "ranks in reverse"


def known(value: float | None) -> TypeGuard[float]:
    """Whether `value` is a number to rank: not None (n/a), not NaN or infinite."""
    return value is not None and math.isfinite(value)


def current_entries(scores: Scores, records: Iterable[AnyRecord]) -> list[ScoreEntry]:
    """The scores.json entries whose source network is the one the results hold now."""
    weights = {r.run: r.weights_sha256 for r in ok_records(records) if is_base(r)}
    return [
        entry
        for entry in scores["entries"]
        if weights.get(entry["source_run"], entry["weights_sha256"]) == entry["weights_sha256"]
    ]


def _group_key(split: str, source: str | None, target: str) -> GroupKey:
    return (split, source, target)


def score_curves(entries: Iterable[ScoreEntry]) -> dict[GroupKey, dict[str, Curve]]:
    """{(split, source, target): {estimator: {n: score averaged over the seeds}}}, None at
    an n where no seed's score is known (n/a)."""
    pooled: dict[GroupKey, dict[str, dict[int, list[float]]]] = {}
    for entry in entries:
        key = _group_key(entry["split"], entry["source"], entry["target"])
        for name, value in entry["scores"].items():
            values = pooled.setdefault(key, {}).setdefault(name, {}).setdefault(entry["n"], [])
            if known(value):
                values.append(value)
    return _mean_curves(pooled)


def unscored(entries: Iterable[ScoreEntry]) -> dict[GroupKey, dict[str, list[UnscoredGroup]]]:
    """{(split, source, target): {estimator: [{"n": [...], "seeds": [...], "why": reason}]}}:
    the n/a scores grouped by their reason, with the cut points and the seeds' source networks
    (none for a given source model) it stands for. Another seed's score at the same n still
    counts in the curve."""
    found: dict[GroupKey, dict[str, dict[str, tuple[set[int], set[int]]]]] = {}
    for entry in entries:
        key = _group_key(entry["split"], entry["source"], entry["target"])
        for name, value in entry["scores"].items():
            if not known(value):
                why = entry.get("unscored", {}).get(name, "no reason recorded")
                ns, seeds = (
                    found.setdefault(key, {}).setdefault(name, {}).setdefault(why, (set(), set()))
                )
                ns.add(entry["n"])
                if entry["seed"] is not None:
                    seeds.add(entry["seed"])
    return {
        key: {
            name: [
                {"n": sorted(ns), "seeds": sorted(seeds), "why": why}
                for why, (ns, seeds) in reasons.items()
            ]
            for name, reasons in by_name.items()
        }
        for key, by_name in found.items()
    }


def measured_treatments(records: Iterable[AnyRecord]) -> list[str]:
    """What the estimators are held against: the frozen and fine-tuned transfers (AnB, AnB+)
    and the recipes the study trained (treatments.RECIPES)."""
    trained = {r.treatment for r in ok_records(records)}
    return [*treatments.FROM_OTHER_HALF, *(t for t in treatments.RECIPES if t in trained)]


def accuracy_curves(
    records: Sequence[AnyRecord], metric: str = "test_accuracy"
) -> dict[GroupKey, dict[str, Curve]]:
    """{(split, source, target): {treatment: {n: mean `metric` over the seeds}}} of the
    measured treatments (measured_treatments)."""
    pooled: dict[GroupKey, dict[str, dict[int, list[float]]]] = {}
    measured = measured_treatments(records)
    for r in ok_records(records):
        if r.treatment in measured and known(getattr(r, metric)):
            key = _group_key(r.split, r.source, r.target)
            pooled.setdefault(key, {}).setdefault(r.treatment, {}).setdefault(r.n, []).append(
                getattr(r, metric)
            )
    return _mean_curves(pooled)


def _mean_curves(
    pooled: Mapping[GroupKey, Mapping[str, Mapping[int, list[float]]]],
) -> dict[GroupKey, dict[str, Curve]]:
    """{key: {name: {n: [values]}}} -> the same with each list's mean (None when it is
    empty), n in order."""
    return {
        key: {
            name: {
                n: float(np.mean(values)) if values else None for n, values in sorted(by_n.items())
            }
            for name, by_n in curves.items()
        }
        for key, curves in pooled.items()
    }


def correlate(
    scores: Mapping[int, float | None],
    measured: Mapping[int, float | None],
    min_points: int = MIN_POINTS,
) -> Correlation:
    """Spearman's rho and Kendall's tau between {n: score} and {n: accuracy} over the n where
    both are known (an n/a score, None or NaN, drops out); None (with `why`) when fewer than
    `min_points` or either side is constant."""
    common = sorted(n for n in set(scores) & set(measured) if known(measured[n]))
    missing = [n for n in common if not known(scores[n])]
    common = [n for n in common if known(scores[n])]
    result: Correlation = {"points": len(common), "spearman": None, "kendall": None, "why": None}
    x = np.array([scores[n] for n in common])
    y = np.array([measured[n] for n in common])
    if len(common) < min_points:
        result["why"] = f"{len(common)} cut points with both, fewer than {min_points}" + (
            f"; the score is n/a at n = {', '.join(map(str, missing))}" if missing else ""
        )
    elif np.ptp(x) == 0:
        result["why"] = "the score is the same at every n"
    elif np.ptp(y) == 0:
        result["why"] = "the accuracies are all equal"
    else:
        result["spearman"] = spearman(x, y)
        result["kendall"] = kendall(x, y)
    return result


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..N, ties sharing their mean rank."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(x: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Spearman's rho: the Pearson correlation of the ranks (ties at their mean rank)."""
    return float(np.corrcoef(_ranks(np.asarray(x)), _ranks(np.asarray(y)))[0, 1])


def kendall(x: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Kendall's tau-b: concordant minus discordant pairs over the pairs untied in each."""
    xs, ys = np.asarray(x), np.asarray(y)
    upper = np.triu_indices(len(xs), k=1)
    dx = np.sign(xs[:, None] - xs[None, :])[upper]
    dy = np.sign(ys[:, None] - ys[None, :])[upper]
    return float(np.sum(dx * dy) / np.sqrt(np.sum(dx != 0) * np.sum(dy != 0)))


def agreement(scores: Scores, records: Sequence[AnyRecord]) -> dict[str, Any]:
    """Each estimator's rank correlation with the measured AnB and AnB+ accuracies, per split
    and direction and on average (see module doc), as a JSON-ready dict."""
    entries = current_entries(scores, records)
    curves = score_curves(entries)
    missing = unscored(entries)
    measured = accuracy_curves(records)
    treated = measured_treatments(records)
    names = [name for name in scores["settings"]["estimators"]]
    groups: list[dict[str, Any]] = []
    for key in sorted(curves):
        split, source, target = key
        accuracy = measured.get(key, {})
        layers = sorted({n for curve in curves[key].values() for n in curve})
        groups.append(
            {
                "split": split,
                "source": source,
                "target": target,
                "n": layers,
                "scores": {
                    name: [curves[key][name].get(n) for n in layers]
                    for name in names
                    if name in curves[key]
                },
                "unscored": missing.get(key, {}),
                "accuracy": {t: [accuracy.get(t, {}).get(n) for n in layers] for t in treated},
                "correlations": {
                    name: {t: correlate(curves[key][name], accuracy.get(t, {})) for t in treated}
                    for name in names
                    if name in curves[key]
                },
            }
        )
    mean: dict[str, dict[str, dict[str, Any]]] = {}
    for name in names:
        mean[name] = {}
        for t in treated:
            found = [g["correlations"][name][t] for g in groups if name in g["correlations"]]
            rhos = [c["spearman"] for c in found if c["spearman"] is not None]
            taus = [c["kendall"] for c in found if c["kendall"] is not None]
            rho = float(np.mean(rhos)) if rhos else None
            mean[name][t] = {
                "spearman": rho,
                "kendall": float(np.mean(taus)) if taus else None,
                "groups": len(rhos),
                "verdict": verdict(rho),
                "why": None if rhos else next((c["why"] for c in found), "no scores"),
            }
    return {
        "estimators": names,
        "measured": treated,
        "settings": scores["settings"],
        "examples": sorted({entry["examples"] for entry in scores["entries"]}),
        "groups": groups,
        "mean": mean,
        "regret": _regret(curves, measured, treated, names, pruned=bool(scores.get("prune"))),
    }


def regret(scores: Scores, records: Sequence[AnyRecord]) -> dict[str, Any]:
    """Each estimator's and rule's top-1 regret per split, direction and measured treatment,
    and its mean over them (see module doc), as a JSON-ready dict; agreement() carries it
    under "regret"."""
    entries = current_entries(scores, records)
    names = list(scores["settings"]["estimators"])
    return _regret(
        score_curves(entries),
        accuracy_curves(records),
        measured_treatments(records),
        names,
        bool(scores.get("prune")),
    )


def _regret(
    curves: Mapping[GroupKey, Mapping[str, Curve]],
    measured: Mapping[GroupKey, Mapping[str, Curve]],
    treated: Sequence[str],
    names: Sequence[str],
    pruned: bool,
) -> dict[str, Any]:
    """regret()'s dict from the score curves and the measured accuracy curves."""
    groups: list[dict[str, Any]] = []
    for key in sorted(curves):
        split, source, target = key
        accuracy = measured.get(key, {})
        best: dict[str, Best | None] = {}
        choices: dict[str, dict[str, Choice]] = {}
        for t in treated:
            curve = {n: a for n, a in accuracy.get(t, {}).items() if known(a)}
            best[t] = _best(curve)
            for name in names:
                if name in curves[key]:
                    choices.setdefault(name, {})[t] = _estimator_choice(curves[key][name], curve)
            for rule in RULES:
                choices.setdefault(rule, {})[t] = _rule_choice(rule, t, curve)
        groups.append(
            {"split": split, "source": source, "target": target, "best": best, "choices": choices}
        )
    mean = {
        choice: {t: _mean_regret(groups, choice, t) for t in treated} for choice in [*names, *RULES]
    }
    for name in names:
        for t in treated:
            mean[name][t]["beats"] = _rules_beaten(mean, name, t)
    return {
        "estimators": names,
        "rules": list(RULES),
        "measured": treated,
        "metric": "test_accuracy",
        "unit": "percentage points",
        "pruned": pruned,
        "groups": groups,
        "mean": mean,
    }


def _best(curve: Mapping[int, float]) -> Best | None:
    """{"n", "accuracy"} of the best measured cut point (ties: the lower n), or None."""
    if not curve:
        return None
    n = max(curve, key=lambda k: (curve[k], -k))
    return {"n": n, "accuracy": curve[n]}


def _choice(curve: Mapping[int, float], chosen: Sequence[int]) -> Choice:
    """Choosing the cut points `chosen` (their accuracies averaged) on the measured `curve`:
    {"n", "accuracy", "regret", "why"}, regret in points below the curve's best."""
    accuracy = float(np.mean([curve[n] for n in chosen]))
    return {
        "n": sorted(chosen),
        "accuracy": accuracy,
        "regret": 100.0 * (max(curve.values()) - accuracy),
        "why": None,
    }


def _no_choice(why: str) -> Choice:
    return {"n": None, "accuracy": None, "regret": None, "why": why}


def _too_few(curve: Mapping[int, float]) -> str | None:
    """Why a choice on `curve` means nothing (fewer than MIN_CHOICES measured n), or None."""
    if len(curve) < MIN_CHOICES:
        return f"{len(curve)} measured cut points, fewer than {MIN_CHOICES}"
    return None


def _estimator_choice(scores: Mapping[int, float | None], curve: Mapping[int, float]) -> Choice:
    """The estimator's choice on a measured `curve`: the n it scores highest among those
    measured, all of them when tied."""
    few = _too_few(curve)
    if few:
        return _no_choice(few)
    scored = {n: scores[n] for n in curve if n in scores}
    common = {n: score for n, score in scored.items() if known(score)}
    if len(common) < MIN_CHOICES:
        missing = sorted(set(curve) - set(common))
        return _no_choice(
            f"{len(common)} cut points with both, fewer than {MIN_CHOICES}; the score is n/a "
            f"at n = {', '.join(map(str, missing))}"
        )
    top = max(common.values())
    chosen = [n for n, value in common.items() if value == top]
    if len(chosen) == len(common):
        return _no_choice("the score is the same at every n")
    return _choice(curve, chosen)


def _rule_choice(rule: str, treatment: str, curve: Mapping[int, float]) -> Choice:
    """A rule's choice on one treatment's measured `curve` (see module doc)."""
    trained = treatments.get(treatment)
    if rule == "fine_tune_all" and not trained.tunes_every_copied_block:
        return _no_choice("a rule for treatments that fine-tune every copied block")
    few = _too_few(curve)
    if few:
        return _no_choice(few)
    ns = sorted(curve)
    if rule == "middle":
        return _choice(curve, [ns[(len(ns) - 1) // 2]])
    return _choice(curve, [ns[-1]])  # the deepest cut, and fine-tune everything


def _rules_beaten(
    mean: Mapping[str, Mapping[str, Mapping[str, Any]]], name: str, treatment: str
) -> list[str]:
    """The rules whose mean regret on `treatment` is larger than estimator `name`'s."""
    mine = mean[name][treatment]["regret"]
    if mine is None:
        return []
    return [
        rule
        for rule in RULES
        if mean[rule][treatment]["regret"] is not None and mine < mean[rule][treatment]["regret"]
    ]


def _mean_regret(
    groups: Iterable[Mapping[str, Any]], choice: str, treatment: str
) -> dict[str, Any]:
    """The mean regret of `choice` on `treatment` over the groups where it has one."""
    found = [g["choices"][choice][treatment] for g in groups if choice in g["choices"]]
    regrets = [c["regret"] for c in found if c["regret"] is not None]
    return {
        "regret": float(np.mean(regrets)) if regrets else None,
        "groups": len(regrets),
        "why": None if regrets else next((c["why"] for c in found), "no scores"),
    }


def pruning(scores: Scores | None, records: Sequence[AnyRecord]) -> Pruning | None:
    """What an own-model study's --prune choice did, or None when it pruned nothing.

    The estimator's order of the trained cut points is set against their measured validation
    accuracy (final weights, as the recommendation ranks them) per mode, by Kendall's tau
    (with 2 trained n it is +1 or -1: the same order or the reverse). The time saved is an
    estimate: the skipped networks at the mean training time of the trained transfers.
    """
    if not scores or not scores.get("prune"):
        return None
    chosen = scores["prune"]
    estimator = chosen["estimator"]
    curve = {
        entry["n"]: entry["scores"][estimator]
        for entry in current_entries(scores, records)
        if estimator in entry["scores"]
    }
    ok = ok_records(records)
    measured = accuracy_curves(ok, metric="final_val")
    by_mode = next(iter(measured.values()), {})
    treated = measured_treatments(ok)
    orders = {
        t: correlate(
            {n: curve[n] for n in chosen["trained"] if n in curve},
            by_mode.get(t, {}),
            min_points=2,
        )
        for t in treated
    }
    transfers = [
        r.train_seconds for r in ok if r.treatment in treated and r.train_seconds is not None
    ]
    skipped = chosen["networks_planned"] - chosen["networks_trained"]
    per_network = float(np.mean(transfers)) if transfers else None
    trained_seconds = [r.train_seconds for r in ok if r.train_seconds is not None]
    return {
        **chosen,
        "agreement": orders,
        "networks_skipped": skipped,
        "train_seconds": math.fsum(trained_seconds) if trained_seconds else None,
        "seconds_saved_estimate": None if per_network is None else per_network * skipped,
    }
