"""Power of Student's t-test: the noncentral t distribution, units needed, smallest effects.

A study's t-interval excludes 0 exactly when the two-sided t-test at level 1 - CONFIDENCE
rejects "no effect", so the power of that test is the chance that a finding whose true effect
is `effect` comes out decided. Here:

- `t_power(delta, df)`: P(|T'| > t_crit), T' noncentral t with `df` degrees of freedom and
  noncentrality `delta`, t_crit the two-sided 95% quantile of the central t.
- `units_needed(effect, sds)`: the smallest number of units (per side) whose test has POWER
  when the true effect is `effect`.
- `detectable(sds, units)`: the smallest effect that a study of that size detects with POWER.

The tests (`design`): one-sample, sds = (sd,) (also the paired test, a one-sample test on the
units' differences): delta = effect / (sd / sqrt(n)), df = n - 1. Two-sample, sds = (sd1, sd2)
(the Welch test): delta = effect / sqrt(sd1^2/n1 + sd2^2/n2), df by Welch-Satterthwaite; with
equal sds and n per side this is the textbook two-sample test (df = 2n - 2, delta =
d sqrt(n/2), d = effect / sd). These are the standard calculations (Cohen 1988, ch. 2; R's
power.t.test); docs/statistics.md, "Power".

The noncentral t is computed by numerical integration, no scipy: with Z standard normal and
U = sqrt(V), V chi-square on df degrees of freedom, T' = (Z + delta) / (U / sqrt(df)), so

    P(T' > t) = E_U[ Phi(delta - t U / sqrt(df)) ],

an integral over the chi density of U, taken by Simpson's rule on GRID_POINTS points in ln U
over U's mode +- CHI_SPAN (the chi density's sd is below 0.71 for every df, so the span holds
all but ~1e-30 of it). Accurate to about 1e-9 against scipy.stats.nct (tests/test_power.py).
"""

import functools
import math

import numpy as np

from kerastransfer.analysis.stats import CONFIDENCE, t_quantile

POWER = 0.80
# No study is sized beyond this many units per side; past it the answer is "more than".
MAX_UNITS = 1_000_000
GRID_POINTS = 4001  # odd, for Simpson's rule
CHI_SPAN = 12.0

_erfc = np.frompyfunc(math.erfc, 1, 1)


def normal_cdf(x):
    """Phi(x), elementwise, for a numpy array or a number (math.erfc; exact in the tails)."""
    return np.asarray(_erfc(-np.asarray(x, dtype=float) / math.sqrt(2.0)), dtype=float) / 2.0


@functools.lru_cache(maxsize=512)
def _chi_nodes(df):
    """(points u, Simpson weight x chi density at u) for U = sqrt(chi-square(df)).

    The integral runs over x = ln u, where the integrand u * density(u) is smooth even for
    fractional df below 2 (Welch's), whose density has an infinite slope at u = 0; from where
    less than about 1e-15 of the mass lies below (u^df = 1e-15) or U's mode - CHI_SPAN, to the
    mode + CHI_SPAN.
    """
    mode = math.sqrt(max(df - 1.0, 0.0))
    low = math.log(max(mode - CHI_SPAN, 1e-15 ** (1.0 / df)))
    high = math.log(mode + CHI_SPAN)
    x = np.linspace(low, high, GRID_POINTS)
    u = np.exp(x)
    step = (high - low) / (GRID_POINTS - 1)
    simpson = np.ones(GRID_POINTS)
    simpson[1:-1:2], simpson[2:-1:2] = 4.0, 2.0
    log_density = (
        (df - 1.0) * x - u * u / 2.0 - (df / 2.0 - 1.0) * math.log(2.0) - math.lgamma(df / 2.0)
    )
    return u, simpson * step / 3.0 * np.exp(log_density + x)  # du = u dx


