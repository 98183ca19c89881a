"""What every estimator does to its inputs first: checks them, casts them to float64 and
relabels the classes 0..C-1 in order of first appearance (so permuting label ids changes no
score); and the centring and class means several estimators share."""

import numpy as np
import numpy.typing as npt


def prepare(
    features: npt.ArrayLike, labels: npt.ArrayLike, what: str = "features"
) -> tuple[np.ndarray, np.ndarray]:
    """float64 (N, d) features and labels relabelled 0..C-1 in order of first appearance."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    if x.ndim != 2:
        hint = "; use reduce_features first" if what == "features" else ""
        raise ValueError(f"{what} must be 2-D (N, d), got shape {x.shape}{hint}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"labels must have shape ({x.shape[0]},), got {y.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"need at least 2 examples, got {x.shape[0]}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what} hold {np.sum(~np.isfinite(x))} NaN or infinite values")
    ids, first, inverse = np.unique(y, return_index=True, return_inverse=True)
    if len(ids) < 2:
        raise ValueError(f"need at least 2 classes, got 1 (every label is {ids[0]})")
    rank = np.empty(len(ids), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(ids))
    return x, rank[inverse]


def centre(x: np.ndarray) -> np.ndarray:
    """x minus its column means, with constant columns exactly zero (rounding in the mean
    cannot turn them into noise)."""
    z = x - x.mean(axis=0)
    z[:, np.ptp(x, axis=0) == 0] = 0.0
    return z


def class_means(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(C, d): the mean of each class's rows."""
    return np.stack([x[y == c].mean(axis=0) for c in range(y.max() + 1)])
