"""Transferability estimators: how well features X (N x d) of a network layer suit target labels y.

Every score is "higher means more transferable"; it ranks layers or models on one target data
set, so compare scores only between features of the same examples (and, where noted, the same d).

    logme         LogME (You et al., ICML 2021): the maximized log evidence of a Bayesian linear
                  regression of each one-hot label column on X, per example, averaged over classes.
                  Raw features, no centring, as in the paper. Invariant to rotation and (up to the
                  fixed point's tolerance) to scaling of X.
    hscore        H-score (Bao et al., ICIP 2019): tr(cov(X)^-1 cov(E[X|y])), the between-class
                  variance in units of the total variance. cov(X) is the Ledoit-Wolf shrinkage
                  estimate (1-s) S + s tr(S)/d I, so it is defined when d >= N or S is singular;
                  the between-class covariance is sum_c N_c/N (m_c - m)(m_c - m)^T, both with 1/N.
                  Invariant to rotation, translation and scaling of X.
    transrate     TransRate (Huang et al., ICML 2022): the coding rate reduction R(Z) - R(Z|Y) with
                  R(Z) = 1/2 logdet(I + d/(N eps^2) Z^T Z) and R(Z|Y) = sum_c N_c/N R(Z_c) (R(Z_c)
                  with N_c in place of N), the paper's MCR^2 form. Z is X centred and scaled to a
                  mean squared row norm of 1; Z_c are Z's rows of class c, not centred again.
                  Invariant to rotation, translation and scaling of X.
    linear_probe  mean stratified k-fold accuracy of an L2 multinomial logistic regression
                  (C=1, lbfgs) on features standardized on each training fold.
    knn           mean stratified k-fold accuracy of a k-nearest-neighbour vote (k=5, capped at
                  the smallest class in each training fold), Euclidean distance on the raw
                  features: invariant to rotation, translation and scaling; unlike per-feature
                  standardization it does not blow near-constant, noisy channels up to unit scale.
    sfda          SFDA (Shao et al., ECCV 2022): the mean p(y | x^) of a shrinkage LDA fitted again
                  on "self-challenged" features x^ = s x + (1 - s) m_-y, each example pulled
                  towards the mean m_-y of the other classes' means by as much as the first LDA
                  doubts it (s = softmax(p(. | x))_y, the authors' softening of the posterior). The
                  shrinkage l = exp(-5 sigma_max(S_W)) serves both fits. Invariant to rotation and
                  translation of X; scaling moves l.
    ncti          NCTI (Wang et al., ICCV 2023): how near the features are to neural collapse, from
                  a shrinkage LDA on their first 64 principal components, l = exp(-(sum of their
                  32 largest variances)): S_seli = ||Z||_* of the centred features on the C-1
                  Fisher directions, S_ncc = mean p(y | x), S_vc = log sum_c ||P_c||_*, P_c the
                  posteriors of class c's examples. NCTI ranks a set of candidates (a network's
                  cut points), so it is a set estimator: each term is min-max scaled over the set
                  and NCTI = seli + ncc - vc (score_set_or_why; one candidate alone scores 0).
                  Its terms are invariant to rotation and translation of X.
    leep          LEEP (Nguyen et al., ICML 2020): the mean log-likelihood of the target labels
                  under the source head's probabilities theta composed with the empirical P(y|z).

The shrinkage LDA both rest on (shrinkage_lda): S_W = sum_c N_c/N cov_c, S_B = sum_c N_c/N
(m_c - m)(m_c - m)^T (1/N covariances), each shrunk as (1 - l) S + l tr(S)/d I (so S_B is the
shrunk total minus the shrunk S_W); p(c | x) = softmax_c(x^T S_W^-1 m_c - 1/2 m_c^T S_W^-1 m_c +
log N_c/N) with the shrunk S_W (a pseudo-inverse: eigenvalues below LDA_RCOND of the largest
drop out), and the Fisher directions are the min(C-1, d) leading generalized eigenvectors of
(S_B, S_W), scaled so that V^T S_W V = I. In one dimension the shrinkage changes nothing.

Guards:
    - fewer than 2 examples or fewer than 2 classes: ValueError naming the problem, as for features
      that are not 2-D (use reduce_features first) or not finite and labels of another length.
    - a class with a single example: linear_probe and knn reduce the folds to the smallest class
      count; when that is 1 they cannot stratify and return NaN with a RuntimeWarning naming the
      class. The other estimators are defined and return a number.
    - d > N: every estimator works and is finite; LogME and TransRate use the min(N, d) singular
      values, H-score the shrunk covariance. But the scores degrade: LogME's fixed point converges
      slowly (it may stop at the iteration cap a little below the maximum), H-score is dominated
      by the d/N_c between-class variance that even noise has, and TransRate by the rank of each
      class (<= N_c). Prefer d well below the smallest class: reduce_features(..., "pca", size).
    - constant or zero features: constant columns are set to exactly zero after centring (rounding
      in the mean cannot turn them into noise) and contribute nothing. Features that are all
      constant give H-score 0, TransRate 0 and LogME the evidence of the label column as noise.
    - a label column with no part along X above rounding (centred features, PCA's among them,
      whose class means agree): LogME's alpha runs off to infinity, and it returns that limit,
      the evidence of the column as noise, not NaN.
    - in a study: score_or_why() turns an estimator's error or non-finite value into None with
      its reason, so one estimator that cannot score a cut costs that one number.
    - saturation: TransRate grows with the rank of Z (each dimension adds about log(1/eps^2)), so
      compare it only at equal d and N; linear_probe, knn and SFDA reach 1.0 on separable features
      and then no longer rank them; LEEP reaches 0 when the source head already predicts the target.
    - SFDA and NCTI fit and score the same examples (no folds), and at the floor of their
      shrinkage (SHRINKAGE_FLOOR) with d near N their LDA separates noise too: reduce d first.
      A direction in which no class varies gets no weight (the pseudo-inverse), even where the
      class means differ along it; features that are all constant give p(c | x) = N_c/N.
Inputs are cast to float64; labels may be any integers and are relabelled 0..C-1 in order of first
appearance, so permuting label ids changes no score. scikit-learn (about 1.4 s to import) loads
inside the functions that use it, so importing this module (for its names) costs nothing.
"""

