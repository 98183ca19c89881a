"""Power in the report (docs/statistics.md, "Power"): the t-test power calculation
(kerastransfer.analysis.power, scipy's noncentral t) at its edges and against published
tables, checked by simulation; each finding's sizing and the command that grows the study
(kerastransfer.analysis.sizing); the report's Power section; both directions pooled with their
counts; figure bands that stay inside the panel."""

import math

import matplotlib
import numpy as np
import pytest
import scipy.stats

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from helpers.records import run_record  # noqa: E402
from kerastransfer import analysis  # noqa: E402
from kerastransfer.analysis import power, sizing, stats  # noqa: E402
from kerastransfer.reporting import plots, report  # noqa: E402

# ----------------------------------------------------------------------------- noncentral t


def test_power_is_the_level_at_no_effect_and_grows_with_the_effect():
    """delta = 0 gives the test's level, 5%; power is symmetric in delta, grows with it and
    with df, and stays a probability far in the tails (df from 1, Cauchy-like, to 10^6,
    fractional df of Welch's test, delta up to 40), where scipy's nct.cdf alone gives nan."""
    for df in (1, 1.7, 2, 3, 5, 9.5, 30, 200, 100_000, 1_000_000):
        assert power.t_power(0.0, df) == pytest.approx(0.05, abs=1e-9)
        powers = [power.t_power(delta, df) for delta in (0.5, 2.0, 5.0, 12.0, 30.0, 40.0)]
        assert all(0.05 < p <= 1.0 for p in powers), (df, powers)
        assert powers == sorted(powers), (df, powers)
        assert power.t_power(-5.0, df) == power.t_power(5.0, df)
    assert power.t_power(2.0, 3) < power.t_power(2.0, 30)


# ----------------------------------------------------------------------------- sample sizes

# Cohen (1988), Statistical Power Analysis for the Behavioral Sciences, Table 2.4.1: n per group
# of the two-sample t-test, two-sided alpha .05, power .80, for d = .2, .5, .8.
COHEN_TWO_SAMPLE = {0.2: 393, 0.5: 64, 0.8: 26}


def test_units_needed_reproduce_cohens_table():
    """Equal spreads on both sides: the Welch design is the textbook two-sample test. Cohen's
    table gives 393 for d = .2 from a normal approximation; the exact t answer is 394, as
    R's power.t.test(delta=.2, power=.8) gives (393.4, rounded up)."""
    for d, table in COHEN_TWO_SAMPLE.items():
        needed = power.units_needed(d, (1.0, 1.0))
        assert needed in (table, table + 1), (d, needed)
        assert power.power_at(d, (1.0, 1.0), (needed, needed)) >= 0.8
        assert power.power_at(d, (1.0, 1.0), (needed - 1, needed - 1)) < 0.8


def test_units_needed_is_the_smallest_n_with_80_percent_power_by_scipy():
    """units_needed's search against the power computed directly from scipy.stats."""

    def scipy_power(d, n, two_sample):
        df = 2 * n - 2 if two_sample else n - 1
        delta = d * math.sqrt(n / 2 if two_sample else n)
        critical = scipy.stats.t.ppf(0.975, df)
        return scipy.stats.nct.sf(critical, df, delta) + scipy.stats.nct.cdf(-critical, df, delta)

    for d in (0.3, 0.5, 1.0, 1.7, 3.0):
        for sds, two_sample in (((1.0,), False), ((1.0, 1.0), True)):
            n = power.units_needed(d, sds)
            assert scipy_power(d, n, two_sample) >= 0.8 > scipy_power(d, n - 1, two_sample)
    assert power.units_needed(0.0, (1.0,)) is None
    assert power.units_needed(1e-4, (1.0,)) is None  # beyond MAX_UNITS
    assert power.units_needed(1.0, (None,)) is None


