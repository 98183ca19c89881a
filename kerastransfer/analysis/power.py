"""Power of Student's t-test (the noncentral t, units needed, smallest effects) and of TOST.

A study's t-interval excludes 0 exactly when the two-sided t-test at level 1 - CONFIDENCE
rejects "no effect", so the power of that test is the chance that a finding whose true effect
is `effect` comes out decided. Here:

- `t_power(delta, df)`: P(|T'| > t_crit), T' noncentral t with `df` degrees of freedom and
  noncentrality `delta`, t_crit the two-sided 95% quantile of the central t.
- `units_needed(effect, sds)`: the smallest number of units (per side) whose test has POWER
  when the true effect is `effect`.
- `detectable(sds, units)`: the smallest effect that a study of that size detects with POWER.
- `tost_power(bound, sd, units, alpha)`, `tost_units_needed(bound, sd, alpha)`: the same for
  an equivalence test (two one-sided tests: the precision test, analysis/precision_test.py), at a
  true difference of 0 unless told otherwise.

The tests (`design`): one-sample, sds = (sd,) (also the paired test, a one-sample test on the
units' differences): delta = effect / (sd / sqrt(n)), df = n - 1. Two-sample, sds = (sd1, sd2)
(the Welch test): delta = effect / sqrt(sd1^2/n1 + sd2^2/n2), df by Welch-Satterthwaite; with
equal sds and n per side this is the textbook two-sample test (df = 2n - 2, delta =
d sqrt(n/2), d = effect / sd). These are the standard calculations (Cohen 1988, ch. 2; R's
power.t.test); docs/statistics.md, "Power".

The noncentral t and the quantiles are scipy.stats' (nct, t, norm); TOST's power integrates
scipy.special's chi-square and normal functions (scipy.integrate.quad).
"""

import math
from collections.abc import Callable, Sequence

import scipy.integrate
import scipy.optimize
import scipy.special
import scipy.stats

from kerastransfer.analysis.stats import CONFIDENCE

POWER = 0.80
# No study is sized beyond this many units per side; past it the answer is "more than".
MAX_UNITS = 1_000_000


def t_power(delta: float, df: float, confidence: float = CONFIDENCE) -> float:
    """Power of the two-sided t-test at level 1 - `confidence` with `df` degrees of freedom
    when the noncentrality is `delta`: P(T' > t_crit) + P(T' < -t_crit)."""
    critical = scipy.stats.t.ppf(0.5 + confidence / 2.0, df)
    # P(T' < -t) = P(-T' > t), and -T' is noncentral t with -delta: both tails come from sf,
    # since nct.cdf gives nan far in the lower tail (nct.cdf(-12.7, 1, 12) in scipy 1.17).
    return float(scipy.stats.nct.sf(critical, df, delta) + scipy.stats.nct.sf(critical, df, -delta))


def design(sds: Sequence[float | None], units: Sequence[int]) -> tuple[float, float] | None:
    """(standard error, degrees of freedom) of the mean difference a test estimates: one
    side, sds = (sd,), units = (n,): sd / sqrt(n) on n - 1; two sides (Welch), sds =
    (sd1, sd2), units = (n1, n2): sqrt(sd1^2/n1 + sd2^2/n2) on Welch-Satterthwaite's df
    (2n - 2 for equal sds and n per side: the textbook two-sample test). None for fewer
    than 2 units on a side or no spread."""
    spreads = [s for s in sds if s is not None]
    if len(sds) != len(units) or any(n < 2 for n in units) or len(spreads) < len(sds):
        return None
    shares = [s * s / n for s, n in zip(spreads, units)]
    variance = sum(shares)
    if variance <= 0:
        return None
    if len(sds) == 1:
        return math.sqrt(variance), units[0] - 1
    df = variance**2 / sum(v * v / (n - 1) for v, n in zip(shares, units) if v > 0)
    return math.sqrt(variance), df


def power_at(
    effect: float,
    sds: Sequence[float | None],
    units: Sequence[int],
    confidence: float = CONFIDENCE,
) -> float:
    """Power of the two-sided t-test (design()) at true effect `effect`, in the sds' units;
    ValueError where design() has none."""
    found = design(sds, units)
    if found is None:
        raise ValueError(f"no t-test with sds {list(sds)} on units {list(units)}")
    se, df = found
    return t_power(effect / se, df, confidence)


