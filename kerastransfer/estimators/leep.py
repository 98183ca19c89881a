"""LEEP (Nguyen et al., "LEEP: A new measure to evaluate transferability of learned
representations", ICML 2020): the mean log-likelihood of the target labels under the source
head's probabilities theta composed with the empirical P(y|z). It reads the source network's
head, not a cut point's features, so it gives one score per source network: it cannot rank
cut points. It reaches 0 when the source head already predicts the target.
"""

import numpy as np
import numpy.typing as npt

from kerastransfer.estimators.inputs import prepare
from kerastransfer.estimators.registry import Estimator, register


def leep(source_probabilities: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """LEEP: (1/N) sum_i log sum_z P(y_i | z) theta_i(z), P(y | z) the empirical conditional."""
    theta, y = prepare(source_probabilities, labels, what="source_probabilities")
    if np.any(theta < 0) or not np.allclose(theta.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("source_probabilities must be non-negative with rows that sum to 1")
    theta = theta / theta.sum(axis=1, keepdims=True)
    n = len(y)
    joint = np.stack([theta[y == c].sum(axis=0) for c in range(y.max() + 1)]) / n  # P(y, z)
    marginal = joint.sum(axis=0)  # P(z); a source class no example predicts gets P(y|z) = 0
    conditional = np.divide(joint, marginal, out=np.zeros_like(joint), where=marginal > 0)
    likelihood = np.sum(theta * conditional[y], axis=1)
    return float(np.mean(np.log(likelihood)))


register(Estimator("leep", "LEEP", leep, reads_head=True, note="the source head's probabilities"))