def test_a_study_of_the_size_named_decides_the_effect_80_percent_of_the_time():
    """Simulated studies of units_needed units, drawn with the effect and spread the sizing
    assumed, tested with the analysis' own intervals: the interval excludes 0 in about 80% of
    them, one unit fewer in fewer. One-sample (paired) and Welch."""
    rng = np.random.default_rng(17)
    studies = 3000
    for effect, sds in ((1.2, (2.0,)), (3.0, (2.5, 4.0))):
        n = power.units_needed(effect, sds)
        rates = []
        for units in (n, n - 1):
            decided = 0
            for _ in range(studies):
                if len(sds) == 1:
                    ci = stats.summarize(rng.normal(effect, sds[0], units))["ci"]
                else:
                    ci = stats.difference(
                        rng.normal(effect, sds[0], units), rng.normal(0.0, sds[1], units)
                    )["ci"]
                decided += ci[0] > 0 or ci[1] < 0
            rates.append(decided / studies)
        assert 0.77 <= rates[0] <= 0.85 and rates[1] < rates[0], (effect, sds, n, rates)


def test_tost_power_matches_simulated_equivalence_tests():
    """Two one-sided tests at 5% each (a 90% t-interval within +-bound) on simulated units of
    sd 1: the exact power agrees with 20,000 simulated studies, at a true difference of 0 and
    off it; never below the usual lower bound from two noncentral t's (equal for many units)."""
    rng = np.random.default_rng(33)
    for bound, units, difference in ((1.0, 4, 0.0), (1.0, 11, 0.0), (0.5, 20, 0.2), (1.0, 8, 0.6)):
        draws = rng.normal(difference, 1.0, (20_000, units))
        mean, sd = draws.mean(axis=1), draws.std(axis=1, ddof=1)
        half = scipy.stats.t.ppf(0.95, units - 1) * sd / math.sqrt(units)
        simulated = np.mean((mean - half > -bound) & (mean + half < bound))
        exact = power.tost_power(bound, 1.0, units, 0.05, difference)
        assert exact == pytest.approx(simulated, abs=0.01), (bound, units, difference)
        se, critical = 1.0 / math.sqrt(units), scipy.stats.t.ppf(0.95, units - 1)
        lower = scipy.stats.nct.cdf(-critical, units - 1, (difference - bound) / se)
        lower -= scipy.stats.nct.cdf(critical, units - 1, (difference + bound) / se)
        assert exact >= lower - 1e-9
    many = power.tost_power(0.1, 1.0, 1000, 0.05)
    se, critical = 1.0 / math.sqrt(1000), scipy.stats.t.ppf(0.95, 999)
    assert many == pytest.approx(
        scipy.stats.nct.cdf(-critical, 999, -0.1 / se)
        - scipy.stats.nct.cdf(critical, 999, 0.1 / se),
        abs=1e-8,
    )
    assert (
        power.tost_power(1.0, 1.0, 1, 0.05) is None and power.tost_power(1.0, 0.0, 5, 0.05) is None
    )


def test_tost_units_needed_is_the_smallest_size_with_80_percent_power():
    """A harmless change (true difference 0) on sd 1: 11 units pass +-1 with 80% power and 10
    do not; for many units the normal approximation n = (z_0.95 + z_0.90)^2 (sd / bound)^2
    holds (214.1 at bound 0.2, so 215 or 216 with t)."""
    for bound, sd in ((1.0, 1.0), (1.0, 2.0), (0.5, 0.8), (1.0, 0.3)):
        n = power.tost_units_needed(bound, sd, 0.05)
        assert power.tost_power(bound, sd, n, 0.05) >= 0.8
        assert n == 2 or power.tost_power(bound, sd, n - 1, 0.05) < 0.8
    assert power.tost_units_needed(1.0, 1.0, 0.05) == 11
    assert power.tost_units_needed(0.2, 1.0, 0.05) in (215, 216)
    assert power.tost_units_needed(1.0, 0.0, 0.05) is None
    assert power.tost_units_needed(1e-4, 100.0, 0.05) is None  # beyond MAX_UNITS


