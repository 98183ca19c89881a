"""Cross-validated accuracy, shared by the estimators that fit a classifier (linear_probe, knn).

A class with a single example leaves nothing to stratify: the folds shrink to the smallest
class count, and at 1 the score is NaN with a RuntimeWarning naming the class.
"""

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np


def cross_validate(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    folds: int,
    seed: int,
    make_model: Callable[[np.ndarray], Any],
) -> float:
    """Mean accuracy over stratified folds, reduced to the smallest class count; NaN below 2.

    make_model(training labels) returns a fresh, unfitted classifier for one fold (a
    scikit-learn estimator, which has no type information).
    """
    if folds < 2:
        raise ValueError(f"{name} needs folds >= 2, got {folds}")
    counts = np.bincount(y)
    folds = min(folds, counts.min())
    if folds < 2:
        warnings.warn(
            f"{name}: class {np.argmin(counts)} (in order of first appearance) has a single "
            "example, too few to stratify folds; returning NaN",
            RuntimeWarning,
            stacklevel=3,
        )
        return math.nan
    from sklearn.model_selection import StratifiedKFold  # noqa: PLC0415

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    accuracies: list[float] = []
    for train, test in splitter.split(x, y):
        model = make_model(y[train]).fit(x[train], y[train])
        accuracies.append(np.mean(model.predict(x[test]) == y[test]))
    return float(np.mean(accuracies))