import math
import warnings
from collections import namedtuple
from functools import partial

import numpy as np

from kerastransfer.config import ESTIMATORS

ESTIMATOR_NAMES = {
    "logme": "LogME",
    "hscore": "H-score",
    "transrate": "TransRate",
    "linear_probe": "linear probe",
    "knn": "kNN",
    "sfda": "SFDA",
    "ncti": "NCTI",
    "leep": "LEEP",
}

# LogME's fixed point: stop when alpha and beta both change by less than this fraction.
LOGME_TOLERANCE, LOGME_MAX_ITERATIONS = 1e-3, 100
# H-score's pseudo-inverse drops covariance eigenvalues below this fraction of the largest.
HSCORE_RCOND = 1e-10
# The shrinkage LDA's pseudo-inverse drops within-class eigenvalues below this fraction of the
# largest.
LDA_RCOND = 1e-10
# SFDA's shrinkage exp(-SFDA_SHARPNESS sigma_max(S_W)) and NCTI's, each at least SHRINKAGE_FLOOR
# (the authors' code: a = 5, floor 1e-10).
SFDA_SHARPNESS, SHRINKAGE_FLOOR = 5.0, 1e-10
# NCTI reads the first NCTI_COMPONENTS principal components; the sum of the largest
# NCTI_SHRINKAGE_VARIANCES of their variances sets its shrinkage exp(-sum).
NCTI_COMPONENTS, NCTI_SHRINKAGE_VARIANCES = 64, 32

# One label column's LogME fit: log evidence / N at the fixed point, prior and noise precision.
Evidence = namedtuple("Evidence", "log_evidence alpha beta")
# A shrinkage LDA's fit: p(c | x_i) (N, C) and the centred features on its Fisher directions.
LDA = namedtuple("LDA", "posteriors fisher")
# NCTI's three terms for one candidate: S_seli, S_ncc and S_vc (module doc).
NCTITerms = namedtuple("NCTITerms", "seli ncc vc")


def _prepare(features, labels, what="features"):
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


def _centre(x):
    """x minus its column means, with constant columns exactly zero."""
    z = x - x.mean(axis=0)
    z[:, np.ptp(x, axis=0) == 0] = 0.0
    return z


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


