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
    leep          LEEP (Nguyen et al., ICML 2020): the mean log-likelihood of the target labels
                  under the source head's probabilities theta composed with the empirical P(y|z).

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
      compare it only at equal d and N; linear_probe and knn reach 1.0 on separable features and
      then no longer rank them; LEEP reaches 0 when the source head already predicts the target.
Inputs are cast to float64; labels may be any integers and are relabelled 0..C-1 in order of first
appearance, so permuting label ids changes no score. scikit-learn (about 1.4 s to import) loads
inside the functions that use it, so importing this module (for its names) costs nothing.
"""

import math
import warnings
from collections import namedtuple

import numpy as np

from kerastransfer.config import ESTIMATORS

ESTIMATOR_NAMES = {
    "logme": "LogME",
    "hscore": "H-score",
    "transrate": "TransRate",
    "linear_probe": "linear probe",
    "knn": "kNN",
    "leep": "LEEP",
}

# LogME's fixed point: stop when alpha and beta both change by less than this fraction.
LOGME_TOLERANCE, LOGME_MAX_ITERATIONS = 1e-3, 100
# H-score's pseudo-inverse drops covariance eigenvalues below this fraction of the largest.
HSCORE_RCOND = 1e-10

# One label column's LogME fit: log evidence / N at the fixed point, prior and noise precision.
Evidence = namedtuple("Evidence", "log_evidence alpha beta")


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
    source_probabilities is given), in the order of ESTIMATORS.

    Linear algebra runs on one thread here: on matrices this small, BLAS threads cost more
    than they give (one logistic-regression fit of 1,600 x 128 features took 10.3 s with the
    default threads and 0.28 s with one, on a 2-core machine with TensorFlow loaded).
    """
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    names = _names(source_probabilities, estimators)
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

    names = _names(source_probabilities, estimators)
    values, why = {}, {}
    with threadpool_limits(limits=1):
        for name in names:
            values[name], reason = _guarded(name, features, labels, source_probabilities)
            if reason is not None:
                why[name] = reason
    return values, why


def _names(source_probabilities, estimators):
    """The estimators to run, in the order of ESTIMATORS; ValueError for unknown ones."""
    if estimators is None:
        return [n for n in ESTIMATORS if n != "leep" or source_probabilities is not None]
    unknown = sorted(set(estimators) - set(ESTIMATORS))
    if unknown:
        raise ValueError(f"unknown estimators {unknown}; choose from {list(ESTIMATORS)}")
    if "leep" in estimators and source_probabilities is None:
        raise ValueError("leep needs source_probabilities")
    return [n for n in ESTIMATORS if n in estimators]


FEATURE_ESTIMATORS = {
    "logme": logme,
    "hscore": h_score,
    "transrate": transrate,
    "linear_probe": linear_probe,
    "knn": knn,
}


def _estimate(name, features, labels, source_probabilities):
    if name == "leep":
        return leep(source_probabilities, labels)
    return FEATURE_ESTIMATORS[name](features, labels)


def _guarded(name, features, labels, source_probabilities):
    """(score, None), or (None, why) when `name` raises or gives a value that is not finite;
    why is one line (it goes into scores.json, the console and report.md).

    The warnings of an estimator that does score are passed on as they came.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = _estimate(name, features, labels, source_probabilities)
        except (ValueError, ArithmeticError) as error:  # LinAlgError is a ValueError
            return None, " ".join(str(error).split()) or type(error).__name__
    if math.isfinite(value):
        for w in caught:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return value, None
    messages = dict.fromkeys(" ".join(str(w.message).split()) for w in caught)
    return None, "; ".join(messages) or f"the score came out {value}"
