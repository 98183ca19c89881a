"""Honest inference (docs/statistics.md): the base network is the unit of replication,
comparisons are paired where the design pairs them, no interval is degenerate, the baseline is
the base of the half a run targets, and the own-model recommendation selects on the networks it
delivers."""

import json
import math
import re

import numpy as np
import pytest

from helpers.cli import run_cli
from kerastransfer import analysis, designs
from kerastransfer.analysis import findings, intervals, stats
from kerastransfer.analysis.baselines import matched_points
from kerastransfer.reporting import own_model_report, plots, report
from kerastransfer.reporting.formats import MISSING

# ----------------------------------------------------------------------------- one base network


def _steady_csv(path):
    """One split, no seeds (one base network per half): every BnB and AnB+ about +1 point above
    base B (+0.9, +1.0 or +1.1 by n), in the paper's CSV columns."""
    rows = [
        "network,treatment,split,source,target,n,best10,final,evaluations",
        "half0A,base,0,,A,0,0.8000,0.8000,10",
        "half0B,base,0,,B,0,0.7800,0.7800,10",
    ]
    for n in range(1, 8):
        value = 0.79 + 0.001 * (n % 3 - 1)
        rows += [
            f"selffer0B0B_{n},selffer,0,B,B,{n},{value:.4f},{value:.4f},10",
            f"transfer-ft0A0B_{n},transfer_ft,0,A,B,{n},{value:.4f},{value:.4f},10",
        ]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.e2e
def test_one_base_network_is_inconclusive_through_the_command_line(tmp_path):
    """Seven layers over one base network are one replicate: the dip and the boost get no
    interval, and the report says why."""
    csv = _steady_csv(tmp_path / "steady.csv")
    workdir = tmp_path / "work"
    done = run_cli("--mode=analyze", f"--results={csv}", f"--workdir={workdir}")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((workdir / "analysis.json").read_text())
    for number in (1, 3):
        finding = result["findings"][number - 1]
        assert finding["status"] == "inconclusive", finding
        assert finding["ci"] is None and finding["units"] == 1
        assert "one base network (random0 B)" in finding["why"]
    assert result["findings"][2]["effect"] == pytest.approx(1.0, abs=1e-9)
    text = (workdir / "report.md").read_text()
    assert "no confidence interval: one base network (random0 B)" in text
    assert "the unit of replication (split x target half x seed): 1 (random0 B)." in text


# ----------------------------------------------------------------------------- coverage

# Points: the spread of a base network and of a run around its half's level, the same for
# both; the dissimilar split is noisier (Welch's test compares it with the random splits).
SIGMA = {"random0": 0.5, "dissimilar": 1.0}
SEEDS = 3
EFFECTS = {  # points against the half's level, per treatment and n
    "selffer": lambda n: -2.0 if n in (3, 4, 5) else 0.0,
    "selffer_ft": lambda n: 0.5,
    "transfer": lambda n: -1.2 * max(0, n - 4),
    "transfer_ft": lambda n: 1.0,
    "random": lambda n: -5.0 * n,
}
DISTANCE = 3.0  # the dissimilar split's AnB loses three times as much


def _effect(split, treatment, n):
    return EFFECTS[treatment](n) * (
        DISTANCE if (split, treatment) == ("dissimilar", "transfer") else 1.0
    )


def _true_effects():
    """What each finding's interval should cover, from EFFECTS (finding 1: the dip, then the
    repair)."""
    layers = range(1, 8)
    return [
        np.mean([_effect("random0", "selffer", n) for n in designs.MIDDLE_LAYERS]),
        np.mean(
            [
                _effect("random0", "selffer_ft", n) - _effect("random0", "selffer", n)
                for n in designs.MIDDLE_LAYERS
            ]
        ),
        np.mean(
            [
                _effect("random0", "transfer", n) - _effect("random0", "selffer", n)
                for n in designs.HIGH_LAYERS
            ]
        ),
        np.mean([_effect("random0", "transfer_ft", n) for n in layers]),
        _effect("dissimilar", "transfer", 7) - _effect("random0", "transfer", 7),
        np.mean(
            [
                _effect("dissimilar", "random", n) - _effect("dissimilar", "transfer", n)
                for n in layers
            ]
        ),
    ]


