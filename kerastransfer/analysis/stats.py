"""Statistics of values: Student's t distribution, summaries, Welch and pooled differences.

Every interval of the analysis is a two-sided 95% t-interval; the t distribution is computed
here (a continued fraction and Newton's method) so that the analysis needs no scipy. There is no
interval from fewer than two values or from values that are all equal (sd 0); a `why` says so.
What the values are (networks, or base networks: kerastransfer.analysis.inference) is the
caller's choice.
"""

import functools
import math

CONFIDENCE = 0.95
# A spread this small relative to the values is floating-point rounding, not a spread: two
# networks that score the same images can differ in the 17th digit.
ROUNDING = 1e-12


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
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    fraction = d
    for m in range(1, 500):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
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


def _t_pdf(t, df):
    return math.exp(
        math.lgamma((df + 1.0) / 2.0)
        - math.lgamma(df / 2.0)
        - 0.5 * math.log(df * math.pi)
        - (df + 1.0) / 2.0 * math.log1p(t * t / df)
    )


@functools.lru_cache(maxsize=256)
def t_quantile(p, df):
    """The p-quantile of Student's t with `df` degrees of freedom: Newton's method on `t_cdf`,
    kept inside a bracket that bisection narrows.

    Exact to about 1e-12, so no scipy is needed; `df` may be fractional (Welch's test). Cached:
    the analysis asks for the same few quantiles many times.
    """
    if not 0.0 < p < 1.0 or not df > 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, 2.0 * high
    t = 0.5 * (low + high)
    for _ in range(200):
        error = t_cdf(t, df) - p
        if error < 0:
            low = t
        else:
            high = t
        step = t - error / _t_pdf(t, df)
        step = step if low < step < high else 0.5 * (low + high)
        if abs(step - t) < 1e-12:
            return step
        t = step
    return t


def summarize(values, *, noun="network", bounds=None):
    """Count, mean, sample sd and 95% t-interval of the mean of `values`, and `why` there is no
    interval when there is none (`noun` names what was counted: "one base network").

    No interval from fewer than two values or from sd 0 (equal values tell nothing of the
    spread). `bounds` (low, high) clips the interval, e.g. (0, 1) for accuracies.
    """
    values = [float(v) for v in values]
    count = len(values)
    result = {"count": count, "mean": None, "sd": None, "ci": None, "why": None}
    if count == 0:
        result["why"] = f"no {noun}s"
        return result
    result["mean"] = mean = math.fsum(values) / count
    if count == 1:
        result["why"] = f"one {noun}"
        return result
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (count - 1))
    if len(set(values)) == 1 or sd <= ROUNDING * max(1.0, abs(mean)):
        # sd 0, which rounding could hide: 7/24 summed in two orders differs in the 17th digit
        result["sd"], result["why"] = 0.0, f"all {count} {noun}s give the same value (sd 0)"
        return result
    result["sd"] = sd
    half = t_quantile(0.5 + CONFIDENCE / 2.0, count - 1) * sd / math.sqrt(count)
    result["ci"] = _clip([mean - half, mean + half], bounds)
    return result


def _clip(ci, bounds):
    return ci if bounds is None else [max(ci[0], bounds[0]), min(ci[1], bounds[1])]


def difference(values, reference_values):
    """mean(values) - mean(reference_values) with Welch's 95% t-interval, for two separate
    groups (unpaired); no interval when either side has none (summarize)."""
    a, b = summarize(values), summarize(reference_values)
    result = {"effect": None, "ci": None, "count": a["count"], "reference_count": b["count"]}
    if a["mean"] is not None and b["mean"] is not None:
        result["effect"] = a["mean"] - b["mean"]
    if a["ci"] is None or b["ci"] is None:
        return result
    var_a, var_b = a["sd"] ** 2 / a["count"], b["sd"] ** 2 / b["count"]
    df = (var_a + var_b) ** 2 / (var_a**2 / (a["count"] - 1) + var_b**2 / (b["count"] - 1))
    half = t_quantile(0.5 + CONFIDENCE / 2.0, df) * math.sqrt(var_a + var_b)
    result["ci"] = [result["effect"] - half, result["effect"] + half]
    return result


def pooled_sd(groups):
    """(sd, degrees of freedom) of the spread within groups, pooled over `groups` (lists of
    values) on the assumption that every group has the same spread; (None, 0) without any
    group of two or more."""
    squares, df = [], 0
    for values in groups:
        if len(values) > 1:
            mean = math.fsum(values) / len(values)
            squares += [(v - mean) ** 2 for v in values]
            df += len(values) - 1
    return (math.sqrt(math.fsum(squares) / df), df) if df else (None, 0)


def pooled_difference(values, reference_values, sd, df):
    """mean(values) - mean(reference_values) with a 95% t-interval from a pooled sd on `df`
    degrees of freedom (pooled_sd); no interval (`why`) without a positive sd."""
    result = {
        "effect": None,
        "ci": None,
        "count": len(values),
        "reference_count": len(reference_values),
        "why": None,
    }
    if not values or not reference_values:
        result["why"] = "no networks on a side"
        return result
    result["effect"] = math.fsum(values) / len(values) - (
        math.fsum(reference_values) / len(reference_values)
    )
    if sd is not None and sd <= ROUNDING * max(1.0, abs(result["effect"])):
        sd = 0.0
    if not sd:
        result["why"] = (
            "one seed per cell: no seed-to-seed spread to measure"
            if sd is None
            else "every seed gives the same value (sd 0)"
        )
        return result
    half = (
        t_quantile(0.5 + CONFIDENCE / 2.0, df)
        * sd
        * math.sqrt(1.0 / len(values) + 1.0 / len(reference_values))
    )
    result["ci"] = [result["effect"] - half, result["effect"] + half]
    return result
