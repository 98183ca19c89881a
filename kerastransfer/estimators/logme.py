"""LogME (You et al., "LogME: Practical assessment of pre-trained models for transfer learning",
ICML 2021): the maximized log evidence of a Bayesian linear regression of each one-hot label
column on X, per example, averaged over classes. Raw features, no centring, as in the paper.
Invariant to rotation and (up to the fixed point's tolerance) to scaling of X.

With d > N it uses the min(N, d) singular values, but its fixed point converges slowly there
(it may stop at the iteration cap a little below the maximum). A label column with no part
along X above rounding (centred features, PCA's among them, whose class means agree) sends
alpha off to infinity, and LogME returns that limit, the evidence of the column as noise, not
NaN; features that are all constant give the same.
"""

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from kerastransfer.estimators.inputs import prepare
from kerastransfer.estimators.registry import Estimator, register

# LogME's fixed point: stop when alpha and beta both change by less than this fraction.
LOGME_TOLERANCE, LOGME_MAX_ITERATIONS = 1e-3, 100


# One label column's LogME fit: log evidence / N at the fixed point, prior and noise precision.
class Evidence(NamedTuple):
    log_evidence: float
    alpha: float
    beta: float


def _log_evidence(n, s2, z, y_perp2, alpha, beta):
    """LogME's terms at (alpha, beta) from the spectrum s2 = s^2 of X and z = U^T y.

    Returns (log evidence, gamma, ||m||^2, ||Xm - y||^2, N - gamma) of the Bayesian linear
    regression y = Xw + noise, w ~ N(0, I/alpha), noise ~ N(0, I/beta), m the posterior mean.
    D/2 log alpha - 1/2 log|alpha I + beta X^T X| = -1/2 sum log(1 + beta s^2 / alpha): the
    zero eigenvalues of a d > N (or rank-deficient) X contribute nothing.
    """
    denominator = alpha + beta * s2
    gamma = np.sum(beta * s2 / denominator)
    n_minus_gamma = np.sum(alpha / denominator) + (n - len(s2))  # exact when gamma is near N
    m2 = np.sum((beta * np.sqrt(s2) * z / denominator) ** 2)
    residual2 = np.sum((alpha * z / denominator) ** 2) + y_perp2
    log_evidence = (
        0.5 * n * math.log(beta)
        - 0.5 * n * math.log(2 * math.pi)
        - 0.5 * beta * residual2
        - 0.5 * alpha * m2
        - 0.5 * np.sum(np.log1p(beta * s2 / alpha))
    )
    return log_evidence, gamma, m2, residual2, n_minus_gamma


def _logme_column(n, s2, u, y):
    """Maximize one column's evidence by the paper's fixed-point iteration; Evidence per example.

    When no part of y lies along X above rounding (features all zero, or with the same mean in
    every class once centred) alpha runs off to infinity; the evidence's supremum is then its
    alpha -> inf limit (w = 0), that of y as pure noise, maximized at beta = N / ||y||^2.
    """
    z = u.T @ y
    y_perp2 = max(float(y @ y - z @ z), 0.0)
    alpha, beta = 1.0, 1.0
    for _ in range(LOGME_MAX_ITERATIONS):
        _, gamma, m2, residual2, n_minus_gamma = _log_evidence(n, s2, z, y_perp2, alpha, beta)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            new_alpha = gamma / m2
        if not math.isfinite(new_alpha):
            beta = n / float(y @ y)
            log_evidence = 0.5 * n * (math.log(beta) - math.log(2 * math.pi) - 1)
            return Evidence(log_evidence / n, math.inf, beta)
        new_beta = n_minus_gamma / residual2
        converged = (
            abs(new_alpha - alpha) < LOGME_TOLERANCE * alpha
            and abs(new_beta - beta) < LOGME_TOLERANCE * beta
        )
        alpha, beta = new_alpha, new_beta
        if converged:
            break
    return Evidence(_log_evidence(n, s2, z, y_perp2, alpha, beta)[0] / n, alpha, beta)


def _spectrum(x):
    """Thin SVD of x: its left singular vectors and squared singular values (min(N, d) of them)."""
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    return u, s**2


def logme_evidence(features: npt.ArrayLike, target: npt.ArrayLike) -> Evidence:
    """LogME's fit of one real-valued target column: Evidence(log evidence / N, alpha, beta)."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"need features (N, d) and target (N,), got {x.shape} and {y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("features and target must be finite")
    if not np.any(y):
        raise ValueError("the target is all zeros: its evidence has no maximum")
    u, s2 = _spectrum(x)
    return _logme_column(len(y), s2, u, y)


def logme(features: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """LogME: the mean over classes of the maximized log evidence / N of each one-hot column."""
    x, y = prepare(features, labels)
    u, s2 = _spectrum(x)
    onehot = np.eye(y.max() + 1)[y]
    evidences = [_logme_column(len(y), s2, u, column).log_evidence for column in onehot.T]
    return float(np.mean(evidences))


register(Estimator("logme", "LogME", logme))
