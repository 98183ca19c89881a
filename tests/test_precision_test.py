"""The precision test (kerastransfer.analysis.precision_test, docs/statistics.md "Precision") on
studies shaped like the default one (configs/fashion_mnist.flags: --design=findings, random:0
and the dissimilar split, both directions), built as results.jsonl records: a candidate
precision's records against the same study in float32, treatment by treatment over base
networks; and how the benchmark (tools/bench, row 7b) prints it and BENCHMARKS.md renders it."""

import dataclasses

import numpy as np
import pytest

from helpers.records import run_record
from kerastransfer import designs
from kerastransfer.analysis import findings, power
from kerastransfer.analysis import precision_test as precision
from kerastransfer.analysis.precision_test import collapsed, precision_test
from kerastransfer.errors import UsageError
from kerastransfer.workdir.records import RunRecord
from tools.bench import report
from tools.bench.study import precision_change

SPLITS, TARGETS = ("random0", "dissimilar"), ("B", "A")
TREATMENTS = ("selffer", "selffer_ft", "transfer", "transfer_ft", "random", "base_long")
FIGURE_UNIT = ("random0", "B", 0)  # --design=findings trains every cell of this unit


def effect(treatment, n, split):
    """The float32 study's structure, in accuracy: BnB dips at 3-5 (finding 1) and BnB+ does
    not, AnB falls from n = 4 (finding 2) and further on the dissimilar split (finding 4),
    AnB+ gains 0.2 points (finding 3: undecided at this spread), random features lose 40,
    and the compute-matched base gains nothing (the bases had stopped improving, so the plain
    base decides findings 1 and 3)."""
    dissimilar = split == "dissimilar"
    return {
        "selffer": -0.02 if n in designs.MIDDLE_LAYERS else 0.0,
        "selffer_ft": 0.0,
        "transfer": -(0.03 if dissimilar else 0.01) * max(0, n - 3),
        "transfer_ft": 0.002,
        "random": -0.40,
        "base_long": 0.0,
    }[treatment]


def default_like(seeds, seed=2014):
    """float32 records of the default study's design with `seeds` seeds (2: the default's 74
    networks on 8 base networks): every base network trains the findings' cells of its split,
    FIGURE_UNIT every cell. Each base network has its own level, each run its own error (sd
    0.5 points); test accuracy is best-k less 0.4 points."""
    rng = np.random.default_rng(seed)
    cells = designs.findings_cells(range(1, 8))
    records = []
    for split in SPLITS:
        for target in TARGETS:
            for s in range(seeds):
                level = (0.75 if split == "dissimilar" else 0.90) + rng.normal(0, 0.01)
                records.append(network(split, "base", target, 0, s, level))
                if (split, target, s) == FIGURE_UNIT:
                    wanted = {
                        (t, n)
                        for t in TREATMENTS
                        for n in ({0} if t == "base_long" else range(1, 8))
                    }
                else:
                    wanted = cells["random" if split == "random0" else "distant"]
                for treatment in TREATMENTS:
                    for n in sorted(n for name, n in wanted if name == treatment):
                        accuracy = level + effect(treatment, n, split) + rng.normal(0, 0.005)
                        records.append(network(split, treatment, target, n, s, accuracy))
    return records


def network(split, treatment, target, n, seed, best_k):
    """One run's record as the package writes it (the fields the test reads)."""
    return run_record(
        split,
        treatment,
        target,
        n,
        seed,
        best_k,
        test_accuracy=best_k - 0.004,
        num_classes=5,
        test_examples=5000,
    )


def candidate(float32, shifts, seed=7, test=None, best_k=None):
    """The same study in a candidate precision: each run's test accuracy and best-k move by
    the same draw from normal(mean, sd) points, (mean, sd) = shifts[treatment]; `test` and
    `best_k` ({run: value}) then set a run's test accuracy or move its best-k (points)."""
    rng = np.random.default_rng(seed)
    moved = []
    for record in float32:
        mean, sd = shifts[record["treatment"]]
        points = rng.normal(mean, sd) / 100.0
        moved.append(
            {
                **record,
                "test_accuracy": (test or {}).get(record["run"], record["test_accuracy"] + points),
                "best_k": record["best_k"] + points + (best_k or {}).get(record["run"], 0) / 100,
            }
        )
    return moved


