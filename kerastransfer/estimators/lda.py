"""The shrinkage LDA that SFDA and NCTI rest on.

S_W = sum_c N_c/N cov_c, S_B = sum_c N_c/N (m_c - m)(m_c - m)^T (1/N covariances), each shrunk
as (1 - l) S + l tr(S)/d I (so S_B is the shrunk total minus the shrunk S_W); p(c | x) =
softmax_c(x^T S_W^-1 m_c - 1/2 m_c^T S_W^-1 m_c + log N_c/N) with the shrunk S_W (a
pseudo-inverse: eigenvalues below LDA_RCOND of the largest drop out), and the Fisher directions
are the min(C-1, d) leading generalized eigenvectors of (S_B, S_W), scaled so that V^T S_W V =
I. In one dimension the shrinkage changes nothing.

The LDA fits and scores the same examples (no folds), and at the floor of its shrinkage
(SHRINKAGE_FLOOR) with d near N it separates noise too: reduce d first. A direction in which no
class varies gets no weight (the pseudo-inverse), even where the class means differ along it;
features that are all constant give p(c | x) = N_c/N.
"""

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from kerastransfer.estimators.inputs import centre, class_means, prepare

# The shrinkage LDA's pseudo-inverse drops within-class eigenvalues below this fraction of the
# largest.
LDA_RCOND = 1e-10
# The least shrinkage SFDA and NCTI use (the authors' code: 1e-10).
SHRINKAGE_FLOOR = 1e-10


# A shrinkage LDA's fit: p(c | x_i) (N, C) and the centred features on its Fisher directions.
class LDA(NamedTuple):
    posteriors: np.ndarray
    fisher: np.ndarray


def shrunk(covariance: np.ndarray, shrinkage: float) -> np.ndarray:
    """(1 - shrinkage) S + shrinkage tr(S)/d I."""
    d = len(covariance)
    return (1 - shrinkage) * covariance + shrinkage * np.trace(covariance) / d * np.eye(d)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def within_class_covariance(features: npt.ArrayLike, labels: npt.ArrayLike) -> np.ndarray:
    """S_W = sum_c N_c/N cov_c (1/N_c covariances): the scatter about the class means, over N."""
    x, y = prepare(features, labels)
    deviations = x - class_means(x, y)[y]
    return deviations.T @ deviations / len(y)


def shrinkage_lda(features: npt.ArrayLike, labels: npt.ArrayLike, shrinkage: float) -> LDA:
    """SFDA's and NCTI's shrinkage LDA (module doc): LDA(posteriors, fisher), the posteriors
    in the order of first appearance of the labels. shrinkage: l in [0, 1]."""
    if not 0 <= shrinkage <= 1:
        raise ValueError(f"shrinkage must be in [0, 1], got {shrinkage}")
    x, y = prepare(features, labels)
    x = centre(x)  # changes no posterior; the Fisher features come out centred
    n = len(y)
    priors = np.bincount(y) / n
    means = class_means(x, y)
    deviations = x - means[y]
    within = shrunk(deviations.T @ deviations / n, shrinkage)
    between = shrunk(means.T @ (priors[:, None] * means), shrinkage)
    eigenvalues, eigenvectors = np.linalg.eigh(within)
    keep = eigenvalues > LDA_RCOND * max(eigenvalues.max(), 0.0)
    whiten = eigenvectors[:, keep] / np.sqrt(eigenvalues[keep])  # whiten^T S_W whiten = I
    z, m = x @ whiten, means @ whiten
    posteriors = softmax(z @ m.T - 0.5 * np.sum(m**2, axis=1) + np.log(priors))
    spread, directions = np.linalg.eigh(whiten.T @ between @ whiten)
    leading = np.argsort(spread)[::-1][: min(len(priors) - 1, whiten.shape[1])]
    return LDA(posteriors, z @ directions[:, leading])