def test_detectable_effect_is_the_inverse_of_power():
    for sds, units in (((1.0,), (2,)), ((0.4,), (6,)), ((0.6, 0.28), (2, 8)), ((1.0, 1.0), (5, 5))):
        smallest = power.detectable(sds, units)
        assert power.power_at(smallest, sds, units) == pytest.approx(0.8, abs=1e-9)
    # Equal sides: Cohen's d = .5 needs 64 per side, so 64 per side detect about .5 sd.
    assert power.detectable((1.0, 1.0), (64, 64)) == pytest.approx(0.5, abs=0.005)
    assert power.detectable((1.0,), (1,)) is None and power.detectable((None,), (4,)) is None


def test_welch_design_uses_each_sides_spread():
    """A noisy side of 2 base networks dominates the standard error; pooling by degrees of
    freedom would have hidden it."""
    se, df = power.design((0.6, 0.28), (2, 8))
    assert se == pytest.approx(math.sqrt(0.36 / 2 + 0.0784 / 8))
    assert 1.0 < df < 2.0
    assert power.design((1.0, 1.0), (5, 5))[1] == pytest.approx(8.0)


def test_floating_point_twins_have_no_spread():
    """7/24 summed in two orders differs in the 17th digit: no interval, sd 0."""
    result = stats.summarize([0.2916666666666667, 0.29166666666666663])
    assert result["ci"] is None and result["sd"] == 0.0


# ----------------------------------------------------------------------------- sizing

TREATMENTS = ("selffer", "selffer_ft", "transfer", "transfer_ft", "random")
COMMAND = "python -m kerastransfer.run --flagfile=configs/x.flags --seeds 0 --overwrite --mode=all"


def _study(seeds, targets=("B",), noise=0.01, seed=0):
    """random0 with every treatment at n = 1..7 for `targets`, each seed's base and runs with
    their own error of sd `noise`; BnB dips 2 points at 3..5, AnB falls from n = 5 on, AnB+
    gains 0.4 points, random features lose 5 points per layer."""
    rng = np.random.default_rng(seed)
    shift = {
        "selffer": lambda n: -0.02 if n in (3, 4, 5) else 0.0,
        "selffer_ft": lambda n: 0.0,
        "transfer": lambda n: -0.02 * max(0, n - 4),
        "transfer_ft": lambda n: 0.004,
        "random": lambda n: -0.05 * n,
    }
    records = []
    for s in seeds:
        for half in ("A", "B"):
            records.append(run_record("random0", "base", half, 0, s, 0.8 + rng.normal(0, noise)))
        for target in targets:
            level = 0.8 + rng.normal(0, noise)
            for treatment in TREATMENTS:
                for n in range(1, 8):
                    accuracy = level + shift[treatment](n) + rng.normal(0, noise)
                    records.append(run_record("random0", treatment, target, n, s, accuracy))
    return records


CONFIG = {"command": COMMAND, "experiment": {"data": {"splits": ["random:0"]}}}


def test_one_base_network_names_a_second_seed_and_no_size():
    """One seed, one direction (the default study's shape): every measured finding's spread
    is unknown; its command adds one seed; no units are invented. Finding 4 lacks the
    dissimilar split and says how to add it."""
    result = analysis.analyze(_study([0]), config=CONFIG)
    for finding in result["findings"]:
        entry = finding["power"]
        if finding["finding"] == 4:
            assert entry["state"] == sizing.NO_EFFECT
            assert entry["adds_split"]["flags"] == ["--splits=random:0,dissimilar"]
            continue
        assert entry["state"] == sizing.UNKNOWN_SPREAD and entry["units_needed"] is None
        assert entry["extension"]["flags"] == ["--seeds=0,1"]
        assert entry["extension"]["units"] == [2]
        assert entry["extension"]["command"] == (
            "python -m kerastransfer.run --flagfile=configs/x.flags --mode=all --seeds=0,1"
        )
    text = report.render_report(result)
    assert "## Power: what would decide each finding" in text
    assert "spread unknown (one base network on a side): a second seed estimates it" in text
    assert "--splits=random:0,dissimilar` adds the dissimilar split" in text