def run_of(treatment, split="random0", target="B", n=0, seed=0):
    return run_record(split, treatment, target, n, seed, 0.0)["run"]


HARMLESS = {name: (0.0, 0.5) for name in ("base", *TREATMENTS)}
FOUR_SEEDS = default_like(4)  # 16 base networks: enough for a harmless precision (sizing)


def units_per_treatment(seeds):
    """Base networks per treatment of default_like(seeds): random features train on the
    dissimilar split and in FIGURE_UNIT."""
    random_split, both = 2 * seeds, 4 * seeds
    return {
        "base": both,
        "base_long": random_split,
        "selffer": random_split,
        "selffer_ft": random_split,
        "transfer": both,
        "transfer_ft": random_split,
        "random": random_split + 1,
    }


def test_the_records_are_the_default_studys_shape():
    study = default_like(2)
    assert len(study) == 74 and len({r["run"] for r in study}) == 74
    statuses = {f["finding"]: f["status"] for f in findings.check(FOUR_SEEDS)}
    assert statuses == {
        1: "reproduced",
        2: "reproduced",
        3: "inconclusive",
        4: "reproduced",
        5: "reproduced",
    }


# ----------------------------------------------------------------------------- verdicts


def test_a_harmless_precision_passes_every_treatment_over_base_networks():
    result = precision_test(candidate(FOUR_SEEDS, HARMLESS), FOUR_SEEDS)
    assert result["passed"] and result["why"] == [], result["why"]
    assert result["accepted"] == sorted(units_per_treatment(4))
    for name, units in units_per_treatment(4).items():
        interval = result["treatments"][name]
        assert interval["units"] == units and interval["passed"] and interval["reasons"] == []
        assert -1.0 < interval["ci"][0] < interval["ci"][1] < 1.0
    assert result["treatments"]["selffer"]["networks"] == 2 * 8 + 7 - 2  # FIGURE_UNIT: 7
    overall = result["overall"]
    assert (overall["units"], overall["networks"], overall["bound"]) == (16, len(FOUR_SEEDS), 0.5)
    assert -0.5 < overall["ci"][0] < overall["ci"][1] < 0.5
    assert result["findings_changed"] == {} and result["collapsed"] == []
    assert result["unit"].startswith("base network") and result["confidence"] == 0.9


def test_a_unit_counts_once_however_many_networks_it_has():
    """FIGURE_UNIT alone trains every treatment at 7 n: 7 networks, one base network, no
    interval, no pass."""
    alone = [r for r in FOUR_SEEDS if (r["split"], r["target"], r["seed"]) == FIGURE_UNIT]
    result = precision_test(candidate(alone, HARMLESS), alone)
    selffer = result["treatments"]["selffer"]
    assert (selffer["networks"], selffer["units"], selffer["ci"]) == (7, 1, None)
    assert selffer["why"] == "one base network" and not selffer["passed"]
    assert result["accepted"] == [] and not result["passed"]


