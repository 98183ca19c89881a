"""H-score (Bao et al., "An information-theoretic approach to transferability in task transfer
learning", ICIP 2019): tr(cov(X)^-1 cov(E[X|y])), the between-class variance in units of the
total variance. cov(X) is the Ledoit-Wolf shrinkage estimate (1-s) S + s tr(S)/d I, so it is
defined when d >= N or S is singular; the between-class covariance is sum_c N_c/N (m_c - m)
(m_c - m)^T, both with 1/N. Invariant to rotation, translation and scaling of X.

With d > N it is dominated by the d/N_c between-class variance that even noise has; features
that are all constant score 0.
"""

import numpy as np

from kerastransfer.estimators.inputs import centre, class_means, prepare
from kerastransfer.estimators.registry import Estimator, register

# H-score's pseudo-inverse drops covariance eigenvalues below this fraction of the largest.
HSCORE_RCOND = 1e-10


def h_score(features, labels, shrinkage="ledoit-wolf"):
    """H-score: tr(cov(X)^-1 cov(E[X|y])) with cov(X) shrunk towards tr(cov)/d I.

    shrinkage: "ledoit-wolf" (the Ledoit-Wolf intensity) or a number in [0, 1]; 0 is the plain
    1/N covariance of the original H-score, inverted as a pseudo-inverse.
    """
    x, y = prepare(features, labels)
    n, d = x.shape
    z = centre(x)
    if isinstance(shrinkage, str) and shrinkage == "ledoit-wolf":
        from sklearn.covariance import ledoit_wolf_shrinkage  # noqa: PLC0415

        shrinkage = ledoit_wolf_shrinkage(z, assume_centered=True)
    elif isinstance(shrinkage, str) or not 0 <= shrinkage <= 1:
        raise ValueError(f"shrinkage must be 'ledoit-wolf' or in [0, 1], got {shrinkage}")
    covariance = z.T @ z / n
    covariance = (1 - shrinkage) * covariance + shrinkage * np.trace(covariance) / d * np.eye(d)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    keep = eigenvalues > HSCORE_RCOND * max(eigenvalues.max(), 0.0)
    counts = np.bincount(y)
    projected = class_means(z, y) @ eigenvectors[:, keep]
    return float(np.sum(counts / n * np.sum(projected**2 / eigenvalues[keep], axis=1)))


register(Estimator("hscore", "H-score", h_score))