def logme_evidence(features, target):
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


def logme(features, labels):
    """LogME: the mean over classes of the maximized log evidence / N of each one-hot column."""
    x, y = _prepare(features, labels)
    u, s2 = _spectrum(x)
    onehot = np.eye(y.max() + 1)[y]
    evidences = [_logme_column(len(y), s2, u, column).log_evidence for column in onehot.T]
    return float(np.mean(evidences))


def h_score(features, labels, shrinkage="ledoit-wolf"):
    """H-score: tr(cov(X)^-1 cov(E[X|y])) with cov(X) shrunk towards tr(cov)/d I.

    shrinkage: "ledoit-wolf" (the Ledoit-Wolf intensity) or a number in [0, 1]; 0 is the plain
    1/N covariance of the original H-score, inverted as a pseudo-inverse.
    """
    x, y = _prepare(features, labels)
    n, d = x.shape
    z = _centre(x)
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
    class_means = np.stack([z[y == c].mean(axis=0) for c in range(len(counts))])
    projected = class_means @ eigenvectors[:, keep]
    return float(np.sum(counts / n * np.sum(projected**2 / eigenvalues[keep], axis=1)))


def coding_rate(z, eps=1e-4):
    """R(Z, eps) = 1/2 logdet(I + d/(N eps^2) Z^T Z), from the smaller of Z^T Z and Z Z^T."""
    n, d = z.shape
    gram = z.T @ z if d <= n else z @ z.T
    eigenvalues = np.clip(np.linalg.eigvalsh(gram), 0.0, None)
    return float(0.5 * np.sum(np.log1p(d / (n * eps**2) * eigenvalues)))


def transrate(features, labels, eps=1e-4):
    """TransRate: R(Z, eps) - sum_c N_c/N R(Z_c, eps), Z centred with mean squared row norm 1."""
    x, y = _prepare(features, labels)
    z = _centre(x)
    total = np.sum(z**2)
    if total == 0:
        return 0.0
    z *= math.sqrt(len(y) / total)
    conditional = sum(np.mean(y == c) * coding_rate(z[y == c], eps) for c in range(y.max() + 1))
    return float(coding_rate(z, eps) - conditional)


def _class_means(x, y):
    """(C, d): the mean of each class's rows."""
    return np.stack([x[y == c].mean(axis=0) for c in range(y.max() + 1)])


def _shrunk(covariance, shrinkage):
    """(1 - shrinkage) S + shrinkage tr(S)/d I."""
    d = len(covariance)
    return (1 - shrinkage) * covariance + shrinkage * np.trace(covariance) / d * np.eye(d)