def _simulated_study(rng):
    """SEEDS seeds of random0 (every treatment) and of the dissimilar split (AnB and random
    features), all on half B. Each seed's half has its own level; its base and each run add
    their own error of sd SIGMA[split], so a seed's runs share its base's error."""
    records = []
    for split, names in (("random0", tuple(EFFECTS)), ("dissimilar", ("transfer", "random"))):
        for seed in range(SEEDS):
            level = 80.0 + rng.normal(0, 2.0)
            records.append(
                {
                    "run": f"{split}/base/{seed}",
                    "treatment": "base",
                    "split": split,
                    "target": "B",
                    "n": 0,
                    "seed": seed,
                    "status": "ok",
                    "best_k": (level + rng.normal(0, SIGMA[split])) / 100,
                }
            )
            noise = rng.normal(0, SIGMA[split], (len(names), 7))
            for i, treatment in enumerate(names):
                for n in range(1, 8):
                    records.append(
                        {
                            "run": f"{split}/{treatment}/{n}/{seed}",
                            "treatment": treatment,
                            "split": split,
                            "target": "B",
                            "n": n,
                            "seed": seed,
                            "status": "ok",
                            "best_k": (level + _effect(split, treatment, n) + noise[i, n - 1])
                            / 100,
                        }
                    )
    return records


def test_findings_intervals_cover_the_true_effect_with_shared_bases():
    """2,000 simulated studies, base spread equal to layer spread: each finding's interval
    (finding 1's two parts apart) covers the true effect in 93-97% of them. An interval over
    the 7 layers of one AnB+ curve, the old way, covers far less."""
    rng = np.random.default_rng(20141)
    truth = _true_effects()
    covered, per_layer = np.zeros(len(truth)), 0
    studies = 2000
    for _ in range(studies):
        records = _simulated_study(rng)
        checked = findings.check(records)
        intervals = [checked[0]["parts"][0]["ci"], checked[0]["parts"][1]["ci"]] + [
            f["ci"] for f in checked[1:]
        ]
        covered += [low <= true <= high for (low, high), true in zip(intervals, truth)]
        boost = [
            m.points
            for m in matched_points(records)[0]
            if m.record.treatment == "transfer_ft" and m.record.seed == 0
        ]
        low, high = stats.summarize(boost)["ci"]
        per_layer += low <= truth[3] <= high
    coverage = covered / studies
    assert np.all((coverage >= 0.93) & (coverage <= 0.97)), coverage
    assert per_layer / studies < 0.7


# ----------------------------------------------------------------------------- degenerate


def test_no_interval_from_sd_0_or_one_value():
    for values in ([0.7, 0.7], [100 / 143] * 3, [0.1] * 3):  # 3 x 0.1 averages to 0.1000...02
        result = stats.summarize(values)
        assert result["ci"] is None and result["sd"] == 0.0
        assert result["why"] == f"all {len(values)} networks give the same value (sd 0)"
    assert stats.summarize([0.7], noun="base network")["why"] == "one base network"
    assert stats.difference([0.8, 0.8], [0.7, 0.72])["ci"] is None
    assert stats.difference([0.8, 0.81], [0.7, 0.72])["ci"] is not None
    assert stats.pooled_difference([0.8], [0.7], 0.0, 3)["ci"] is None
    assert stats.pooled_difference([0.8], [0.7], None, 0)["why"].startswith("one seed")


def test_base_networks_that_agree_give_no_interval_and_decide_nothing():
    values = [
        intervals.Value(("random0", "B", seed), ("random0", "B", seed, n), value)
        for seed in (0, 1)
        for n, value in ((3, -1.0), (4, -3.0))
    ]
    result = intervals.over_units(values)
    assert (result["effect"], result["ci"], result["units"], result["networks"]) == (
        -2.0,
        None,
        2,
        4,
    )
    assert "sd 0" in result["why"]
    assert findings.decide(result["effect"], result["ci"], -1, result["why"])[0] == ("inconclusive")