def test_an_amx_like_precision_is_rejected_for_random_features_only():
    """Intel AMX's pattern (docs/statistics.md): every treatment within a point but random
    frozen features, which are noisy (sd 4.8 points per network) and where one network falls
    to chance (0.3654 -> 0.2000); the boost (finding 3), undecided in float32, comes out
    reproduced: a change that any perturbation makes, which rejects nothing."""
    shifts = {
        "base": (0.15, 0.5),
        "selffer": (0.0, 0.5),
        "selffer_ft": (0.37, 0.5),
        "transfer": (0.2, 0.5),
        "transfer_ft": (0.35, 0.5),
        "base_long": (0.15, 0.5),
        "random": (0.0, 4.8),
    }
    fallen = run_of("random", "dissimilar", "A", 4, 1)
    float32 = [{**r, "test_accuracy": 0.3654} if r["run"] == fallen else r for r in FOUR_SEEDS]
    result = precision_test(candidate(float32, shifts, seed=9, test={fallen: 0.2}), float32)
    assert result["accepted"] == sorted(set(units_per_treatment(4)) - {"random"})
    # random's noise also spreads the units' means over all networks, as on AMX
    assert not result["passed"] and not result["overall"]["within"]
    assert all(w.startswith(("random: ", "all networks: ")) for w in result["why"])
    random = result["treatments"]["random"]
    assert not random["passed"] and any(fallen in reason for reason in random["reasons"])
    (collapse,) = result["collapsed"]
    assert collapse == {
        "run": fallen,
        "treatment": "random",
        "float32": 0.3654,
        "candidate": 0.2,
        "chance": 0.2,
    }
    boost = result["findings_changed"][3]
    assert (boost["float32"], boost["candidate"], boost["counts"]) == (
        "inconclusive",
        "reproduced",
        False,
    )
    assert "includes 0 and holds the candidate's effect" in boost["why"]


def test_an_avx512_bf16_like_precision_is_rejected():
    """AMD EPYC's result on the default study: the mean 1.2 points down with a wide spread,
    one network at chance (0.2000 against 0.9510)."""
    float32 = default_like(2)
    shifts = {name: (-1.0, 2.5) for name in ("base", *TREATMENTS)}
    fallen = run_of("selffer_ft", "random0", "A", 4, 1)
    float32 = [{**r, "test_accuracy": 0.951} if r["run"] == fallen else r for r in float32]
    result = precision_test(candidate(float32, shifts, test={fallen: 0.2}), float32)
    assert not result["passed"]
    assert [c["run"] for c in result["collapsed"]] == [fallen]
    assert "selffer_ft" not in result["accepted"]
    assert result["overall"]["mean"] < -0.5 and not result["overall"]["within"]
    assert result["why"][0].startswith("all networks: 90% CI [")


def test_a_network_at_chance_rejects_its_treatment_though_its_interval_passes():
    """FIGURE_UNIT's random features at n = 7 drop from 0.26 to chance: one of that unit's 7
    random networks, so the treatment's mean over base networks stays within a point."""
    fallen = run_of("random", n=7)
    float32 = [{**r, "test_accuracy": 0.26} if r["run"] == fallen else r for r in FOUR_SEEDS]
    result = precision_test(candidate(float32, HARMLESS, test={fallen: 0.2}), float32)
    random = result["treatments"]["random"]
    assert random["within"] and not random["passed"]
    assert random["reasons"] == [
        f"{fallen} collapsed: 0.2600 in float32, 0.2000 in the candidate (chance 0.2000)"
    ]
    assert result["accepted"] == sorted(set(units_per_treatment(4)) - {"random"})


def test_a_collapse_is_chance_in_one_precision_and_a_clear_gap_to_the_other():
    record = RunRecord.from_json(network("random0", "transfer", "B", 1, 0, 0.9), "a record")
    assert record.num_classes == 5
    assert collapsed(record, 0.95, 0.20) and collapsed(record, 0.20, 0.2654)
    assert not collapsed(record, 0.205, 0.215)  # at chance in both
    assert not collapsed(record, 0.215, 0.245)  # 3 points apart: not a clear gap
    assert not collapsed(record, 0.60, 0.45)  # a large loss, for the interval to judge
    with pytest.raises(UsageError, match="num_classes=None"):
        collapsed(dataclasses.replace(record, num_classes=None), 0.9, 0.2)


# ----------------------------------------------------------------------------- findings


