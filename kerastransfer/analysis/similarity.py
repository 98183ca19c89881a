"""Representation similarity between networks: linear CKA (Kornblith et al. 2019).

Beyond the paper: Yosinski et al. measure transferability by accuracy only; CKA shows directly
how alike two layers' activations are, e.g. layer n of baseA against layer n of AnB+ after
fine-tuning. Pure numpy.

`cka_runs` and `cka_heatmap` give the CKA heatmaps' numbers: each copied-layer network's CKA
with the base it was built from, per weight layer, from activations the caller supplies
(study/probing.py gathers them from the trained networks, with TensorFlow).
"""

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt

from kerastransfer import treatments
from kerastransfer.analysis.records import ok_records
from kerastransfer.workdir.records import AnyRecord, RunRecord

# The treatments whose networks start from a base's layers: their CKA with that base.
CKA_TREATMENTS = treatments.COPIED
# A real number as numpy's reductions give it.
_Real = float | np.floating[Any]
# activations(record): (layer names, [activations per layer]) of a finished run on the probe.
Activations = Callable[[RunRecord], tuple[list[str], list[np.ndarray]]]


class CkaHeatmap(TypedDict):
    """A split's CKA heatmap as cka.json holds it (cka_heatmap)."""

    rows: list[str]  # a label per run
    layers: list[str]  # the weight layers' names
    matrix: list[list[float | None]]  # a row per run, None where the CKA is undefined


def _centered(activations: npt.ArrayLike) -> np.ndarray:
    """[n_examples, ...] activations flattened to [n_examples, features], columns centered."""
    x = np.asarray(activations, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"activations need shape [n_examples, features...], got {x.shape}")
    x = x.reshape(x.shape[0], -1)
    return x - x.mean(axis=0, keepdims=True)


def linear_cka(x: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Centered linear CKA of two activation sets over the same examples, in [0, 1].

    CKA = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F) with centered columns. Trailing dimensions
    (conv feature maps) are flattened. Computed through the example-by-example Gram matrices
    when features outnumber examples (conv layers), else through feature covariances; the two
    are equal, and each is the cheaper one for its shape. Invariant to orthogonal transforms
    and isotropic scaling of either side; 1 for identical representations.
    """
    a, b = _centered(x), _centered(y)
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"linear_cka needs the same examples on both sides, got {a.shape[0]} and {b.shape[0]}"
        )
    if a.shape[0] < a.shape[1] + b.shape[1]:
        return gram_cka(a @ a.T, b @ b.T)
    cross = np.linalg.norm(b.T @ a) ** 2
    return _ratio(cross, np.linalg.norm(a.T @ a), np.linalg.norm(b.T @ b))


def gram(activations: npt.ArrayLike) -> np.ndarray:
    """The example-by-example Gram matrix of centered activations, for `gram_cka`: computed
    once per activation set when one set is compared with many."""
    x = _centered(activations)
    return x @ x.T


def gram_cka(gram_x: np.ndarray, gram_y: np.ndarray) -> float:
    """Linear CKA from two Gram matrices of centered activations (`gram`)."""
    if gram_x.shape != gram_y.shape:
        raise ValueError(
            f"gram_cka needs the same examples on both sides, got "
            f"{gram_x.shape[0]} and {gram_y.shape[0]}"
        )
    return _ratio(np.sum(gram_x * gram_y), np.linalg.norm(gram_x), np.linalg.norm(gram_y))


def _ratio(cross: _Real, norm_x: _Real, norm_y: _Real) -> float:
    if norm_x == 0.0 or norm_y == 0.0:
        raise ValueError("linear_cka is undefined for constant activations (zero variance)")
    return float(cross / (norm_x * norm_y))


def cka_matrix(acts_a: Iterable[npt.ArrayLike], acts_b: Iterable[npt.ArrayLike]) -> np.ndarray:
    """CKA of every activation set in `acts_a` (rows) against every one in `acts_b` (columns).

    E.g. the activations of layers 1..7 of two networks on the same examples.
    """
    centered_b = [_centered(b) for b in acts_b]
    return np.array([[linear_cka(a, b) for b in centered_b] for a in acts_a])


def cka_or_none(gram_x: np.ndarray, gram_y: np.ndarray) -> float | None:
    """`gram_cka`, or None where it is undefined (a layer whose activations are constant on
    the probe batch, as in a dead network): one cell, not the analysis, is lost."""
    try:
        return gram_cka(gram_x, gram_y)
    except ValueError:
        return None


def cka_runs(
    records: Iterable[AnyRecord], split: str
) -> tuple[list[RunRecord], dict[str, RunRecord]] | None:
    """What a split's CKA heatmap compares: its finished seed-0 runs of CKA_TREATMENTS in the
    table's order, and the finished seed-0 bases they were built from ({half: record}); None
    when it has no such run or a base did not finish."""
    finished = {r.run: r for r in ok_records(records)}
    runs = sorted(
        (
            r
            for r in finished.values()
            if r.split == split and r.treatment in CKA_TREATMENTS and r.seed == 0
        ),
        key=lambda r: (CKA_TREATMENTS.index(r.treatment), r.n),
    )
    bases = {half: f"{split}/base/{half}/seed0" for half in ("A", "B")}
    if not runs or not set(bases.values()) <= finished.keys():
        return None
    return runs, {half: finished[run] for half, run in bases.items()}


def cka_heatmap(
    runs: Iterable[RunRecord], bases: Mapping[str, RunRecord], activations: Activations
) -> CkaHeatmap:
    """The linear CKA of each run's weight layers with its source base's, as cka.json holds it:
    {"rows": a label per run, "layers": the layer names, "matrix": a row per run, None where
    undefined}. `activations(record)`: (layer names, [activations per layer]) of a finished
    run on the probe batch; `runs`, `bases` as `cka_runs` returns them."""
    base_grams: dict[str | None, list[np.ndarray]] = {}  # by half: a copied run's source
    for half, record in bases.items():
        layers, acts = activations(record)
        base_grams[half] = [gram(a) for a in acts]
    rows: list[str] = []
    matrix: list[list[float | None]] = []
    for record in runs:
        _, acts = activations(record)
        rows.append(f"{treatments.display_name(record.treatment, record.target)} n={record.n}")
        matrix.append([cka_or_none(gram(a), b) for a, b in zip(acts, base_grams[record.source])])
    return {"rows": rows, "layers": layers, "matrix": matrix}