def test_accuracy_intervals_are_clipped_and_none_in_the_report_leaves_0_1():
    """Two networks at .99 and .95 have a t(1) interval reaching 1.24: shown clipped to 1."""
    records = [
        {
            "treatment": "base",
            "split": "random0",
            "target": "B",
            "n": 0,
            "seed": seed,
            "best_k": accuracy,
            "test_accuracy": accuracy - 0.9,
            "status": "ok",
        }
        for seed, accuracy in ((0, 0.99), (1, 0.95))
    ]
    records += [
        {
            "treatment": "selffer",
            "split": "random0",
            "target": "B",
            "n": 1,
            "seed": seed,
            "best_k": accuracy,
            "test_accuracy": 0.02 + 0.03 * seed,
            "status": "ok",
        }
        for seed, accuracy in ((0, 0.97), (1, 0.98))
    ]
    result = analysis.analyze(records)
    base = analysis.find_cell(result["cells"], "base", 0)
    assert base["best_k"]["ci"][1] == 1.0 and base["test_accuracy"]["ci"][0] == 0.0
    text = report.render_report(result)
    accuracies = re.findall(r"\[(-?\d+\.\d{4}), (-?\d+\.\d{4})\]", text)
    assert accuracies and all(0.0 <= float(v) <= 1.0 for pair in accuracies for v in pair)
    assert "0.9700 [" in text and ", 1.0000] (2)" in text


def test_figure_bands_need_three_base_networks():
    assert all(math.isnan(v) for v in plots._band(2, [0.1, 0.9]))
    assert plots._band(3, [0.1, 0.9]) == (0.1, 0.9)
    assert all(math.isnan(v) for v in plots._band(5, None))


# ----------------------------------------------------------------------------- pairing


def _value(seed, n, value, treatment_target="B"):
    return intervals.Value(
        ("random0", treatment_target, seed), ("random0", treatment_target, seed, n), value
    )


def test_paired_where_runs_share_split_half_seed_and_n():
    """Differences of the shared runs, averaged per base network; the spread of the bases
    cancels. Runs that pair with nothing are left out."""
    bases = {0: 5.0, 1: -5.0, 2: 0.0}
    ours = [_value(s, n, bases[s] + 2.0 + 0.1 * n) for s in bases for n in (3, 4, 5)]
    theirs = [_value(s, n, bases[s] + 0.1 * n + 0.01 * s) for s in bases for n in (3, 4)]
    result = intervals.compare(ours, theirs)
    assert result["test"] == intervals.PAIRED
    assert (result["units"], result["networks"]) == (3, 6)
    assert result["effect"] == pytest.approx(1.99)
    assert result["ci"][1] - result["ci"][0] < 0.2
    unpaired = intervals.unpaired(ours, theirs)
    assert unpaired["test"] == intervals.WELCH and unpaired["ci"][0] < 0 < unpaired["ci"][1]


def test_unpaired_over_base_networks_when_nothing_pairs():
    ours = [_value(s, n, 1.0 + s) for s in (0, 1) for n in (1, 2)]
    theirs = [_value(s, n, 0.5 * s, "A") for s in (0, 1, 2) for n in (1, 2)]
    result = intervals.compare(ours, theirs, names=("AnB+", "BnB+"))
    assert result["test"] == intervals.WELCH
    assert (result["units"], result["reference_units"], result["networks"]) == (2, 3, 10)
    assert result["effect"] == pytest.approx(1.5 - 0.5)
    one = intervals.compare(ours[:2], theirs, names=("AnB+", "BnB+"))
    assert one["ci"] is None and one["why"] == "AnB+: one base network (random0 B seed 0)"


def _record(split, treatment, n, seed, best_k, target="B"):
    return {
        "treatment": treatment,
        "split": split,
        "target": target,
        "n": n,
        "seed": seed,
        "best_k": best_k,
        "status": "ok",
    }


