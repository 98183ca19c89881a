"""--prune=K's decision, from scores alone: which cut points of an own-model study to train.

The K best n of --layers by --prune_estimator's score (ties go to the lower n, an n/a score
ranks last) are trained, and one more when those K hold in fewer than PRUNE_HELD of the
bootstrap resamples of the scored images (not separable from the next); the other n's runs
leave the plan, the bases stay. This module only decides: study/scoring.py scores the source
model, resamples it where `resamples` says so (estimators.top_k_stability), writes the
decision's record into scores.json under "prune" (which the recommendation reports) and
replaces the plan's runs. It loads no TensorFlow, so the decision is tested on scores made by
hand.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from kerastransfer import treatments
from kerastransfer.estimators import registry
from kerastransfer.estimators.bootstrap import Stability
from kerastransfer.workdir.scores import PruneBootstrap, PruneRecord, ScoreEntry, Unscored

if TYPE_CHECKING:  # plan.py loads the data package, which loads TensorFlow
    from kerastransfer.study.plan import RunSpec

# --prune trains one cut more when its K best hold in fewer than this share of bootstrap
# resamples of the scored images (estimators.top_k_stability).
PRUNE_HELD = 0.95


class TimedStability(Stability):
    """estimators.top_k_stability's answer and the seconds it took."""

    seconds: float


@dataclasses.dataclass(frozen=True)
class Pruned:
    """--prune's decision: the plan's runs to train, and the record of why (scores.json's
    "prune")."""

    runs: list[RunSpec]
    record: PruneRecord


def resamples(estimator: str, k: int, layers: Sequence[int]) -> bool:
    """Whether --prune checks its K best by bootstrap: only an estimator that reads the cut's
    features (not LEEP's source head) can be resampled, and only when K leaves a cut out."""
    return registry.get(estimator).reads_cut_features and k < len(layers)


def ranking(
    entries: Sequence[ScoreEntry], layers: Iterable[int], estimator: str
) -> tuple[list[int], list[Unscored]]:
    """(the n of `layers` best first by `estimator`'s score in `entries`, one entry per n: ties
    go to the lower n, n/a ranks last; [{"n", "why"}] of the n/a scores, with the entry's
    reason)."""
    by_n = {entry["n"]: entry["scores"].get(estimator) for entry in entries}
    unscored: list[Unscored] = [
        {"n": e["n"], "why": e.get("unscored", {}).get(estimator, "no reason recorded")}
        for e in entries
        if by_n[e["n"]] is None
    ]

    def rank(n: int) -> tuple[bool, float, int]:
        """Best first: n/a after every score, ties to the lower n."""
        score = by_n[n]
        return (True, 0.0, n) if score is None else (False, -score, n)

    return sorted(layers, key=rank), unscored


def decide(
    entries: Sequence[ScoreEntry],
    runs: Sequence[RunSpec],
    layers: Sequence[int],
    estimator: str,
    k: int,
    scoring_seconds: float,
    stability: TimedStability | None = None,
) -> Pruned:
    """--prune=k's Pruned decision over the cut points `layers` of the plan's `runs` (RunSpecs),
    from the source model's scores.json `entries`.

    `stability`: top_k_stability's result on the same scores, with its "seconds", when
    `resamples` holds; None otherwise (no bootstrap). `scoring_seconds` is recorded as is.
    """
    ranked, unscored = ranking(entries, layers, estimator)
    kept = sorted(ranked[:k])
    bootstrap: PruneBootstrap | None = None
    if stability is not None:
        bootstrap = {
            **stability,
            "in_top_k": dict(zip(layers, stability["in_top_k"])),
            "extra": None,
        }
        if bootstrap["held"] < PRUNE_HELD:  # its top choices are not separable: one more
            bootstrap["extra"] = ranked[k]
            kept = sorted(ranked[: k + 1])
    trained = [spec for spec in runs if treatments.get(spec.treatment).is_base or spec.n in kept]
    record: PruneRecord = {
        "estimator": estimator,
        "k": k,
        "candidates": list(layers),
        "ranking": ranked,
        "unscored": unscored,
        "trained": kept,
        "skipped": sorted(set(layers) - set(kept)),
        "networks_planned": len(runs),
        "networks_trained": len(trained),
        "scoring_seconds": scoring_seconds,
        "bootstrap": bootstrap,
    }
    return Pruned(trained, record)


def describe(record: PruneRecord) -> str:
    """The console line of a decision's record: the ranking, the n/a scores, how often the K
    best held, and what trains."""
    bootstrap = record["bootstrap"]
    missing = "".join(f"; n/a at n={u['n']} ({u['why']}), ranked last" for u in record["unscored"])
    held = (
        ""
        if bootstrap is None
        else f"; its {record['k']} best held in {100 * bootstrap['held']:.0f}% of "
        f"{bootstrap['replicates']} bootstrap resamples of the scored images"
        + (
            f", not separable: n={bootstrap['extra']} trained too"
            if bootstrap["extra"] is not None
            else ""
        )
    )
    return (
        f"prune: {record['estimator']} ranks n={','.join(map(str, record['ranking']))}"
        f"{missing}{held}; training n={','.join(map(str, record['trained']))} "
        f"({record['networks_trained']} of {record['networks_planned']} networks, "
        f"skipping n={','.join(map(str, record['skipped'])) or 'none'})"
    )