def _softmax(logits):
    """Row-wise softmax."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _nuclear_norm(matrix):
    """The sum of the singular values."""
    return float(np.sum(np.linalg.svd(matrix, compute_uv=False)))


def within_class_covariance(features, labels):
    """S_W = sum_c N_c/N cov_c (1/N_c covariances): the scatter about the class means, over N."""
    x, y = _prepare(features, labels)
    deviations = x - _class_means(x, y)[y]
    return deviations.T @ deviations / len(y)


def shrinkage_lda(features, labels, shrinkage):
    """SFDA's and NCTI's shrinkage LDA (module doc): LDA(posteriors, fisher), the posteriors
    in the order of first appearance of the labels. shrinkage: l in [0, 1]."""
    if not 0 <= shrinkage <= 1:
        raise ValueError(f"shrinkage must be in [0, 1], got {shrinkage}")
    x, y = _prepare(features, labels)
    x = _centre(x)  # changes no posterior; the Fisher features come out centred
    n = len(y)
    priors = np.bincount(y) / n
    means = _class_means(x, y)
    deviations = x - means[y]
    within = _shrunk(deviations.T @ deviations / n, shrinkage)
    between = _shrunk(means.T @ (priors[:, None] * means), shrinkage)
    eigenvalues, eigenvectors = np.linalg.eigh(within)
    keep = eigenvalues > LDA_RCOND * max(eigenvalues.max(), 0.0)
    whiten = eigenvectors[:, keep] / np.sqrt(eigenvalues[keep])  # whiten^T S_W whiten = I
    z, m = x @ whiten, means @ whiten
    posteriors = _softmax(z @ m.T - 0.5 * np.sum(m**2, axis=1) + np.log(priors))
    spread, directions = np.linalg.eigh(whiten.T @ between @ whiten)
    leading = np.argsort(spread)[::-1][: min(len(priors) - 1, whiten.shape[1])]
    return LDA(posteriors, z @ directions[:, leading])


def sfda(features, labels):
    """SFDA: the mean p(y | x^) of the shrinkage LDA refitted on the self-challenged x^."""
    x, y = _prepare(features, labels)
    x = _centre(x)  # constant columns exactly 0, so that the mixing below keeps them so
    largest = max(np.linalg.eigvalsh(within_class_covariance(x, y))[-1], 0.0)
    shrinkage = max(math.exp(-SFDA_SHARPNESS * largest), SHRINKAGE_FLOOR)
    rows = np.arange(len(y))
    confidence = _softmax(shrinkage_lda(x, y, shrinkage).posteriors)[rows, y][:, None]
    means = _class_means(x, y)
    others = (means.sum(axis=0) - means) / (len(means) - 1)  # the other classes' mean, per class
    challenged = confidence * x + (1 - confidence) * others[y]
    return float(np.mean(shrinkage_lda(challenged, y, shrinkage).posteriors[rows, y]))


def ncti_terms(features, labels):
    """NCTI's NCTITerms(seli, ncc, vc) for one candidate's features (module doc)."""
    x, y = _prepare(features, labels)
    u, s, _ = np.linalg.svd(_centre(x), full_matrices=False)
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


def ncti(terms):
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


def _cross_validate(name, x, y, folds, seed, make_model):
    """Mean accuracy over stratified folds, reduced to the smallest class count; NaN below 2.

    make_model(training labels) returns a fresh, unfitted classifier for one fold.
    """
    if folds < 2:
        raise ValueError(f"{name} needs folds >= 2, got {folds}")
    counts = np.bincount(y)
    folds = min(folds, counts.min())
    if folds < 2:
        warnings.warn(
            f"{name}: class {np.argmin(counts)} (in order of first appearance) has a single "
            "example, too few to stratify folds; returning NaN",
            RuntimeWarning,
            stacklevel=3,
        )
        return math.nan
    from sklearn.model_selection import StratifiedKFold  # noqa: PLC0415

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    accuracies = []
    for train, test in splitter.split(x, y):
        model = make_model(y[train]).fit(x[train], y[train])
        accuracies.append(np.mean(model.predict(x[test]) == y[test]))
    return float(np.mean(accuracies))


def linear_probe(features, labels, folds=5, seed=0):
    """Mean stratified k-fold accuracy of a standardized multinomial logistic regression."""
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415
    from sklearn.pipeline import make_pipeline  # noqa: PLC0415
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

    x, y = _prepare(features, labels)
    return _cross_validate(
        "linear_probe",
        x,
        y,
        folds,
        seed,
        lambda _train_labels: make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
    )


def knn(features, labels, k=5, folds=5, seed=0):
    """Mean stratified k-fold accuracy of a k-nearest-neighbour vote, Euclidean on raw features.

    k is capped at the smallest class's count in each training fold (2 examples a class and
    k = 2 would tie every vote); ties go to the class whose label appears first.
    """
    from sklearn.neighbors import KNeighborsClassifier  # noqa: PLC0415

    if k < 1:
        raise ValueError(f"knn needs k >= 1, got {k}")
    x, y = _prepare(features, labels)
    return _cross_validate(
        "knn",
        x,
        y,
        folds,
        seed,
        lambda train_labels: KNeighborsClassifier(min(k, np.bincount(train_labels).min())),
    )


def leep(source_probabilities, labels):
    """LEEP: (1/N) sum_i log sum_z P(y_i | z) theta_i(z), P(y | z) the empirical conditional."""
    theta, y = _prepare(source_probabilities, labels, what="source_probabilities")
    if np.any(theta < 0) or not np.allclose(theta.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("source_probabilities must be non-negative with rows that sum to 1")
    theta = theta / theta.sum(axis=1, keepdims=True)
    n = len(y)
    joint = np.stack([theta[y == c].sum(axis=0) for c in range(y.max() + 1)]) / n  # P(y, z)
    marginal = joint.sum(axis=0)  # P(z); a source class no example predicts gets P(y|z) = 0
    conditional = np.divide(joint, marginal, out=np.zeros_like(joint), where=marginal > 0)
    likelihood = np.sum(theta * conditional[y], axis=1)
    return float(np.mean(np.log(likelihood)))


def reduce_features(features, method="gap", size=None):
    """Turn (N, ...) activations into (N, d) features.

    "gap": global average pool over every axis between the batch and the last (channels-last
    conv maps (N, H, W, C) -> (N, C)); (N, d) passes through. "pca": flatten to (N, D), then PCA
    to `size` components (a seeded randomized SVD; the full SVD when all are kept), capped at
    min(N, D); size None keeps min(N, D).
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"features need a batch axis and at least one more, got shape {x.shape}")
    if method == "gap":
        if size is not None:
            raise ValueError("size applies only to method='pca'")
        return x.mean(axis=tuple(range(1, x.ndim - 1))) if x.ndim > 2 else x
    if method == "pca":
        flat = x.reshape(len(x), -1)
        cap = min(flat.shape)
        if size is not None and size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        components = cap if size is None else min(size, cap)
        from sklearn.decomposition import PCA  # noqa: PLC0415
        from threadpoolctl import threadpool_limits  # noqa: PLC0415

        # Fewer components than the data's rank: the randomized SVD (seeded, so the same every
        # time) takes 0.65 s where the full one takes 6.6 s for 2,000 x 3,136 maps.
        solver = "full" if components == cap else "randomized"
        with threadpool_limits(limits=1):  # see score(): BLAS threads only cost here
            return PCA(n_components=components, svd_solver=solver, random_state=0).fit_transform(
                flat
            )
    raise ValueError(f"method must be 'gap' or 'pca', got {method!r}")