def test_random_features_are_compared_with_anb_of_the_same_split_group():
    """Random features on both split groups; finding 5 compares them with AnB of the most
    distant group that has both, paired, not with AnB of another group."""
    records = []
    for seed in (0, 1, 2):
        for split, anb in (("random0", -0.01), ("dissimilar", -0.10)):
            records.append(_record(split, "base", 0, seed, 0.80 + 0.01 * seed))
            for n in (1, 2):
                records.append(
                    _record(split, "transfer", n, seed, 0.80 + 0.01 * seed + anb + 0.001 * n)
                )
                records.append(
                    _record(split, "random", n, seed, 0.80 + 0.01 * seed - 0.20 - 0.002 * n * seed)
                )
    finding = findings.check(records)[4]
    assert finding["test"] == intervals.PAIRED and finding["units"] == 3
    assert "dissimilar split, at n=1,2" in finding["measure"]
    assert finding["effect"] == pytest.approx(-10.0 - 0.3 - 0.15, abs=1e-9)
    assert finding["status"] == "reproduced"


# ----------------------------------------------------------------------------- the half's base


def test_base_of_the_targeted_half():
    """Every run targets B: "baseB" is base B, base A only gave layers; Table 1's paper way
    subtracts base B alone."""
    records = [
        _record("random0", "base", 0, 0, 0.95, target="A"),
        _record("random0", "base", 0, 0, 0.88),
    ]
    records += [_record("random0", "transfer_ft", n, 0, 0.90) for n in range(1, 8)]
    result = analysis.analyze(records)
    base = analysis.find_cell(result["cells"], "base", 0)
    assert (base["label"], base["best_k"]["mean"], base["best_k"]["count"]) == ("baseB", 0.88, 1)
    source = analysis.find_cell(result["cells"], "base", 0, target="A")
    assert (source["label"], source["best_k"]["mean"]) == ("baseA", 0.95)
    assert result["table1"]["1-7"]["over_base"] == pytest.approx(2.0)
    assert "| random | A | baseA (source only) | 0.9500 (1) |" in report.render_report(result)


# ----------------------------------------------------------------------------- own model


def _own(treatment, n, seed, final_val, best_k=None, test=None):
    return {
        "run": f"target/{treatment}/n{n}/seed{seed}",
        "treatment": treatment,
        "split": "target",
        "target": "B",
        "n": n,
        "seed": seed,
        "status": "ok",
        "final_val": final_val,
        "best_k": best_k if best_k is not None else final_val,
        "test_accuracy": final_val - 0.01 if test is None else test,
        "val_examples": 143,
        "test_examples": 500,
    }


def test_recommendation_selects_on_the_delivered_weights_and_reports_test():
    """n=2 frozen has the best best-k, but its final (delivered) weights validate worse than
    n=1 fine-tuned's: the latter is chosen. Its gain is reported on test as well; the spread is
    pooled over cells, so two seeds give intervals on 4 degrees of freedom."""
    records = [
        _own("base", 0, 0, 0.800),
        _own("base", 0, 1, 0.806),
        _own("transfer", 2, 0, 0.830, best_k=0.90),
        _own("transfer", 2, 1, 0.836, best_k=0.90),
        _own("transfer_ft", 1, 0, 0.850),
        _own("transfer_ft", 1, 1, 0.852),
    ]
    result = analysis.recommend(analysis.normalize_records(records))
    choice = result["choice"]
    assert (choice["n"], choice["mode"]) == (1, "fine-tuned")
    assert result["spread"]["validation"]["df"] == 3
    assert choice["gain_over_scratch"]["effect"] == pytest.approx(0.048)
    assert choice["test_gain_over_scratch"]["effect"] == pytest.approx(0.048)
    assert choice["test_gain_over_scratch"]["ci"][0] > 0
    assert choice["runner_up"]["margin"]["ci"][0] > 0
    assert result["examples"] == {"validation": [143], "test": [500]}
    text = own_model_report.render(result)
    assert "**Use n = 1, fine-tuned**" in text and "not separable" not in text
    assert "validation: 143 images (one image = 0.70 points)" in text
    assert "gain over training from scratch, test: +4.80 points [95% CI" in text


