"""H-score (Bao et al., "An information-theoretic approach to transferability in task transfer
learning", ICIP 2019), regularized as Ibrahim, Ponomareva and Mazumder define it ("Newer is not
always better: Rethinking transferability metrics, their peculiarities, stability and
performance", ECML PKDD 2022):

    H_a = tr(pinv(S_a) (1 - a) cov(E[f|y]))

the between-class variance in units of the total variance. S_a = (1 - a) S + a tr(S)/d I is the
Ledoit-Wolf shrinkage estimate of the features' covariance (S with 1/N, a the Ledoit-Wolf
intensity, as scikit-learn's LedoitWolf computes both), so it is defined when d >= N or S is
singular; cov(E[f|y]) = sum_c N_c (m_c - m)(m_c - m)^T / (N - 1) is the sample covariance of
each example's class mean (1/(N - 1), as numpy.cov). These are the conventions of the
regularized H-score of the Transfer-Learning-Library (TLlib), which this function equals.

The factor (1 - a) is the paper's: the features' covariance is the between-class plus the mean
within-class covariance (the law of total covariance), so the between-class part of S_a is
(1 - a) cov(E[f|y]). Leaving it out, with 1/N for both covariances, gives (N - 1)/(N (1 - a))
times H_a: 1% high at a = 0.01 but 48% high at a = 0.33, and a grows with the dimension for
the number of examples and differs between cut points, so the ranking can move. shrinkage=0
gives the unregularized tr(pinv(S) cov(E[f|y])), N/(N - 1) times Bao et al.'s ratio taken with
one normalization for both covariances.
Invariant to rotation, translation and scaling of X.

With d near or above N the Ledoit-Wolf a is large and the score shrinks with 1 - a; features
that are all constant score 0.
"""

import numpy as np
import numpy.typing as npt

from kerastransfer.estimators.inputs import centre, class_means, prepare
from kerastransfer.estimators.registry import Estimator, register

# H-score's pseudo-inverse drops covariance eigenvalues below this fraction of the largest.
HSCORE_RCOND = 1e-10


def h_score(
    features: npt.ArrayLike, labels: npt.ArrayLike, shrinkage: str | float = "ledoit-wolf"
) -> float:
    """Ibrahim et al.'s regularized H-score, tr(pinv(S_a) (1 - a) cov(E[f|y])) (module doc).

    shrinkage: "ledoit-wolf" (a the Ledoit-Wolf intensity) or a number a in [0, 1]; 0 is the
    unregularized H-score, inverted as a pseudo-inverse.
    """
    x, y = prepare(features, labels)
    n, d = x.shape
    z = centre(x)
    if isinstance(shrinkage, str) and shrinkage == "ledoit-wolf":
        from sklearn.covariance import ledoit_wolf_shrinkage  # noqa: PLC0415

        shrinkage = float(ledoit_wolf_shrinkage(z, assume_centered=True))
    elif isinstance(shrinkage, str) or not 0 <= shrinkage <= 1:
        raise ValueError(f"shrinkage must be 'ledoit-wolf' or in [0, 1], got {shrinkage}")
    covariance = z.T @ z / n
    covariance = (1 - shrinkage) * covariance + shrinkage * np.trace(covariance) / d * np.eye(d)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    keep = eigenvalues > HSCORE_RCOND * max(eigenvalues.max(), 0.0)
    counts = np.bincount(y)
    projected = class_means(z, y) @ eigenvectors[:, keep]
    # tr(pinv(S_a) B) with B = sum_c N_c m_c m_c^T / (N - 1), the class means m_c centred.
    between = np.sum(counts / (n - 1) * np.sum(projected**2 / eigenvalues[keep], axis=1))
    return float((1 - shrinkage) * between)


register(Estimator("hscore", "H-score", h_score))