def score(features, labels, source_probabilities=None, estimators=None):
    """{name: score} for each of `estimators` (default all of ESTIMATORS, LEEP only when
    source_probabilities is given) that scores one set of features, in the order of
    ESTIMATORS; the set estimators among them (NCTI) are score_set_or_why's.

    Linear algebra runs on one thread here: on matrices this small, BLAS threads cost more
    than they give (one logistic-regression fit of 1,600 x 128 features took 10.3 s with the
    default threads and 0.28 s with one, on a 2-core machine with TensorFlow loaded).
    """
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    names = _per_cut(_names(source_probabilities, estimators))
    with threadpool_limits(limits=1):
        return {name: _estimate(name, features, labels, source_probabilities) for name in names}


def score_or_why(features, labels, source_probabilities=None, estimators=None):
    """score() where an estimator that cannot score these features costs only its own number:
    (values, why), values {name: finite float or None} in the order of score(), why {name:
    the reason} for each None.

    A study scores many cut points of a model it did not build; one cut's non-finite features,
    a class of one example, or an estimator's NaN must not end it. The reason is the error's
    message, or the warnings the estimator gave on its way to a non-finite value. Unknown
    estimators and LEEP without source_probabilities still raise: those are the caller's.
    """
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    names = _per_cut(_names(source_probabilities, estimators))
    values, why = {}, {}
    with threadpool_limits(limits=1):
        for name in names:
            values[name], reason = _guarded(
                partial(_estimate, name, features, labels, source_probabilities)
            )
            if reason is not None:
                why[name] = reason
    return values, why


def score_set_or_why(features_by_cut, labels, estimators=None):
    """The set estimators among `estimators` (default all: NCTI) over a set of candidates, the
    features of one network's cut points on the same examples: [(values, why)] per cut, as
    score_or_why gives them. A cut whose terms cannot be computed is None with its reason; the
    others are scaled among themselves."""
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    names = [name for name in _known(estimators) if name in SET_ESTIMATORS]
    results = [({}, {}) for _ in features_by_cut]
    with threadpool_limits(limits=1):
        for name in names:
            terms_of, combine = SET_ESTIMATORS[name]
            guarded = [_guarded(partial(terms_of, x, labels)) for x in features_by_cut]
            scores = combine([terms for terms, _ in guarded])
            for (values, why), value, (_, reason) in zip(results, scores, guarded):
                values[name] = value
                if reason is not None:
                    why[name] = reason
    return results