def test_inconclusive_findings_are_sized_and_the_command_reaches_the_size():
    """Two seeds, one direction, noisy: the effect seen and its spread give units_needed; the
    command adds --directions=both and as few seeds as reach it, and says what it gives."""
    result = analysis.analyze(_study([0, 1], noise=0.012, seed=3), config=CONFIG)
    sized = [f for f in result["findings"] if f["power"]["state"] == sizing.SIZED]
    assert sized, [f["power"]["state"] for f in result["findings"]]
    for finding in sized:
        entry = finding["power"]
        part = finding["parts"][entry["part"] - 1] if finding.get("parts") else finding
        assert entry["units"] == [2] and entry["sds"] == [part["sd"]]
        assert entry["units_needed"] == power.units_needed(part["effect"], (part["sd"],))
        extension = entry["extension"]
        if entry["units_needed"] > 2 * sizing.MAX_SEEDS:
            assert "more than" in extension["why"]
            continue
        # Both directions give 2 base networks per seed: as few seeds as reach the size.
        seeds = max(2, math.ceil(entry["units_needed"] / 2))
        assert extension["directions"] == "both" and extension["seeds"] == seeds
        assert extension["units"] == [2 * seeds] and 2 * seeds >= entry["units_needed"]
        assert extension["flags"] == ["--directions=both"] + (
            ["--seeds=" + ",".join(map(str, range(seeds)))] if seeds > 2 else []
        )
    text = report.render_report(result)
    for finding in sized:
        assert f"about {finding['power']['units_needed']} base networks" in text


def test_decided_findings_give_the_smallest_detectable_effect():
    result = analysis.analyze(_study(range(4), targets=("B", "A"), noise=0.002), config=CONFIG)
    decided = [f for f in result["findings"] if f["status"] in sizing.DECIDED]
    assert decided
    for finding in decided:
        for part in finding.get("parts") or [finding]:
            entry = part["power"]
            assert entry["state"] == sizing.DETECTABLE and entry["extension"] is None
            assert entry["units"] == [8]
            assert entry["detectable"] == pytest.approx(power.detectable((part["sd"],), (8,)))
    text = report.render_report(result)
    assert f"could have detected ±{decided[0]['power']['detectable']:.2f} points or more" in text


def test_paper_networks_have_no_seeds_to_add():
    result = analysis.analyze(analysis.load_paper_csv())
    fifth = result["findings"][4]["power"]
    assert fifth["state"] == sizing.UNKNOWN_SPREAD and "no seeds" in fifth["extension"]["why"]
    welch = result["findings"][3]["power"]
    assert welch["test"] == sizing.TESTS["Welch t over base networks"]
    assert welch["units"] == [2, 8] and welch["detectable"] > 1.0


def _row(finding, state, **fields):
    return {
        "finding": finding,
        "part": None,
        "measure": f"measure {finding}",
        "status": "inconclusive",
        "state": state,
        "test": "one-sample t",
        "effect": -2.5,
        "sds": [1.25],
        "units": [2],
        "per_side": False,
        "detectable": None,
        "units_needed": None,
        "enough": None,
        "adds_split": None,
    } | fields


