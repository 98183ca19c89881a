"""Statistics over networks: Student's t distribution, summaries and Welch differences.

Every interval of the analysis is a two-sided 95% t-interval over networks; the t distribution
is computed here (a continued fraction and bisection) so that the analysis needs no scipy.
Statistics that need two or more networks are None with fewer.
"""

import math

CONFIDENCE = 0.95


def _betainc(a, b, x):
    """Regularized incomplete beta function I_x(a, b) by Lentz's continued fraction.

    Numerical Recipes' `betai`; converges fast for x < (a + 1) / (a + b + 2), so the other side
    is computed by symmetry.
    """
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1.0) / (a + b + 2.0):
        return 1.0 - _betainc(b, a, 1.0 - x)
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    fraction = d
    for m in range(1, 500):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            fraction *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return math.exp(log_front) * fraction / a


def t_cdf(t, df):
    """P(T <= t) for Student's t with `df` (> 0, not necessarily whole) degrees of freedom."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p, df):
    """The p-quantile of Student's t with `df` degrees of freedom (bisection on `t_cdf`).

    Exact to about 1e-9, so no scipy is needed; `df` may be fractional (Welch's test).
    """
    if not 0.0 < p < 1.0 or not df > 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    high = 1.0
    while t_cdf(high, df) < p:
        high *= 2.0
    low = 0.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        if t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
        if high - low < 1e-10:
            break
    return 0.5 * (low + high)


def summarize(values):
    """Count, mean, sample sd and 95% t-interval of the mean of `values`.

    With one value sd and ci are None; with none, mean is None too.
    """
    values = [float(v) for v in values]
    count = len(values)
    if count == 0:
        return {"count": 0, "mean": None, "sd": None, "ci": None}
    mean = math.fsum(values) / count
    if count == 1:
        return {"count": 1, "mean": mean, "sd": None, "ci": None}
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (count - 1))
    half = t_quantile(0.5 + CONFIDENCE / 2.0, count - 1) * sd / math.sqrt(count)
    return {"count": count, "mean": mean, "sd": sd, "ci": [mean - half, mean + half]}


def difference(values, reference_values):
    """mean(values) - mean(reference_values) with Welch's 95% t-interval.

    The two groups are separate networks (unpaired); the interval needs two or more in each.
    """
    a, b = summarize(values), summarize(reference_values)
    result = {"effect": None, "ci": None, "count": a["count"], "reference_count": b["count"]}
    if a["mean"] is None or b["mean"] is None:
        return result
    result["effect"] = a["mean"] - b["mean"]
    if a["sd"] is None or b["sd"] is None:
        return result
    var_a, var_b = a["sd"] ** 2 / a["count"], b["sd"] ** 2 / b["count"]
    se = math.sqrt(var_a + var_b)
    if se == 0.0:
        result["ci"] = [result["effect"], result["effect"]]
        return result
    df = (var_a + var_b) ** 2 / (var_a ** 2 / (a["count"] - 1) + var_b ** 2 / (b["count"] - 1))
    half = t_quantile(0.5 + CONFIDENCE / 2.0, df) * se
    result["ci"] = [result["effect"] - half, result["effect"] + half]
    return result


def one_sample(values):
    """summarize() in the effect/ci shape of difference(), for effects measured per network."""
    stats = summarize(values)
    return {"effect": stats["mean"], "ci": stats["ci"], "count": stats["count"],
            "sd": stats["sd"]}