def test_findings_read_the_treatments_declared():
    """Moving one treatment's best-k moves the effects of exactly the findings that
    findings.READS says read it (the base cancels where two treatments of one base network
    are paired)."""
    before = findings.check(FOUR_SEEDS)

    def effects(checked):
        return [[p["effect"] for p in f.get("parts") or [f]] for f in checked]

    for name in ("base", *TREATMENTS):
        # by a different amount per base network, which no difference of units' means cancels
        moved = [
            {**r, "best_k": r["best_k"] + 0.01 * (1 + r["seed"] + 4 * (r["split"] == "dissimilar"))}
            if r["treatment"] == name
            else r
            for r in FOUR_SEEDS
        ]
        after = effects(findings.check(moved))
        changed = {
            f["finding"]
            for f, old, new in zip(before, effects(before), after)
            if new != pytest.approx(old, abs=1e-9)
        }
        assert changed == {n for n, reads in findings.READS.items() if name in reads}, name


def test_a_decided_finding_that_changes_status_rejects_the_treatments_it_reads():
    # BnB's best-k at n = 7 down to AnB's: finding 2 (AnB - BnB, reproduced) goes; test
    # accuracy, which the intervals read, does not move.
    lowered = {r["run"]: -4.0 for r in FOUR_SEEDS if r["treatment"] == "selffer" and r["n"] == 7}
    result = precision_test(candidate(FOUR_SEEDS, HARMLESS, best_k=lowered), FOUR_SEEDS)
    change = result["findings_changed"][2]
    assert change["float32"] == "reproduced" and change["counts"]
    assert "excludes 0" in change["why"] and change["reads"] == ["selffer", "transfer"]
    assert result["accepted"] == sorted(set(units_per_treatment(4)) - {"selffer", "transfer"})
    assert result["treatments"]["selffer"]["within"] and not result["passed"]
    assert f"selffer: finding 2 reproduced -> {change['candidate']} (" in result["why"][0]


def test_an_undecided_finding_whose_effect_leaves_float32s_interval_counts():
    """The boost is undecided in float32 (its interval includes 0); AnB+'s best-k 3 points up
    moves its effect out of that interval: a real change, whatever float32 decided."""
    raised = {r["run"]: 3.0 for r in FOUR_SEEDS if r["treatment"] == "transfer_ft"}
    result = precision_test(candidate(FOUR_SEEDS, HARMLESS, best_k=raised), FOUR_SEEDS)
    change = result["findings_changed"][3]
    assert (change["float32"], change["candidate"], change["counts"]) == (
        "inconclusive",
        "reproduced",
        True,
    )
    assert "leaves float32's CI" in change["why"]
    assert "transfer_ft" not in result["accepted"] and "base" not in result["accepted"]
    assert result["treatments"]["transfer_ft"]["within"]


# ----------------------------------------------------------------------------- pairing


def test_a_network_missing_or_failed_in_one_study_rejects_its_treatment():
    moved = candidate(FOUR_SEEDS, HARMLESS)
    lost = next(r for r in moved if r["treatment"] == "transfer")
    failed = next(r for r in moved if r["treatment"] == "selffer_ft")
    moved = [r for r in moved if r is not lost]
    moved = [{**r, "status": "failed"} if r is failed else r for r in moved]
    redone = next(r for r in FOUR_SEEDS if r["treatment"] == "random")
    # an older failed record of a redone run does not count
    result = precision_test(moved, [{**redone, "status": "failed"}, *FOUR_SEEDS])
    assert result["unpaired"] == sorted([lost["run"], failed["run"]])
    assert result["overall"]["networks"] == len(FOUR_SEEDS) - 2
    assert result["accepted"] == sorted(set(units_per_treatment(4)) - {"transfer", "selffer_ft"})
    assert f"ok in one study only: {lost['run']}" in result["treatments"]["transfer"]["reasons"]


# ----------------------------------------------------------------------------- sizing


def test_each_bound_says_how_many_base_networks_a_harmless_precision_needs():
    """The default study's size (2 seeds, 8 base networks): each interval's power and the
    units and seeds that give a harmless precision 80% power, from its own sd."""
    float32 = default_like(2)
    result = precision_test(candidate(float32, HARMLESS), float32)
    assert result["seeds"] == 2 and result["power"] == power.POWER
    for name, interval in [("overall", result["overall"]), *result["treatments"].items()]:
        sd, units, bound = interval["sd"], interval["units"], interval["bound"]
        assert interval["power"] == power.tost_power(bound, sd, units, precision.ALPHA), name
        needed = power.tost_units_needed(bound, sd, precision.ALPHA)
        assert interval["units_needed"] == needed, name
        per_seed = units / 2  # each seed adds the same base networks
        assert interval["seeds_needed"] * per_seed >= needed
        assert (interval["seeds_needed"] - 1) * per_seed < needed
    needed = [result["overall"]["seeds_needed"]]
    needed += [t["seeds_needed"] for t in result["treatments"].values()]
    assert result["seeds_needed"] == max(needed)


