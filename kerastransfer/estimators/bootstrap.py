"""How firmly an estimator picks its k best cut points, by bootstrap resamples of the scored
images (behind --prune's separability check)."""

from collections.abc import Sequence
from typing import TypedDict

import numpy as np
import numpy.typing as npt

from kerastransfer.estimators import registry
from kerastransfer.estimators.apply import one_thread, score_or_why, score_set_or_why

# Bootstrap resamples of the scored images behind --prune's separability check.
BOOTSTRAP_REPLICATES = 100


class Stability(TypedDict):
    """top_k_stability's answer."""

    held: float  # the share of resamples whose k best cuts are the k best on all examples
    in_top_k: list[float]  # each cut's share of resamples that put it among the k best
    replicates: int


def top_k_stability(
    features_by_cut: Sequence[npt.ArrayLike],
    labels: npt.ArrayLike,
    estimator: str,
    k: int,
    replicates: int = BOOTSTRAP_REPLICATES,
    seed: int = 0,
) -> Stability:
    """How firmly `estimator` picks its k best cut points: the share of `replicates` bootstrap
    resamples of the examples (the same resample at every cut) whose k best cuts are the k best
    on all of them, and each cut's share of resamples that put it among the k best.

    A cut an estimator cannot score on a resample ranks last there, as in --prune; ties go to
    the lower cut. Returns {"held", "in_top_k": [share per cut], "replicates"}; an estimator
    that reads the source head (LEEP), not the features, is not resampled (ValueError).
    """
    if not registry.get(estimator).reads_cut_features:
        raise ValueError(
            f"{estimator} scores the source head, not the cut points: nothing to resample"
        )
    y = np.asarray(labels)
    rng = np.random.default_rng(seed)

    def top(rows: np.ndarray) -> frozenset[int]:
        scores = _scores_at(features_by_cut, y, estimator, rows)
        order = sorted(
            range(len(scores)),
            key=lambda i: (scores[i] is None, -(scores[i] or 0.0), i),
        )
        return frozenset(order[:k])

    counts, held = np.zeros(len(features_by_cut)), 0
    with one_thread():  # entered once for all the resamples' scores
        chosen = top(np.arange(len(y)))
        for _ in range(replicates):
            picked = top(rng.integers(0, len(y), len(y)))
            held += picked == chosen
            counts[list(picked)] += 1
    return {
        "held": held / replicates,
        "in_top_k": (counts / replicates).tolist(),
        "replicates": replicates,
    }


def _scores_at(
    features_by_cut: Sequence[npt.ArrayLike], labels: np.ndarray, estimator: str, rows: np.ndarray
) -> list[float | None]:
    """`estimator`'s score of every cut on the examples `rows` (None where it cannot score)."""
    resampled = [np.asarray(x)[rows] for x in features_by_cut]
    if registry.get(estimator).is_set:
        results = score_set_or_why(resampled, labels[rows], estimators=[estimator])
        return [values.get(estimator) for values, _ in results]
    return [score_or_why(x, labels[rows], estimators=[estimator])[0][estimator] for x in resampled]