def noncentral_t_sf(t, df, delta):
    """P(T' > t) for the noncentral t with `df` (> 0) degrees of freedom and noncentrality
    `delta`; the integral of the module doc."""
    u, weights = _chi_nodes(float(df))
    return float(np.sum(weights * normal_cdf(delta - t * u / math.sqrt(df))))


def t_power(delta, df, confidence=CONFIDENCE):
    """Power of the two-sided t-test at level 1 - `confidence` with `df` degrees of freedom
    when the noncentrality is `delta`: P(T' > t_crit) + P(T' < -t_crit)."""
    critical = t_quantile(0.5 + confidence / 2.0, df)
    u, weights = _chi_nodes(float(df))
    scaled = critical * u / math.sqrt(df)
    delta = abs(delta)
    return float(np.sum(weights * (normal_cdf(delta - scaled) + normal_cdf(-delta - scaled))))


def design(sds, units):
    """(standard error, degrees of freedom) of the mean difference a test estimates: one
    side, sds = (sd,), units = (n,): sd / sqrt(n) on n - 1; two sides (Welch), sds =
    (sd1, sd2), units = (n1, n2): sqrt(sd1^2/n1 + sd2^2/n2) on Welch-Satterthwaite's df
    (2n - 2 for equal sds and n per side: the textbook two-sample test). None for fewer
    than 2 units on a side or no spread."""
    if len(sds) != len(units) or any(n < 2 for n in units) or any(s is None for s in sds):
        return None
    shares = [s * s / n for s, n in zip(sds, units)]
    variance = sum(shares)
    if variance <= 0:
        return None
    if len(sds) == 1:
        return math.sqrt(variance), units[0] - 1
    df = variance**2 / sum(v * v / (n - 1) for v, n in zip(shares, units) if v > 0)
    return math.sqrt(variance), df


def power_at(effect, sds, units, confidence=CONFIDENCE):
    """Power of the two-sided t-test (design()) at true effect `effect`, in the sds' units."""
    se, df = design(sds, units)
    return t_power(effect / se, df, confidence)


def _z(p):
    """The standard normal p-quantile (bisection on normal_cdf; for starting guesses)."""
    low, high = -40.0, 40.0
    for _ in range(200):
        middle = (low + high) / 2.0
        low, high = (middle, high) if normal_cdf(middle) < p else (low, middle)
    return (low + high) / 2.0


def units_needed(effect, sds, power=POWER, confidence=CONFIDENCE):
    """The smallest number of units per side (at least 2) whose two-sided t-test (design())
    at level 1 - `confidence` has `power` at true effect `effect` (in the sds' units): one
    side for sds = (sd,), two for sds = (sd1, sd2).

    None without an effect or a spread, or when the answer exceeds MAX_UNITS. Power grows
    with the units, so a bisection finds the boundary; the normal approximation only
    brackets it.
    """
    effect = abs(effect)
    if not effect or not math.isfinite(effect) or design(sds, (2,) * len(sds)) is None:
        return None
    variance = sum(s * s for s in sds)
    guess = variance * ((_z(0.5 + confidence / 2.0) + _z(power)) / effect) ** 2
    if guess > 2 * MAX_UNITS:
        return None

    def enough(n):
        return power_at(effect, sds, (n,) * len(sds), confidence) >= power

    low, high = 1, max(2, math.ceil(guess))  # 1 unit has no test: count it short
    while not enough(high):
        low, high = high, 2 * high
        if low > MAX_UNITS:
            return None
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high if high <= MAX_UNITS else None


def detectable(sds, units, power=POWER, confidence=CONFIDENCE):
    """The smallest true effect (in the sds' units) that the two-sided t-test (design()) with
    these units detects with `power` at level 1 - `confidence`; None without a design."""
    found = design(sds, units)
    if found is None:
        return None
    se, df = found
    low, high = 0.0, 1.0
    while t_power(high, df, confidence) < power:
        low, high = high, 2.0 * high
    for _ in range(100):
        middle = (low + high) / 2.0
        low, high = (middle, high) if t_power(middle, df, confidence) < power else (low, middle)
    return high * se