# ----------------------------------------------------------------------------- benchmark


def benchmark_results(candidate_records, float32_records):
    """Rows 7, 7b and 8 of a benchmark run whose row 7b trained `candidate_records`."""

    def row(wall, precision, records):
        return {
            "wall_seconds": wall,
            "floor_seconds": 250.0,
            "ratio": wall / 250.0,
            "peak_rss_bytes": 3e9,
            "networks": len(records),
            "precision": [precision],
            "base_accuracy_mean": 0.91,
            "records": records,
        }

    float32 = row(800.0, "float32", float32_records)
    bfloat16 = row(680.0, "mixed_bfloat16", candidate_records)
    results = {
        "peak_gflops": 100.0,
        "flops_per_image": {"training": 3e6, "forward": 1e6},
        "flagfile": "configs/fashion_mnist.flags",
        "study": float32,
        "study_bfloat16": bfloat16,
        "precision_change": {
            **precision_change(bfloat16, float32),
            "cpu_kind": "avx512_bf16",
            "declared": {"passed": False, "measured": "as measured"},
        },
        "by_hand": {
            "split": "random:0",
            "networks": 37,
            "package_seconds": 347.0,
            "by_hand_seconds": 373.0,
            "ratio": 373.0 / 347.0,
        },
    }
    results["targets"] = report.targets(results)
    return results


def test_the_benchmark_prints_and_renders_the_precision_test_with_row_8():
    shifted = {name: (-1.6 if name == "random" else 0.0, 0.5) for name in HARMLESS}
    results = benchmark_results(candidate(FOUR_SEEDS, shifted), FOUR_SEEDS)
    test = results["precision_change"]["test"]
    lines = []
    report.print_table(results, lines.append)
    row_7b = next(line for line in lines if line.startswith("7b "))
    assert "1.18x as fast as row 7" in row_7b
    assert f"precision test: mean paired difference {test['overall']['mean']:+.2f}" in row_7b
    assert "over 16 base networks" in row_7b and ": failed" in row_7b
    assert any(line.startswith("8 ") and "1.07x as fast as by hand" in line for line in lines)
    text = "\n".join(lines)
    assert "  base: mean " in text and "16 base networks (bound +-1): accepted" in text
    random = next(line for line in lines if line.startswith("  random: mean "))
    assert "9 base networks (bound +-1): rejected (90% CI [" in random
    assert "  findings that changed status: none" in lines
    assert "  accepted: base, base_long, selffer, selffer_ft, transfer, transfer_ft" in lines
    assert any(line.startswith("  verdict: not at parity: random: 90% CI") for line in lines)
    assert any(line.startswith("  a harmless precision passes every bound") for line in lines)
    (target,) = [line for line in lines if line.startswith("target: row 7b")]
    assert target.endswith("(NOT met)")
    text = "\n".join(report.mixed_precision_section(results))
    assert "Verdict: not at parity (random: 90% CI" in text
    accepted = "base, base_long, selffer, selffer_ft, transfer, transfer_ft"
    assert f"Accepted treatments: {accepted}" in text
    assert "this run agrees." in text

    passing = benchmark_results(candidate(FOUR_SEEDS, HARMLESS), FOUR_SEEDS)
    (target,) = [t for t in passing["targets"] if t["target"].startswith("row 7b")]
    assert target["met"] and target["value"] < 0.5
    text = "\n".join(report.mixed_precision_section(passing))
    assert "Verdict: at parity" in text and "**disagrees**" in text