def _smallest_units(enough: Callable[[int], bool], guess: float) -> int | None:
    """The smallest n >= 2 with enough(n), for enough() false below some n and true from it
    on, starting from `guess` (a normal approximation); None past MAX_UNITS."""
    if guess > 2 * MAX_UNITS:
        return None
    low, high = 1, max(2, math.ceil(guess))  # 1 unit has no test: count it short
    while not enough(high):
        low, high = high, 2 * high
        if low > MAX_UNITS:
            return None
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high if high <= MAX_UNITS else None


def units_needed(
    effect: float,
    sds: Sequence[float | None],
    power: float = POWER,
    confidence: float = CONFIDENCE,
) -> int | None:
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
    variance = sum(s * s for s in sds if s is not None)  # design() found none missing
    normal = scipy.stats.norm.ppf
    guess = variance * ((normal(0.5 + confidence / 2.0) + normal(power)) / effect) ** 2
    return _smallest_units(
        lambda n: power_at(effect, sds, (n,) * len(sds), confidence) >= power, guess
    )


def detectable(
    sds: Sequence[float | None],
    units: Sequence[int],
    power: float = POWER,
    confidence: float = CONFIDENCE,
) -> float | None:
    """The smallest true effect (in the sds' units) that the two-sided t-test (design()) with
    these units detects with `power` at level 1 - `confidence`; None without a design."""
    found = design(sds, units)
    if found is None:
        return None
    se, df = found

    def short(delta: float) -> float:
        return t_power(delta, df, confidence) - power

    high = 1.0
    while short(high) < 0:
        high *= 2.0
    return scipy.optimize.brentq(short, 0.0, high, xtol=1e-12) * se


def tost_power(
    bound: float, sd: float | None, units: int, alpha: float, difference: float = 0.0
) -> float | None:
    """Power of two one-sided t-tests at level `alpha` each (TOST: the (1 - 2 alpha) t-interval
    of the mean lies within +-bound) on `units` values of spread `sd` whose true mean is
    `difference`; None for fewer than 2 units or no spread.

    Exact (Phillips 1990): with V = df s^2 / sd^2 chi-square on df = units - 1 and
    c = t_(1-alpha),df sqrt(V / df), the interval lies within the bound when the mean's z-score
    (mean / se, se = sd / sqrt(units)) lies in ((-bound - difference)/se + c,
    (bound - difference)/se - c), so the power is the expectation of that normal probability
    over V, integrated over V's quantiles (scipy.integrate.quad; stable for any df).
    """
    if units < 2 or not sd or sd <= 0:
        return None
    df = units - 1
    se = sd / math.sqrt(units)
    critical = scipy.stats.t.ppf(1.0 - alpha, df)
    upper, lower = (bound - difference) / se, (-bound - difference) / se
    # The interval fits inside the bounds only while c < bound / se. scipy.special's chi-square
    # (gammainc, gammaincinv) and normal (ndtr) functions: the integrand runs ~100 times.
    reach = scipy.special.gammainc(df / 2.0, df * (bound / (se * critical)) ** 2 / 2.0)

    def inside(quantile: float) -> float:
        c = critical * math.sqrt(2.0 * scipy.special.gammaincinv(df / 2.0, quantile) / df)
        return max(0.0, scipy.special.ndtr(upper - c) - scipy.special.ndtr(lower + c))

    return float(scipy.integrate.quad(inside, 0.0, reach, epsabs=1e-10, limit=200)[0])


def tost_units_needed(
    bound: float, sd: float | None, alpha: float, power: float = POWER
) -> int | None:
    """The smallest number of units (at least 2) on which a harmless change (true difference
    0) passes TOST at `alpha` against +-bound with `power`, for values of spread `sd`; None
    without a spread or past MAX_UNITS."""
    if not sd or sd <= 0:
        return None
    normal = scipy.stats.norm.ppf
    guess = (sd * (normal(1.0 - alpha) + normal(0.5 + power / 2.0)) / bound) ** 2

    def enough(n: int) -> bool:
        found = tost_power(bound, sd, n, alpha)  # a number: n >= 2 and sd > 0
        return found is not None and found >= power

    return _smallest_units(enough, guess)
