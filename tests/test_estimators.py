"""Transferability estimators (kerastransfer.estimators): closed forms, invariances, separable
against noise, the guards, and the registry that names them."""

import dataclasses
import math
import warnings

import numpy as np
import pytest
from scipy.special import expit
from scipy.stats import multivariate_normal
from sklearn.covariance import LedoitWolf

from kerastransfer import config
from kerastransfer.errors import UsageError
from kerastransfer.estimators import (
    apply,
    bootstrap,
    hscore,
    knn,
    lda,
    leep,
    linear_probe,
    logme,
    ncti,
    reduction,
    registry,
    sfda,
    transrate,
)

# The estimators that score one set of features (NCTI ranks a set of them).
PER_CUT = [name for name in registry.names() if not registry.get(name).is_set]
# Those among them that read the cut's features (LEEP reads the source head), by name.
FEATURE_ESTIMATORS = {
    name: registry.get(name).function for name in PER_CUT if registry.get(name).reads_cut_features
}


def blobs(seed=0, n_per_class=30, d=6, classes=3, shift=4.0):
    """Gaussian features whose class c is shifted along axis c, and their labels."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), n_per_class)
    features = rng.normal(size=(len(labels), d))
    features[np.arange(len(labels)), labels] += shift
    return features, labels


def orthogonal(d, seed=1):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q


def dense_log_evidence(features, target, alpha, beta):
    """log N(y | 0, I/beta + X X^T/alpha) / N, the marginal likelihood of Bayesian regression."""
    n = len(target)
    covariance = np.eye(n) / beta + features @ features.T / alpha
    return multivariate_normal(np.zeros(n), covariance).logpdf(target) / n


# Closed forms and hand-worked cases.


def test_h_score_by_hand_in_one_dimension():
    # var(x) = (9 + 1 + 1 + 9) / 4 = 5 (1/N); class means 1 and 5 around 3: cov(E[x|y]) =
    # 4 (2^2 + 2^2) / 3 = 16/3 (1/(N - 1)). H = 16/3 / 5 = 16/15.
    x, y = np.array([[0.0], [2.0], [4.0], [6.0]]), np.array([0, 0, 1, 1])
    assert hscore.h_score(x, y, shrinkage=0) == pytest.approx(16 / 15, rel=1e-12)
    # One feature: Ledoit-Wolf's target tr(S)/d I is S itself (intensity 0), so the default
    # agrees.
    assert hscore.h_score(x, y) == pytest.approx(16 / 15, rel=1e-12)


def test_regularized_h_score_by_hand_in_two_dimensions():
    # Ibrahim et al.'s H_a = tr(pinv(S_a) (1 - a) cov(E[f|y])), step by step.
    x = np.array([[0.0, 0.0], [1.0, 2.0], [2.0, 1.0], [3.0, 3.0], [4.0, 5.0], [5.0, 4.0]])
    y = np.array([0, 0, 0, 1, 1, 1])
    n, d = x.shape
    z = x - x.mean(axis=0)  # the mean is (2.5, 2.5)
    covariance = z.T @ z / n
    np.testing.assert_allclose(covariance, np.array([[35.0, 31.0], [31.0, 35.0]]) / 12)
    # The Ledoit-Wolf intensity a = min(b, c)/c: c = ||S - mu I||^2 / d, the distance from the
    # target mu I, mu = tr(S)/d = 35/12; b = sum_i ||z_i z_i^T - S||^2 / (d N^2), how far the
    # single examples scatter about S.
    mu = np.trace(covariance) / d
    c = np.sum((covariance - mu * np.eye(d)) ** 2) / d
    b = sum(np.sum((np.outer(row, row) - covariance) ** 2) for row in z) / (d * n**2)
    assert c == pytest.approx((31 / 12) ** 2) and b == pytest.approx(18912 / 144 / 72)
    a = min(b, c) / c
    assert a == pytest.approx(788 / 2883, rel=1e-12)  # about 0.273
    shrunk = (1 - a) * covariance + a * mu * np.eye(d)
    # Each example's class mean: (1, 1) for class 0, (4, 4) for class 1; centred +-(1.5, 1.5),
    # so cov(E[f|y]) = 6 * 1.5^2 / 5 [[1, 1], [1, 1]] = 2.7 [[1, 1], [1, 1]] (1/(N - 1)).
    means = np.stack([x[y == c].mean(axis=0) for c in (0, 1)])[y]
    between = (means - means.mean(axis=0)).T @ (means - means.mean(axis=0)) / (n - 1)
    np.testing.assert_allclose(between, 2.7 * np.ones((2, 2)))
    expected = np.trace(np.linalg.pinv(shrunk) @ ((1 - a) * between))
    # Along (1, 1)/sqrt(2), the only direction the classes differ in: S has 66/12 = 5.5 and
    # mu I 35/12, cov(E[f|y]) 5.4.
    assert expected == pytest.approx((1 - a) * 5.4 / ((1 - a) * 5.5 + a * 35 / 12), rel=1e-12)
    assert hscore.h_score(x, y) == pytest.approx(expected, rel=1e-12)
    assert hscore.h_score(x, y, shrinkage=a) == pytest.approx(expected, rel=1e-12)
    # Without the (1 - a) and with 1/N for both, the score would be (N - 1)/(N (1 - a)) times
    # this, 15% higher here.
    inflated = np.trace(np.linalg.inv(shrunk) @ (between * (n - 1) / n))
    assert inflated / expected == pytest.approx((n - 1) / (n * (1 - a)), rel=1e-12)


def test_h_score_matches_scikit_learn_and_numpy_estimates_in_two_dimensions():
    x, y = blobs(n_per_class=15, d=2, classes=2, shift=1.5)
    means = np.stack([x[y == c].mean(axis=0) for c in (0, 1)])[y]  # E[X|y] for each example
    between = np.cov(means, rowvar=False)  # 1/(N - 1)
    plain = np.trace(np.linalg.inv(np.cov(x, rowvar=False, bias=True)) @ between)
    fit = LedoitWolf().fit(x)  # 1/N, and the intensity a
    shrunk = np.trace(np.linalg.inv(fit.covariance_) @ ((1 - fit.shrinkage_) * between))
    assert hscore.h_score(x, y, shrinkage=0) == pytest.approx(plain, rel=1e-10)
    assert hscore.h_score(x, y) == pytest.approx(shrunk, rel=1e-10)
    assert abs(shrunk - plain) > 1e-2  # the shrinkage is not negligible here


def test_leep_by_hand():
    # P(y, z) = [[1/3, 0], [1/6, 1/2]]; P(z) = [1/2, 1/2]; P(y|z) = [[2/3, 0], [1/3, 1]].
    # Likelihoods: 2/3 (example 0), 1 (example 1), .5 * 1/3 + .5 * 1 = 2/3 (example 2).
    theta = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    labels = np.array([0, 1, 1])
    assert leep.leep(theta, labels) == pytest.approx(2 * math.log(2 / 3) / 3)
    # A source class no example predicts (column of zeros) changes nothing.
    padded = np.hstack([theta, np.zeros((3, 1))])
    assert leep.leep(padded, labels) == pytest.approx(2 * math.log(2 / 3) / 3)


# SFDA and NCTI, and the shrinkage LDA they share.

# One feature, two classes: means 1 and 5, within-class variance ((1 + 1) + (1 + 1))/4 = 1.
LINE, LINE_LABELS = np.array([[0.0], [2.0], [4.0], [6.0]]), np.array([0, 0, 1, 1])


def test_shrinkage_lda_by_hand_in_one_dimension():
    # log p(1|x) - log p(0|x) = (5 - 1) x / 1 - (25 - 1) / 2 = 4x - 12, whatever the shrinkage:
    # in one dimension (1 - l) s + l tr(s)/d = s.
    for shrinkage in (0.0, 0.3, 1.0):
        fit = lda.shrinkage_lda(LINE, LINE_LABELS, shrinkage)
        np.testing.assert_allclose(fit.posteriors[:, 1], expit(4 * LINE[:, 0] - 12), rtol=1e-12)
        np.testing.assert_allclose(fit.posteriors.sum(axis=1), 1.0)
        # One Fisher direction (C - 1 = 1), in units of the within-class sd: (x - 3) / 1.
        np.testing.assert_allclose(np.abs(fit.fisher[:, 0]), [3, 1, 1, 3], rtol=1e-12)


def test_shrinkage_lda_by_hand_in_two_dimensions():
    # Class 0 at (-1, 0), (1, 0), (0, -2), (0, 2); class 1 the same moved by (3, 0). S_W =
    # diag(2/4, 8/4) = diag(.5, 2); shrunk by l = .5 towards tr/d = 1.25: diag(.875, 1.625).
    # The means differ along x1 only: log p(1|x) - log p(0|x) = 3 / .875 (x1 - 1.5), and
    # 3 / .5 (x1 - 1.5) unshrunk. S_B = diag(2.25, 0) shrunk: diag(1.6875, .5625); with S_W
    # diagonal too, the leading Fisher direction is x1, scaled by 1/sqrt(.875).
    corners = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -2.0], [0.0, 2.0]])
    x, y = np.vstack([corners, corners + [3.0, 0.0]]), np.repeat([0, 1], 4)
    np.testing.assert_allclose(lda.within_class_covariance(x, y), np.diag([0.5, 2.0]))
    fit = lda.shrinkage_lda(x, y, 0.5)
    np.testing.assert_allclose(fit.posteriors[:, 1], expit(3 / 0.875 * (x[:, 0] - 1.5)))
    np.testing.assert_allclose(np.abs(fit.fisher[:, 0]), np.abs(x[:, 0] - 1.5) / np.sqrt(0.875))
    plain = lda.shrinkage_lda(x, y, 0.0)
    np.testing.assert_allclose(plain.posteriors[:, 1], expit(6 * (x[:, 0] - 1.5)), atol=1e-15)


def test_sfda_by_hand_in_one_dimension():
    # First LDA: p(true class) = expit(12), expit(4), expit(4), expit(12) (4x - 12 above).
    # Softened, s = exp(p) / (exp(p) + exp(1 - p)) = expit(2p - 1). Each x moves towards the
    # other class's mean: class 0 towards 5, x^ = 5(1 - s12) and 5 - 3 s4; class 1 towards 1,
    # x^ = 1 + 3 s4 and 1 + 5 s12, symmetric about 3. Second LDA: class means 3 -/+ (u - 2)
    # with u = (5 s12 + 3 s4)/2, within variance v^2 with v = (5 s12 - 3 s4)/2, so
    # log p(1|x^) - log p(0|x^) = 2 (u - 2)(x^ - 3) / v^2, and x^ - 3 = +-(u + v - 2) at the
    # outer points, +-(u - v - 2) at the inner ones.
    s12, s4 = expit(2 * expit(12) - 1), expit(2 * expit(4) - 1)
    u, v = (5 * s12 + 3 * s4) / 2, (5 * s12 - 3 * s4) / 2
    outer, inner = expit(2 * (u - 2) * (u + v - 2) / v**2), expit(2 * (u - 2) * (u - v - 2) / v**2)
    assert sfda.sfda(LINE, LINE_LABELS) == pytest.approx((outer + inner) / 2, rel=1e-12)
    assert sfda.sfda(LINE, LINE_LABELS) == pytest.approx(0.81739, abs=1e-5)
    # The self-challenge costs it: the first LDA's mean p(true class), (expit(12) + expit(4))/2,
    # is .991.
    first = lda.shrinkage_lda(LINE, LINE_LABELS, 0.5).posteriors[np.arange(4), LINE_LABELS]
    assert np.mean(first) == pytest.approx((expit(12) + expit(4)) / 2, rel=1e-12)


def test_sfda_of_constant_features_is_the_sum_of_squared_priors():
    # No variation: S_W = 0, l = exp(0) = 1, the shrunk S_W is 0 and drops out; p(c | x) =
    # N_c/N for every example, the mixing keeps the features at 0, and the mean p(true class)
    # is sum_c (N_c/N)^2 = (2/6)^2 + (4/6)^2 = 5/9.
    assert sfda.sfda(np.zeros((6, 3)), [0, 0, 1, 1, 1, 1]) == pytest.approx(5 / 9, rel=1e-12)


def test_sfda_uses_the_documented_shrinkage():
    # Small features (sigma_max(S_W) about .05), so l = exp(-5 sigma_max) is far from its
    # floor: SFDA by hand from the kernel.
    x, y = blobs(n_per_class=12, d=3, classes=3, shift=1.0)
    x = 0.2 * x
    shrinkage = np.exp(-5 * np.linalg.eigvalsh(lda.within_class_covariance(x, y))[-1])
    assert 0.5 < shrinkage < 0.9
    first = lda.shrinkage_lda(x, y, shrinkage).posteriors
    soft = np.exp(first) / np.exp(first).sum(axis=1, keepdims=True)
    s = soft[np.arange(len(y)), y][:, None]
    means = np.stack([x[y == c].mean(axis=0) for c in range(3)])
    others = np.stack([(means.sum(axis=0) - means[c]) / 2 for c in range(3)])
    second = lda.shrinkage_lda(s * x + (1 - s) * others[y], y, shrinkage).posteriors
    assert sfda.sfda(x, y) == pytest.approx(np.mean(second[np.arange(len(y)), y]), rel=1e-12)


def test_ncti_terms_by_hand_in_one_dimension():
    # Fisher features (x - 3)/1 = -3, -1, 1, 3: seli = ||.||_* = ||.||_2 = sqrt(20). ncc =
    # (expit(12) + expit(4))/2. Class 0's posteriors [[a, 1 - a], [b, 1 - b]] (a = expit(12),
    # b = expit(4)); a 2 x 2 matrix's nuclear norm is sqrt(||M||_F^2 + 2 |det M|), det = a - b,
    # and class 1's rows are the same mirrored: vc = log(2 sqrt(F + 2 (a - b))).
    a, b = expit(12), expit(4)
    frobenius = a**2 + (1 - a) ** 2 + b**2 + (1 - b) ** 2
    terms = ncti.ncti_terms(LINE, LINE_LABELS)
    assert terms.seli == pytest.approx(math.sqrt(20), rel=1e-12)
    assert terms.ncc == pytest.approx((a + b) / 2, rel=1e-12)
    assert terms.vc == pytest.approx(math.log(2 * math.sqrt(frobenius + 2 * (a - b))), rel=1e-12)


def test_ncti_terms_read_the_first_principal_components_with_the_documented_shrinkage():
    # l = exp(-(sum of the 32 largest variances)): with small features, far from its floor.
    x, y = blobs(n_per_class=12, d=4, classes=3, shift=1.0)
    x = 0.3 * x
    z = x - x.mean(axis=0)
    variances = np.linalg.eigvalsh(z.T @ z / len(y))
    shrinkage = np.exp(-variances.sum())
    assert 0.2 < shrinkage < 0.9
    fit = lda.shrinkage_lda(x, y, shrinkage)  # all 4 components: a rotation, which LDA ignores
    expected = ncti.NCTITerms(
        np.sum(np.linalg.svd(fit.fisher, compute_uv=False)),
        np.mean(fit.posteriors[np.arange(len(y)), y]),
        math.log(
            sum(np.sum(np.linalg.svd(fit.posteriors[y == c], compute_uv=False)) for c in range(3))
        ),
    )
    assert ncti.ncti_terms(x, y) == pytest.approx(expected, rel=1e-9)
    # More than 64 features: only the first 64 principal components count.
    wide, labels = blobs(n_per_class=40, d=80, classes=2, shift=2.0)
    u, s, _ = np.linalg.svd(wide - wide.mean(axis=0), full_matrices=False)
    assert ncti.ncti_terms(wide, labels) == pytest.approx(
        ncti.ncti_terms(u[:, :64] * s[:64], labels), rel=1e-9
    )


def test_ncti_scales_each_term_over_the_candidates_by_hand():
    # seli 1, 3, 2 -> 0, 1, .5; ncc .5, .9, .7 -> 0, 1, .5; vc 2, 1, 3 -> .5, 0, 1.
    # NCTI = seli + ncc - vc: -0.5, 2, 0; an n/a candidate stays n/a and does not count.
    terms = [ncti.NCTITerms(1, 0.5, 2), ncti.NCTITerms(3, 0.9, 1), None, ncti.NCTITerms(2, 0.7, 3)]
    assert ncti.ncti(terms) == pytest.approx([-0.5, 2.0, None, 0.0], abs=1e-12)
    # A term equal over the set adds 0; one candidate alone scores 0.
    assert ncti.ncti([ncti.NCTITerms(1, 0.5, 2), ncti.NCTITerms(3, 0.5, 2)]) == [0.0, 1.0]
    assert ncti.ncti([ncti.NCTITerms(1, 0.5, 2)]) == [0.0]
    assert ncti.ncti([None, None]) == [None, None]
    # Invariant to the order of the candidates and to a positive affine map of each term.
    assert ncti.ncti(terms[::-1]) == pytest.approx(ncti.ncti(terms)[::-1], abs=1e-12)
    mapped = [
        None if t is None else ncti.NCTITerms(3 * t.seli + 1, t.ncc / 2, t.vc - 7) for t in terms
    ]
    assert ncti.ncti(mapped) == pytest.approx(ncti.ncti(terms), abs=1e-12)


def test_true_labels_score_higher_than_shuffled_ones_for_sfda_and_ncti():
    x, y = blobs(shift=3.0)
    shuffled = np.random.default_rng(6).permutation(y)
    assert sfda.sfda(x, y) > 0.7 > 0.4 > sfda.sfda(x, shuffled)  # chance: about 1/3
    true, wrong = ncti.ncti_terms(x, y), ncti.ncti_terms(x, shuffled)
    assert true.seli > wrong.seli and true.ncc > wrong.ncc
    better, worse = ncti.ncti([true, wrong])
    assert better > worse


def test_score_set_or_why_scores_ncti_over_the_cut_points():
    x, y = blobs(n_per_class=10, d=4)
    noise = np.random.default_rng(2).normal(size=x.shape)
    broken = x.copy()
    broken[0, 0] = np.nan
    results = apply.score_set_or_why([x, broken, noise], y)
    values = [v for v, _ in results]
    assert values[0]["ncti"] == ncti.ncti([ncti.ncti_terms(x, y), ncti.ncti_terms(noise, y)])[0]
    assert values[1] == {"ncti": None} and values[2]["ncti"] < values[0]["ncti"]
    assert results[1][1] == {"ncti": "features hold 1 NaN or infinite values"}
    assert results[0][1] == {} and results[2][1] == {}
    # Only the set estimators: none asked for, nothing scored; unknown names still raise.
    assert apply.score_set_or_why([x, noise], y, estimators=["logme"]) == [({}, {}), ({}, {})]
    with pytest.raises(ValueError, match="unknown estimators"):
        apply.score_set_or_why([x], y, estimators=["nce"])


def test_coding_rate_of_orthogonal_columns_and_rows():
    eps = 1e-2
    # Orthogonal columns: Z^T Z = diag(c^2), so logdet = sum log(1 + d/(N eps^2) c^2).
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(8, 3)))
    c = np.array([0.5, 1.0, 2.0])
    expected = 0.5 * np.sum(np.log1p(3 / (8 * eps**2) * c**2))
    assert transrate.coding_rate(q * c, eps) == pytest.approx(expected, rel=1e-12)
    # d > N through the N x N Gram matrix: orthogonal rows give Z Z^T = diag(r^2).
    r = np.array([1.0, 3.0])
    expected = 0.5 * np.sum(np.log1p(8 / (2 * eps**2) * r**2))
    assert transrate.coding_rate((q[:, :2] * r).T, eps) == pytest.approx(expected, rel=1e-12)


def test_transrate_matches_dense_log_determinants():
    x, y = blobs(n_per_class=10, d=3, classes=2, shift=2.0)
    eps, (n, d) = 1e-3, x.shape
    z = x - x.mean(axis=0)
    z *= math.sqrt(n / np.sum(z**2))

    def rate(part):
        gram = part.T @ part
        return 0.5 * np.linalg.slogdet(np.eye(d) + d / (len(part) * eps**2) * gram)[1]

    expected = rate(z) - sum(np.mean(y == c) * rate(z[y == c]) for c in (0, 1))
    assert transrate.transrate(x, y, eps=eps) == pytest.approx(expected, rel=1e-9)


def transrate_without_width(x, y, eps=1e-4):
    """TransRate with 1/(N eps^2) in place of d/(N eps^2): coding_rate with eps sqrt(d)."""
    z = x - x.mean(axis=0)
    z *= math.sqrt(len(y) / np.sum(z**2))
    wider = eps * math.sqrt(x.shape[1])
    conditional = sum(np.mean(y == c) * transrate.coding_rate(z[y == c], wider) for c in set(y))
    return transrate.coding_rate(z, wider) - conditional


@pytest.mark.parametrize("d", [40, 160])
def test_transrate_width_factor_adds_half_log_d_per_dimension_a_class_lacks(d):
    # Two classes of 60 examples. At d = 40 each class spans every dimension and the d of
    # d/(N eps^2) cancels; at d = 160 a class spans 60 of the centred Z's 119 dimensions:
    # 1/2 (119 - 60) log d more.
    x, y = blobs(n_per_class=60, d=d, classes=2, shift=1.0)
    added = transrate.transrate(x, y) - transrate_without_width(x, y)
    lacking = min(len(y) - 1, d) - min(60, d)
    assert added == pytest.approx(0.5 * lacking * math.log(d), abs=1e-3)
    assert (added == pytest.approx(0, abs=1e-3)) == (d == 40)


def test_transrate_grows_with_dimensions_that_carry_no_class_information():
    # The score sums over Z's dimensions: noise appended to the same features raises it.
    x, y = blobs(n_per_class=100, d=16, classes=3, shift=2.0)
    noise = np.random.default_rng(7).normal(size=(len(y), 32))
    scores = [transrate.transrate(np.hstack([x, noise[:, :k]]), y) for k in (0, 16, 32)]
    assert scores[0] < scores[1] < scores[2]


@pytest.mark.parametrize("n, d", [(40, 5), (25, 25)])
def test_logme_fixed_point_is_the_maximum_of_the_dense_evidence(n, d):
    rng = np.random.default_rng(n + d)
    target = (rng.random(n) < 0.5).astype(float)
    features = rng.normal(size=(n, d))
    features[:, 0] += 2 * target
    fit = logme.logme_evidence(features, target)
    best = dense_log_evidence(features, target, fit.alpha, fit.beta)
    assert fit.log_evidence == pytest.approx(best, rel=1e-9)
    for alpha_factor, beta_factor in [(1.2, 1), (1 / 1.2, 1), (1, 1.2), (1, 1 / 1.2)]:
        moved = dense_log_evidence(
            features, target, fit.alpha * alpha_factor, fit.beta * beta_factor
        )
        assert moved < best


def test_logme_evidence_with_more_dimensions_than_examples():
    # The zero singular values beyond rank N must drop out exactly.
    rng = np.random.default_rng(3)
    features, target = rng.normal(size=(12, 60)), np.repeat([0.0, 1.0], 6)
    fit = logme.logme_evidence(features, target)
    assert np.isfinite(fit.log_evidence) and fit.alpha > 0 and fit.beta > 0
    assert fit.log_evidence == pytest.approx(
        dense_log_evidence(features, target, fit.alpha, fit.beta), rel=1e-9
    )


def test_logme_is_the_mean_evidence_of_the_one_hot_columns():
    x, y = blobs(n_per_class=10, d=4)
    columns = [logme.logme_evidence(x, (y == c).astype(float)).log_evidence for c in range(3)]
    assert logme.logme(x, y) == pytest.approx(np.mean(columns), rel=1e-12)


def test_logme_of_zero_features_is_the_evidence_of_the_labels_as_noise():
    # alpha -> inf: y ~ N(0, I/beta), beta = N / ||y||^2.
    labels = np.array([0, 0, 1, 1, 1])
    expected = np.mean(
        [
            multivariate_normal(np.zeros(5), np.eye(5) * np.sum(column) / 5).logpdf(column) / 5
            for column in ((labels == 0).astype(float), (labels == 1).astype(float))
        ]
    )
    assert logme.logme(np.zeros((5, 3)), labels) == pytest.approx(expected, rel=1e-12)


def test_logme_takes_the_noise_limit_when_no_label_lies_along_the_features():
    # Centred within each class, X^T y_c is zero up to rounding: alpha runs off to infinity,
    # where the fixed point overflowed to NaN ("invalid value encountered in scalar divide").
    x, y = blobs(n_per_class=10, d=4)
    for c in range(3):
        x[y == c] -= x[y == c].mean(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = logme.logme(x, y)
    assert value == pytest.approx(logme.logme(np.zeros_like(x), y), rel=1e-12)


# Invariances.


def all_scores(x, y, theta=None):
    return apply.score(x, y, source_probabilities=theta)


def test_relabelling_classes_changes_no_score():
    x, y = blobs(shift=1.0)
    theta = np.random.default_rng(2).dirichlet(np.ones(4), size=len(y))
    relabelled = np.array([7, -3, 2])[y]
    before, after = all_scores(x, y, theta), all_scores(x, relabelled, theta)
    assert list(before) == PER_CUT
    for name in PER_CUT:
        assert after[name] == pytest.approx(before[name], rel=1e-9), name
    assert ncti.ncti_terms(x, relabelled) == pytest.approx(ncti.ncti_terms(x, y), rel=1e-9)


def test_rotation_leaves_logme_hscore_transrate_and_knn_unchanged():
    x, y = blobs(shift=1.0)
    rotated = x @ orthogonal(x.shape[1])
    for name in ("logme", "hscore", "transrate", "knn", "sfda"):
        function = FEATURE_ESTIMATORS[name]
        assert function(rotated, y) == pytest.approx(function(x, y), rel=1e-8), name
    assert ncti.ncti_terms(rotated, y) == pytest.approx(ncti.ncti_terms(x, y), rel=1e-8)


def test_scaling_and_translation():
    x, y = blobs(shift=1.0)
    moved = 7.0 * x + 3.0
    for name in ("hscore", "transrate", "knn"):
        function = FEATURE_ESTIMATORS[name]
        assert function(moved, y) == pytest.approx(function(x, y), rel=1e-8), name
    # SFDA and NCTI: translation only (their shrinkage reads the scale of the features).
    assert sfda.sfda(x + 3.0, y) == pytest.approx(sfda.sfda(x, y), rel=1e-8)
    assert ncti.ncti_terms(x + 3.0, y) == pytest.approx(ncti.ncti_terms(x, y), rel=1e-8)
    # The linear probe standardizes each feature: any positive per-feature scale and shift.
    per_feature = x * np.linspace(0.1, 10.0, x.shape[1]) - 5.0
    assert linear_probe.linear_probe(per_feature, y) == pytest.approx(
        linear_probe.linear_probe(x, y), abs=1e-12
    )
    # LogME has no intercept, so only scaling; alpha absorbs it up to the fixed point's tolerance.
    assert logme.logme(7.0 * x, y) == pytest.approx(logme.logme(x, y), rel=1e-4)


def test_leep_ignores_the_order_of_source_classes():
    y = np.repeat(np.arange(3), 10)
    theta = np.random.default_rng(5).dirichlet(np.ones(5), size=len(y))
    assert leep.leep(theta[:, ::-1], y) == pytest.approx(leep.leep(theta, y), rel=1e-12)


# Separable against noise.


def test_separable_features_score_higher_than_noise_for_every_estimator():
    x, y = blobs(shift=8.0)
    noise = np.random.default_rng(9).normal(size=x.shape)
    rng = np.random.default_rng(4)
    aligned = np.full((len(y), 3), 0.05)
    aligned[np.arange(len(y)), y] = 0.9
    random_theta = rng.dirichlet(np.ones(3), size=len(y))
    separable, noisy = all_scores(x, y, aligned), all_scores(noise, y, random_theta)
    for name in PER_CUT:
        assert separable[name] > noisy[name], name
    # NCTI over the two as a set of candidates.
    assert ncti.ncti([ncti.ncti_terms(x, y), ncti.ncti_terms(noise, y)]) == [1.0, 0.0]
    # The accuracy estimators saturate on separable features; noise stays near chance (1/3).
    assert separable["linear_probe"] == 1.0 and separable["knn"] == 1.0
    assert noisy["linear_probe"] < 0.6 and noisy["knn"] < 0.6


# Guards.


def test_more_dimensions_than_examples_gives_finite_scores():
    x, y = blobs(n_per_class=8, d=100, classes=2)
    scores = apply.score(x, y)
    assert list(scores) == ["logme", "hscore", "transrate", "linear_probe", "knn", "sfda"]
    assert all(np.isfinite(value) for value in scores.values()), scores
    assert all(np.isfinite(ncti.ncti_terms(x, y)))


def test_constant_and_zero_features_give_finite_scores():
    x, y = blobs(n_per_class=10, d=4, classes=2)
    x[:, 1] = 0.1  # a constant column whose mean is inexact in floating point
    assert all(np.isfinite(value) for value in apply.score(x, y).values())
    # Unshrunk, the pseudo-inverse drops the constant direction: the other features' H-score.
    without = np.delete(x, 1, axis=1)
    assert hscore.h_score(x, y, shrinkage=0) == pytest.approx(
        hscore.h_score(without, y, 0), rel=1e-9
    )
    for constant in (np.zeros((20, 3)), np.full((20, 3), 0.1)):
        scores = apply.score(constant, y)
        assert scores["hscore"] == 0.0 and scores["transrate"] == 0.0
        assert scores["sfda"] == pytest.approx(0.5)  # p(c | x) = N_c/N = 1/2
        assert all(np.isfinite(value) for value in scores.values()), scores
        assert all(np.isfinite(ncti.ncti_terms(constant, y)))


@pytest.mark.parametrize("name", registry.names())
def test_one_class_is_refused(name):
    x, y = np.random.default_rng(0).random((6, 3)), np.full(6, 4)
    function = registry.get(name).function  # NCTI's: one candidate's terms
    with pytest.raises(ValueError, match="at least 2 classes"):
        function(x / x.sum(axis=1, keepdims=True), y)


def test_bad_shapes_and_values_are_refused():
    with pytest.raises(ValueError, match="at least 2 examples"):
        logme.logme(np.ones((1, 3)), [0])
    with pytest.raises(ValueError, match="2-D"):
        hscore.h_score(np.ones((4, 2, 2)), [0, 0, 1, 1])
    with pytest.raises(ValueError, match="labels must have shape"):
        transrate.transrate(np.ones((4, 2)), [0, 1])
    with pytest.raises(ValueError, match="NaN or infinite"):
        knn.knn(np.array([[0.0], [np.nan], [1.0], [2.0]]), [0, 0, 1, 1])
    with pytest.raises(ValueError, match="rows that sum to 1"):
        leep.leep(np.array([[0.5, 0.2], [0.5, 0.5]]), [0, 1])
    with pytest.raises(ValueError, match="shrinkage must be"):
        hscore.h_score(np.ones((4, 2)), [0, 0, 1, 1], shrinkage=1.5)
    with pytest.raises(ValueError, match="folds >= 2"):
        linear_probe.linear_probe(np.ones((4, 2)), [0, 0, 1, 1], folds=1)
    with pytest.raises(ValueError, match="all zeros"):
        logme.logme_evidence(np.ones((4, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="shrinkage must be in"):
        lda.shrinkage_lda(np.ones((4, 2)), [0, 0, 1, 1], 1.5)


def test_a_class_of_one_example_makes_the_fold_estimators_nan():
    x, y = blobs(n_per_class=5, d=3, classes=2)
    x, y = np.vstack([x, np.zeros((1, 3))]), np.append(y, 9)
    for name in ("linear_probe", "knn"):
        with pytest.warns(RuntimeWarning, match="single example"):
            assert math.isnan(FEATURE_ESTIMATORS[name](x, y))
    for name in ("logme", "hscore", "transrate", "sfda"):
        assert np.isfinite(FEATURE_ESTIMATORS[name](x, y)), name
    assert all(np.isfinite(ncti.ncti_terms(x, y)))


def test_folds_shrink_to_the_smallest_class_and_repeat_for_a_seed():
    x, y = blobs(n_per_class=2, d=3, classes=2, shift=20.0)  # 2 examples a class: 2 folds
    assert (
        linear_probe.linear_probe(x, y) == 1.0 and knn.knn(x, y) == 1.0
    )  # k capped at 1 example a class
    x, y = blobs(shift=0.5)
    assert knn.knn(x, y, seed=3) == knn.knn(x, y, seed=3)
    assert linear_probe.linear_probe(x, y, seed=3) == linear_probe.linear_probe(x, y, seed=3)


def test_reduce_features():
    maps = np.random.default_rng(0).normal(size=(4, 3, 5, 6))
    pooled = reduction.reduce_features(maps)
    assert pooled.shape == (4, 6)
    np.testing.assert_allclose(pooled[1, 2], maps[1, :, :, 2].mean())
    flat = np.arange(8.0).reshape(4, 2)
    np.testing.assert_array_equal(reduction.reduce_features(flat), flat)
    assert reduction.reduce_features(maps, "pca", size=3).shape == (4, 3)
    assert reduction.reduce_features(maps, "pca", size=50).shape == (4, 4)  # capped at min(N, D)
    assert reduction.reduce_features(maps, "pca").shape == (4, 4)
    np.testing.assert_array_equal(
        reduction.reduce_features(maps, "pca", size=2),
        reduction.reduce_features(maps, "pca", size=2),
    )
    with pytest.raises(ValueError, match="'gap' or 'pca'"):
        reduction.reduce_features(maps, "max")
    with pytest.raises(ValueError, match="only to method='pca'"):
        reduction.reduce_features(maps, size=3)


def test_score_picks_estimators_and_matches_the_functions():
    x, y = blobs(n_per_class=10, d=4)
    theta = np.random.default_rng(1).dirichlet(np.ones(3), size=len(y))
    scores = apply.score(x, y, theta, estimators=["leep", "hscore"])
    assert list(scores) == ["hscore", "leep"]
    assert scores == {"hscore": hscore.h_score(x, y), "leep": leep.leep(theta, y)}
    assert list(apply.score(x, y, theta)) == PER_CUT
    assert list(apply.score(x, y, theta, estimators=["ncti", "sfda"])) == ["sfda"]
    with pytest.raises(ValueError, match="leep needs source_probabilities"):
        apply.score(x, y, estimators=["leep"])
    with pytest.raises(ValueError, match="unknown estimators"):
        apply.score(x, y, estimators=["logme", "nce"])


def test_score_or_why_costs_one_number_per_estimator_that_cannot_score():
    x, y = blobs(n_per_class=5, d=3, classes=2)
    theta = np.random.default_rng(1).dirichlet(np.ones(3), size=len(y) + 1)
    lonely, labels = np.vstack([x, np.zeros((1, 3))]), np.append(y, 9)  # a class of one
    values, why = apply.score_or_why(lonely, labels, theta)
    assert list(values) == PER_CUT
    assert values["linear_probe"] is None and values["knn"] is None
    assert set(why) == {"linear_probe", "knn"} and "single example" in why["knn"]
    assert values["logme"] == logme.logme(lonely, labels)
    assert values["leep"] == leep.leep(theta, labels)
    # Features that are not finite: every feature estimator names them; LEEP reads the head.
    lonely[0, 0] = np.inf
    values, why = apply.score_or_why(lonely, labels, theta)
    assert values["leep"] == leep.leep(theta, labels) and "leep" not in why
    for name in FEATURE_ESTIMATORS:
        assert values[name] is None and why[name] == "features hold 1 NaN or infinite values"
    with pytest.raises(ValueError, match="leep needs source_probabilities"):
        apply.score_or_why(x, y, estimators=["leep"])


def test_score_or_why_gives_one_line_reasons_and_passes_warnings_of_a_score_on(monkeypatch):
    x, y = blobs(n_per_class=5, d=3, classes=2)

    def broken(features, labels):
        raise np.linalg.LinAlgError("Eigenvalues\n did not converge")

    def silent_nan(features, labels):
        return math.nan

    def warns(features, labels):
        warnings.warn("overflow, harmless", RuntimeWarning, stacklevel=2)
        return 1.0

    for name, function in (("logme", broken), ("hscore", silent_nan), ("knn", warns)):
        patched = dataclasses.replace(registry.get(name), function=function)
        monkeypatch.setitem(registry._REGISTERED, name, patched)
    with pytest.warns(RuntimeWarning, match="overflow, harmless"):
        values, why = apply.score_or_why(x, y, estimators=["logme", "hscore", "knn"])
    assert values == {"logme": None, "hscore": None, "knn": 1.0}
    assert why == {"logme": "Eigenvalues did not converge", "hscore": "the score came out nan"}


def test_bootstrap_top_k_holds_for_separable_choices_and_not_for_a_coin_flip():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 100)

    def informative():
        return labels[:, None] * 5.0 + rng.normal(scale=0.5, size=(200, 4))

    def noise():
        return rng.normal(size=(200, 4))

    clear = bootstrap.top_k_stability(
        [informative(), noise(), informative()], labels, "logme", k=2, replicates=40
    )
    assert clear["held"] == 1.0 and clear["in_top_k"] == [1.0, 0.0, 1.0]
    # The second best is one of two noise cuts: the resamples disagree on which.
    coin = bootstrap.top_k_stability(
        [noise(), noise(), informative()], labels, "logme", k=2, replicates=40
    )
    assert coin["in_top_k"][2] == 1.0 and coin["held"] < 0.95
    assert 0 < coin["in_top_k"][0] < 1 and coin["in_top_k"][0] + coin["in_top_k"][1] == 1.0
    ranked_set = bootstrap.top_k_stability(
        [noise(), informative()], labels, "ncti", k=1, replicates=10
    )
    assert ranked_set["in_top_k"] == [0.0, 1.0]  # a set estimator is resampled as a set
    with pytest.raises(ValueError, match="leep"):
        bootstrap.top_k_stability([noise()], labels, "leep", k=1)


# The registry.


def test_the_registry_names_each_estimator_in_order_with_what_sets_it_apart():
    names = ("logme", "hscore", "transrate", "linear_probe", "knn", "sfda", "ncti", "leep")
    assert registry.names() == names
    titles = ["LogME", "H-score", "TransRate", "linear probe", "kNN", "SFDA", "NCTI", "LEEP"]
    assert [registry.title(name) for name in names] == titles
    assert registry.title("nce") == "nce"  # a name from a file written elsewhere
    assert [name for name in names if registry.get(name).reads_head] == ["leep"]
    assert [name for name in names if registry.get(name).is_set] == ["ncti"]
    assert registry.get("ncti").over_set is ncti.ncti
    # --estimators' default and help come from the registry.
    assert config.ScoringConfig().estimators == names
    assert config.SETTINGS["estimators"].metadata["help"] == (
        "Estimators that score every cut point without training: logme, hscore, transrate, "
        "linear_probe, knn, sfda, ncti (which ranks a network's cut points against each "
        "other), leep (the source head's probabilities). Empty: --mode=all scores nothing."
    )
    with pytest.raises(ValueError, match="unknown estimator 'nce'; choose from"):
        registry.get("nce")
    with pytest.raises(ValueError, match="'logme' is registered already"):
        registry.register(registry.Estimator("logme", "LogME again", logme.logme))


def test_a_new_estimator_is_a_function_and_its_registration(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTERED", dict(registry._REGISTERED))

    def class_count(features, labels):
        return float(len(np.unique(labels)))

    registry.register(registry.Estimator("classes", "class count", class_count))
    x, y = blobs(n_per_class=5, d=3)
    assert registry.names()[-1] == "classes"
    scores = apply.score(x, y, estimators=["classes", "logme"])
    assert scores == {"logme": logme.logme(x, y), "classes": 3.0}
    assert list(apply.score(x, y)) == [*PER_CUT[:-1], "classes"]  # no head: no LEEP
    picked = bootstrap.top_k_stability([x, np.zeros_like(x)], y, "classes", k=1, replicates=3)
    assert picked["in_top_k"] == [1.0, 0.0]  # tied scores: the lower cut
    config.check_settings(config.ScoringConfig(estimators=("classes",), prune_estimator="classes"))
    with pytest.raises(UsageError, match="unknown estimator 'nce' in --estimators"):
        config.check_settings(config.ScoringConfig(estimators=("nce",)))
