"""workdir/scores.json: the transferability estimators' scores of a study's cut points.

Written by study/scoring.py (--mode=score, and --mode=all before it analyzes); read by the
analysis, which sets the scores against the measured accuracies, and by --prune.

An entry's score is null (n/a) where the estimator could not score that cut point; the entry's
"unscored" holds the reason. No NaN is written, so the file stays valid JSON.
"""

import os
from typing import TypedDict, cast

from kerastransfer.workdir import files

SCORES_FILE = "scores.json"


class ScoreSettings(TypedDict):
    """What every score depends on besides the source weights: a changed value scores again."""

    estimators: list[str]
    reduction: str  # --score_reduction
    examples: int  # --score_examples
    pca_components: int | None  # None unless the reduction is pca


class ScoreEntry(TypedDict):
    """The scores of one source network at one cut point n, on the images of `target`."""

    split: str
    source: str  # the half the network was trained on ("A" stands for a given model)
    target: str
    seed: int | None  # None for a given source model
    source_run: str  # its run id, or study/scoring.SOURCE_MODEL
    weights_sha256: str
    n: int
    cut: str  # the layer the cut point ends at
    dims: int
    examples: int
    scores: dict[str, float | None]  # estimator -> score, None where it is n/a
    unscored: dict[str, str]  # estimator -> why its score is n/a
    seconds: float


class PruneBootstrap(TypedDict):
    """How firmly --prune's K best held in bootstrap resamples (estimators.top_k_stability)."""

    held: float
    in_top_k: dict[int, float]  # n -> share of resamples (string keys once read back)
    replicates: int
    seconds: float
    extra: int | None  # the n trained as well because the K best did not hold


class Unscored(TypedDict):
    """A cut point --prune's estimator could not score, and why."""

    n: int
    why: str


class PruneRecord(TypedDict):
    """--prune's decision (study/pruning.py), kept under "prune" for the recommendation."""

    estimator: str
    k: int
    candidates: list[int]
    ranking: list[int]  # the candidates, best first
    unscored: list[Unscored]
    trained: list[int]
    skipped: list[int]
    networks_planned: int
    networks_trained: int
    scoring_seconds: float
    bootstrap: PruneBootstrap | None


class _Scores(TypedDict):
    settings: ScoreSettings
    seconds: float
    entries: list[ScoreEntry]


class Scores(_Scores, total=False):
    """The whole of scores.json: its settings, the entries and --prune's decision, if any."""

    prune: PruneRecord


def scores_path(workdir: str) -> str:
    return os.path.join(workdir, SCORES_FILE)


def read_scores(workdir: str) -> Scores | None:
    """The workdir's scores.json as a dict, or None when there is none."""
    path = scores_path(workdir)
    if not os.path.exists(path):
        return None
    stored = files.read_json(path, "entries", "remove it and score again with --mode=score")
    return cast(Scores, stored)  # as write_scores wrote it; only "entries" is checked


def write_scores(workdir: str, scores: Scores) -> str:
    """Writes scores.json atomically; returns its path."""
    path = scores_path(workdir)
    files.write_json(path, scores)
    return path