def _known(estimators):
    """`estimators` (default all) in the order of ESTIMATORS; ValueError for unknown ones."""
    if estimators is None:
        return list(ESTIMATORS)
    unknown = sorted(set(estimators) - set(ESTIMATORS))
    if unknown:
        raise ValueError(f"unknown estimators {unknown}; choose from {list(ESTIMATORS)}")
    return [n for n in ESTIMATORS if n in estimators]


def _names(source_probabilities, estimators):
    """The estimators to run, in the order of ESTIMATORS, LEEP by default only with
    source_probabilities; ValueError for unknown ones."""
    if estimators is None:
        return [n for n in ESTIMATORS if n != "leep" or source_probabilities is not None]
    if "leep" in estimators and source_probabilities is None:
        raise ValueError("leep needs source_probabilities")
    return _known(estimators)


def _per_cut(names):
    return [name for name in names if name not in SET_ESTIMATORS]


FEATURE_ESTIMATORS = {
    "logme": logme,
    "hscore": h_score,
    "transrate": transrate,
    "linear_probe": linear_probe,
    "knn": knn,
    "sfda": sfda,
}
# Estimators that rank a set of candidates: (one candidate's terms, their scores over the set).
SET_ESTIMATORS = {"ncti": (ncti_terms, ncti)}


def _estimate(name, features, labels, source_probabilities):
    if name == "leep":
        return leep(source_probabilities, labels)
    return FEATURE_ESTIMATORS[name](features, labels)


def _guarded(compute):
    """(compute(), None), or (None, why) when it raises or gives a value (a number, or a tuple
    of them) that is not finite; why is one line (it goes into scores.json, the console and
    report.md).

    The warnings of an estimator that does score are passed on as they came.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = compute()
        except (ValueError, ArithmeticError) as error:  # LinAlgError is a ValueError
            return None, " ".join(str(error).split()) or type(error).__name__
    if all(math.isfinite(v) for v in (value if isinstance(value, tuple) else (value,))):
        for w in caught:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return value, None
    messages = dict.fromkeys(" ".join(str(w.message).split()) for w in caught)
    return None, "; ".join(messages) or f"the score came out {value}"


# Bootstrap resamples of the scored images behind --prune's separability check.
BOOTSTRAP_REPLICATES = 100


def top_k_stability(features_by_cut, labels, estimator, k, replicates=BOOTSTRAP_REPLICATES, seed=0):
    """How firmly `estimator` picks its k best cut points: the share of `replicates` bootstrap
    resamples of the examples (the same resample at every cut) whose k best cuts are the k best
    on all of them, and each cut's share of resamples that put it among the k best.

    A cut an estimator cannot score on a resample ranks last there, as in --prune; ties go to
    the lower cut. Returns {"held", "in_top_k": [share per cut], "replicates"}; LEEP, which
    reads no features, is not resampled (ValueError).
    """
    if estimator == "leep":
        raise ValueError("leep scores the source head, not the cut points: nothing to resample")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)

    def top(rows):
        scores = _scores_at(features_by_cut, labels, estimator, rows)
        order = sorted(
            range(len(scores)),
            key=lambda i: (scores[i] is None, -(scores[i] or 0.0), i),
        )
        return frozenset(order[:k])

    chosen = top(np.arange(len(labels)))
    counts, held = np.zeros(len(features_by_cut)), 0
    for _ in range(replicates):
        picked = top(rng.integers(0, len(labels), len(labels)))
        held += picked == chosen
        counts[list(picked)] += 1
    return {
        "held": held / replicates,
        "in_top_k": (counts / replicates).tolist(),
        "replicates": replicates,
    }


def _scores_at(features_by_cut, labels, estimator, rows):
    """`estimator`'s score of every cut on the examples `rows` (None where it cannot score)."""
    resampled = [np.asarray(x)[rows] for x in features_by_cut]
    if estimator in SET_ESTIMATORS:
        results = score_set_or_why(resampled, labels[rows], estimators=[estimator])
        return [values.get(estimator) for values, _ in results]
    return [score_or_why(x, labels[rows], estimators=[estimator])[0][estimator] for x in resampled]
