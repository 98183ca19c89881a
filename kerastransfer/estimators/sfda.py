"""SFDA (Shao et al., "Not all models are equal: Predicting model transferability in a
self-challenging Fisher space", ECCV 2022): the mean p(y | x^) of a shrinkage LDA (lda.py)
fitted again on "self-challenged" features x^ = s x + (1 - s) m_-y, each example pulled towards
the mean m_-y of the other classes' means by as much as the first LDA doubts it (s =
softmax(p(. | x))_y, the authors' softening of the posterior). The shrinkage l = exp(-5
sigma_max(S_W)) serves both fits. Invariant to rotation and translation of X; scaling moves l.
It reaches 1.0 on separable features and then no longer ranks them.
"""

import math

import numpy as np
import numpy.typing as npt

from kerastransfer.estimators.inputs import centre, class_means, prepare
from kerastransfer.estimators.lda import (
    SHRINKAGE_FLOOR,
    shrinkage_lda,
    softmax,
    within_class_covariance,
)
from kerastransfer.estimators.registry import Estimator, register

# SFDA's shrinkage exp(-SFDA_SHARPNESS sigma_max(S_W)), at least SHRINKAGE_FLOOR (the authors'
# code: 5).
SFDA_SHARPNESS = 5.0


def sfda(features: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """SFDA: the mean p(y | x^) of the shrinkage LDA refitted on the self-challenged x^."""
    x, y = prepare(features, labels)
    x = centre(x)  # constant columns exactly 0, so that the mixing below keeps them so
    largest = max(np.linalg.eigvalsh(within_class_covariance(x, y))[-1], 0.0)
    shrinkage = max(math.exp(-SFDA_SHARPNESS * largest), SHRINKAGE_FLOOR)
    rows = np.arange(len(y))
    confidence = softmax(shrinkage_lda(x, y, shrinkage).posteriors)[rows, y][:, None]
    means = class_means(x, y)
    others = (means.sum(axis=0) - means) / (len(means) - 1)  # the other classes' mean, per class
    challenged = confidence * x + (1 - confidence) * others[y]
    return float(np.mean(shrinkage_lda(challenged, y, shrinkage).posteriors[rows, y]))


register(Estimator("sfda", "SFDA", sfda))
