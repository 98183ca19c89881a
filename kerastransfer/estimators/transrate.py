"""TransRate (Huang et al., "Frustratingly easy transferability estimation", ICML 2022): the
coding rate reduction R(Z) - R(Z|Y) with R(Z) = 1/2 logdet(I + d/(N eps^2) Z^T Z) and R(Z|Y) =
sum_c N_c/N R(Z_c) (R(Z_c) with N_c in place of N), the paper's MCR^2 form. Z is X centred and
scaled to a mean squared row norm of 1; Z_c are Z's rows of class c, not centred again.
Invariant to rotation, translation and scaling of X.

It grows with the rank of Z (each dimension adds about log(1/eps^2)), so compare it only at
equal d and N; with d > N it is dominated by the rank of each class (<= N_c). Features that
are all constant score 0.
"""

import math

import numpy as np

from kerastransfer.estimators.inputs import centre, prepare
from kerastransfer.estimators.registry import Estimator, register


def coding_rate(z, eps=1e-4):
    """R(Z, eps) = 1/2 logdet(I + d/(N eps^2) Z^T Z), from the smaller of Z^T Z and Z Z^T."""
    n, d = z.shape
    gram = z.T @ z if d <= n else z @ z.T
    eigenvalues = np.clip(np.linalg.eigvalsh(gram), 0.0, None)
    return float(0.5 * np.sum(np.log1p(d / (n * eps**2) * eigenvalues)))


def transrate(features, labels, eps=1e-4):
    """TransRate: R(Z, eps) - sum_c N_c/N R(Z_c, eps), Z centred with mean squared row norm 1."""
    x, y = prepare(features, labels)
    z = centre(x)
    total = np.sum(z**2)
    if total == 0:
        return 0.0
    z *= math.sqrt(len(y) / total)
    conditional = sum(np.mean(y == c) * coding_rate(z[y == c], eps) for c in range(y.max() + 1))
    return float(coding_rate(z, eps) - conditional)


register(Estimator("transrate", "TransRate", transrate))