def test_the_power_section_formats_finished_rows():
    """report.py words analysis.sizing's finished rows and commands as they come: every state
    of a row, every kind of command, from a hand-made dict (no analysis runs here)."""
    rows = [
        _row(1, sizing.SIZED, part=2, units_needed=9, enough=False),
        _row(2, sizing.SIZED, units=[3, 4], sds=[1.0, None], per_side=True),
        _row(3, sizing.SIZED, units_needed=2, enough=True),
        _row(4, sizing.NO_EFFECT, effect=None, adds_split="dissimilar"),
        _row(5, sizing.DETECTABLE, status="reproduced", units=[8], detectable=1.234),
        _row(6, sizing.NO_SPREAD),
    ]
    grow = {"command": None, "flags": ["--seeds=0,1"], "seeds": 2, "directions": None}
    commands = [
        grow
        | {
            "kind": "grow",
            "findings": [1, 3],
            "estimate_spread": False,
            "units_needed": 9,
            "per_side": False,
            "gives": [10],
            "gives_per_side": False,
        },
        {"kind": "no command", "findings": [2], "why": "it would take 200 seeds"},
        {"kind": "add split", "findings": [4], "adds": "dissimilar", "command": None, "flags": []},
        grow | {"kind": "all", "findings": [1, 6], "command": "python -m x --seeds=0,1"},
    ]
    summary = {"power": 0.8, "confidence": 0.95, "method": "a method", "rows": rows}
    text = report._power({"power": summary | {"commands": commands}})
    level = "80% power, 95% level"
    for line in [
        f"| 1, part 2 | measure 1 | inconclusive | -2.50 | 1.25 | 2 | one-sample t | about 9 "
        f"base networks ({level}), if the effect seen is real |",
        f"| 2 | measure 2 | inconclusive | -2.50 | 1.00 / – | 3 vs 4 | one-sample t | more than "
        f"1,000,000 base networks per side ({level}): the effect seen is tiny against its "
        f"spread |",
        f"about 2 base networks ({level}): the study has them;",
        "| 4 | measure 4 | inconclusive | – | 1.25 | 2 | one-sample t | no effect measured; the "
        "study lacks the dissimilar split |",
        f"could have detected ±1.23 points or more ({level}, 8 base networks, sd 1.25)",
        "no spread: the base networks all give the same value (sd 0)",
        "- Findings 1, 3 (about 9 base networks needed): the study's command with "
        "`--seeds=0,1` gives 10 base networks (2 seeds).",
        "- Finding 2 (no command): it would take 200 seeds.",
        "- Finding 4 (to measure it): add the dissimilar split to the study's --splits.",
        "- Findings 1, 6 at once: `python -m x --seeds=0,1` (2 seeds).",
    ]:
        assert line in text, line
    assert report._power({"power": summary | {"rows": [], "commands": []}}) == ""


# ----------------------------------------------------------------------------- directions


def test_both_directions_share_a_cell_and_the_report_counts_each():
    records = _study([0, 1], targets=("B", "A"))
    result = analysis.analyze(records)
    cell = analysis.find_cell(result["cells"], "transfer", 7)
    assert cell["targets"] == {"B": 2, "A": 2} and cell["units"] == 4
    assert cell["best_k"]["count"] == 4
    text = report.render_report(result)
    line = next(row for row in text.splitlines() if row.startswith("| random | all | AnB |"))
    assert line.endswith("| 2 + 2 |")
    assert "networks per cell, target B + target A" in text


# ----------------------------------------------------------------------------- figures


def test_bands_are_cut_to_the_panel():
    fig, axis = plt.subplots()
    cut = plots._fill_clipped(axis, [1, 2, 3], [-0.4, 0.2, np.nan], [0.5, 1.7, np.nan], (0, 1), "k")
    (band,) = axis.collections
    ys = np.concatenate([path.vertices[:, 1] for path in band.get_paths()])
    plt.close(fig)
    assert cut and ys.min() >= 0.0 and ys.max() <= 1.0
    fig, axis = plt.subplots()
    assert not plots._fill_clipped(axis, [1, 2], [0.2, 0.3], [0.4, 0.5], (0, 1), "k")
    plt.close(fig)


def test_relative_drop_keeps_the_base_networks_values_for_the_dots():
    drop = analysis.relative_drop(_study([0, 1]))
    for cell in drop["random_splits"]:
        assert len(cell["unit_values"]) == cell["units"] == 2
        assert np.mean(cell["unit_values"]) == pytest.approx(cell["effect"])


def test_figures_of_a_noisy_three_seed_study(tmp_path):
    """3 base networks with a large spread: the t(2) bands would leave [0, 1]; the figures are
    written (the band cutting itself is checked above)."""
    records = _study([0, 1, 2], noise=0.15)
    for r in records:
        r["best_k"] = float(np.clip(r["best_k"], 0.0, 1.0))
    records = analysis.normalize_records(records)
    paths = plots.plot_figures(str(tmp_path), analysis.analyze(records), records)
    assert sorted(p.rsplit("/", 1)[1] for p in paths) == [
        "dissimilar.pdf",
        "dissimilar.png",
        "transfer.pdf",
        "transfer.png",
    ]