def test_recommendation_is_qualified_when_the_margin_includes_0():
    records = [_own("base", 0, s, 0.80 + 0.004 * s) for s in (0, 1)]
    records += [_own("transfer", 1, s, 0.851 + 0.01 * s) for s in (0, 1)]
    records += [_own("transfer_ft", 2, s, 0.850 + 0.01 * s) for s in (0, 1)]
    result = analysis.recommend(analysis.normalize_records(records))
    text = own_model_report.render(result)
    assert "**Use n = 1, frozen**" in text
    assert "n = 1 frozen, not separable from n = 2 fine-tuned at this size" in text
    one_seed = analysis.recommend(analysis.normalize_records(records[::2]))
    assert one_seed["choice"]["gain_over_scratch"]["ci"] is None
    assert "no CI: one seed per cell" in own_model_report.render(one_seed)


def test_a_baseline_without_validation_accuracy_is_reported_on_test():
    """A from-scratch baseline whose records hold no final_val (allowed: RunRecord.from_json
    reads it as None) has no validation gain; the report says so and judges the choice on
    test, where it used to stop with a TypeError comparing that missing gain with 0."""
    records = [_own("base", 0, s, None, best_k=0.80, test=0.800 + 0.004 * s) for s in (0, 1)]
    records += [_own("transfer_ft", 1, s, 0.850 + 0.002 * s) for s in (0, 1)]
    result = analysis.recommend(analysis.normalize_records(records))
    gains = result["choice"]["gain_over_scratch"], result["choice"]["test_gain_over_scratch"]
    assert gains[0]["effect"] is None and gains[1]["effect"] == pytest.approx(0.039)
    text = own_model_report.render(result)
    assert "**Use n = 1, fine-tuned**" in text
    assert f"gain over training from scratch, validation: {MISSING} (optimistic" in text
    assert "gain over training from scratch, test: +3.90 points [95% CI" in text


def test_a_recommended_recipe_is_set_against_plain_fine_tuning_with_its_cost():
    records = [_own("base", 0, s, 0.800 + 0.006 * s) for s in (0, 1)]
    records += [_own("transfer_ft", 1, s, 0.850 + 0.002 * s) for s in (0, 1)]
    records += [_own("transfer_ft", 3, s, 0.840 + 0.002 * s) for s in (0, 1)]
    records += [_own("probe", 2, s, 0.870 + 0.002 * s) for s in (0, 1)]
    for record, seconds in zip(records, (9.0, 11.0, 6.0, 8.0, 7.0, 5.0, 1.5, 2.5)):
        record["train_seconds"] = seconds
    result = analysis.recommend(analysis.normalize_records(records))
    choice = result["choice"]
    assert (choice["treatment"], choice["n"], choice["mode"]) == ("probe", 2, "linear probe")
    plain = choice["over_fine_tuning"]
    assert plain["n"] == 1  # AnB+ at its best n
    assert plain["margin"]["effect"] == pytest.approx(0.020)
    assert plain["test_margin"]["effect"] == pytest.approx(0.020)
    assert result["cost"] == {"transfer_ft": 26.0, "probe": 4.0}
    assert [c["seconds"] for c in result["cells"]] == [7.0, 6.0, 2.0]
    text = own_model_report.render(result)
    assert "**Use n = 2, linear probe**" in text
    assert "gain over plain fine-tuning (AnB+ at its best, n = 1): test +2.00 points" in text
    assert "Training time per mode: fine-tuned 26 s, linear probe 4 s." in text
    fine_tuned_wins = analysis.recommend(analysis.normalize_records(records[:6]))
    assert fine_tuned_wins["choice"]["over_fine_tuning"] is None  # it is plain fine-tuning
