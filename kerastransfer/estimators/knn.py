"""kNN: the mean stratified k-fold accuracy of a k-nearest-neighbour vote (k=5, capped at the
smallest class in each training fold), Euclidean distance on the raw features: invariant to
rotation, translation and scaling; unlike per-feature standardization it does not blow
near-constant, noisy channels up to unit scale. It reaches 1.0 on separable features and then
no longer ranks them."""

import numpy as np
import numpy.typing as npt

from kerastransfer.estimators.folds import cross_validate
from kerastransfer.estimators.inputs import prepare
from kerastransfer.estimators.registry import Estimator, register


def knn(
    features: npt.ArrayLike, labels: npt.ArrayLike, k: int = 5, folds: int = 5, seed: int = 0
) -> float:
    """Mean stratified k-fold accuracy of a k-nearest-neighbour vote, Euclidean on raw features.

    k is capped at the smallest class's count in each training fold (2 examples a class and
    k = 2 would tie every vote); ties go to the class whose label appears first.
    """
    from sklearn.neighbors import KNeighborsClassifier  # noqa: PLC0415

    if k < 1:
        raise ValueError(f"knn needs k >= 1, got {k}")
    x, y = prepare(features, labels)
    return cross_validate(
        "knn",
        x,
        y,
        folds,
        seed,
        lambda train_labels: KNeighborsClassifier(min(k, np.bincount(train_labels).min())),
    )


register(Estimator("knn", "kNN", knn))
