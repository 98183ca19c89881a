"""NCTI (Wang et al., "How far pre-trained models are from neural collapse on the target dataset
informs their transferability", ICCV 2023): how near the features are to neural collapse, from
a shrinkage LDA (lda.py) on their first 64 principal components, l = exp(-(sum of their 32
largest variances)): S_seli = ||Z||_* of the centred features on the C-1 Fisher directions,
S_ncc = mean p(y | x), S_vc = log sum_c ||P_c||_*, P_c the posteriors of class c's examples.

NCTI ranks a set of candidates (a network's cut points), so it is a set estimator: each term is
min-max scaled over the set and NCTI = seli + ncc - vc (one candidate alone scores 0). Its
terms are invariant to rotation and translation of X.
"""

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from kerastransfer.estimators.inputs import centre, prepare
from kerastransfer.estimators.lda import SHRINKAGE_FLOOR, shrinkage_lda
from kerastransfer.estimators.registry import Estimator, register

# NCTI reads the first NCTI_COMPONENTS principal components; the sum of the largest
# NCTI_SHRINKAGE_VARIANCES of their variances sets its shrinkage exp(-sum).
NCTI_COMPONENTS, NCTI_SHRINKAGE_VARIANCES = 64, 32


# NCTI's three terms for one candidate: S_seli, S_ncc and S_vc (module doc).
class NCTITerms(NamedTuple):
    seli: float
    ncc: float
    vc: float


def _nuclear_norm(matrix):
    """The sum of the singular values."""
    return float(np.sum(np.linalg.svd(matrix, compute_uv=False)))


def ncti_terms(features: npt.ArrayLike, labels: npt.ArrayLike) -> NCTITerms:
    """NCTI's NCTITerms(seli, ncc, vc) for one candidate's features (module doc)."""
    x, y = prepare(features, labels)
    u, s, _ = np.linalg.svd(centre(x), full_matrices=False)
    kept = min(NCTI_COMPONENTS, len(s))
    variances = s[:NCTI_SHRINKAGE_VARIANCES] ** 2 / len(y)
    shrinkage = max(math.exp(-np.sum(variances)), SHRINKAGE_FLOOR)
    lda = shrinkage_lda(u[:, :kept] * s[:kept], y, shrinkage)
    classwise = sum(_nuclear_norm(lda.posteriors[y == c]) for c in range(y.max() + 1))
    return NCTITerms(
        seli=_nuclear_norm(lda.fisher),
        ncc=float(np.mean(lda.posteriors[np.arange(len(y)), y])),
        vc=math.log(classwise),
    )


def ncti(terms: Sequence[tuple[float, ...] | None]) -> list[float | None]:
    """NCTI over a set of candidates from their NCTITerms: each term min-max scaled over the set
    (a term equal across the set adds 0), seli + ncc - vc; None (n/a) stays None."""
    known_terms = [t for t in terms if t is not None]
    if not known_terms:
        return [None] * len(terms)
    table = np.array(known_terms, dtype=np.float64)
    span = np.ptp(table, axis=0)
    scaled = np.divide(table - table.min(axis=0), span, out=np.zeros_like(table), where=span > 0)
    scores = iter(scaled @ np.array([1.0, 1.0, -1.0]))
    return [None if t is None else float(next(scores)) for t in terms]


register(
    Estimator(
        "ncti",
        "NCTI",
        ncti_terms,
        over_set=ncti,
        note="which ranks a network's cut points against each other",
    )
)
