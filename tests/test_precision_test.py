"""The precision test (kerastransfer.analysis.precision, docs/statistics.md "Precision") on
hand-made studies: a candidate precision's records against the same study in float32; and
how the benchmark (tools/bench, row 7b) prints it and BENCHMARKS.md renders it."""

from helpers.records import run_record
from kerastransfer.analysis.precision import precision_test
from tools.bench import report
from tools.bench.study import precision_change

TREATMENTS = ("selffer", "selffer_ft", "transfer", "transfer_ft", "random")
SEEDS = (0, 1, 2)


def study(points=None, best_k=lambda record: 0.0):
    """A study of 3 seeds (111 networks, all targeting B): float32's, or with `points` a
    candidate's whose networks' test accuracies move by `points(record)` points plus a jitter
    within +-0.1; `best_k(record)` moves best-k (what the findings read), in points.

    The float32 study has AnB 8 points below BnB at n = 6, 7: finding 2 is reproduced there.
    """
    records = []
    for seed in SEEDS:
        for half in ("A", "B"):
            records.append(run_record("random0", "base", half, 0, seed, 0.90 + 0.01 * seed))
        for n in range(1, 8):
            for treatment in TREATMENTS:
                accuracy = 0.85 + 0.003 * n + 0.01 * seed - 0.002 * TREATMENTS.index(treatment)
                if treatment == "transfer" and n >= 6:
                    accuracy -= 0.08
                records.append(run_record("random0", treatment, "B", n, seed, accuracy))
    for i, record in enumerate(records):
        moved = 0.0 if points is None else jitter(i) + points(record)
        record["test_accuracy"] = record["best_k"] - 0.01 + moved / 100
        record["best_k"] += (jitter(i + 3) + best_k(record)) / 100
    return records


def jitter(i):
    """A deterministic offset within +-0.1 points that differs from network to network."""
    return ((i * 7919) % 11 - 5) / 50


FLOAT32 = study()


def test_a_precision_within_the_bounds_everywhere_passes():
    result = precision_test(study(points=lambda r: 0.05), FLOAT32)
    assert result["passed"] and result["why"] == []
    overall = result["overall"]
    assert overall["networks"] == 111 and abs(overall["mean"] - 0.05) < 0.01
    low, high = overall["ci"]
    assert -0.5 < low < 0.05 < high < 0.5
    assert set(result["treatments"]) == {"base", *TREATMENTS}
    assert result["treatments"]["base"]["networks"] == 6
    assert all(t["within"] for t in result["treatments"].values())
    assert result["findings"]["float32"][2] == "reproduced"
    assert result["findings_changed"] == {} and result["unpaired"] == []
    assert result["confidence"] == 0.9


def test_a_mean_shift_beyond_half_a_point_fails_on_all_networks_only():
    result = precision_test(study(points=lambda r: -0.6), FLOAT32)
    assert not result["passed"]
    assert result["overall"]["ci"][1] < -0.5 and not result["overall"]["within"]
    assert all(t["within"] for t in result["treatments"].values())  # -0.6 is within +-1
    assert len(result["why"]) == 1 and result["why"][0].startswith("all networks: 90% CI [")


def test_one_treatment_beyond_a_point_fails_though_the_mean_of_all_passes():
    shift = lambda r: -1.2 if r["treatment"] == "random" else 0.0  # noqa: E731
    result = precision_test(study(points=shift), FLOAT32)
    assert result["overall"]["within"] and not result["passed"]
    assert [name for name, t in result["treatments"].items() if not t["within"]] == ["random"]
    assert result["why"] == [f"random: {result['treatments']['random']['why']}"]
    assert result["largest"]["points"] < -1.0


def test_a_finding_that_changes_status_fails_though_every_interval_passes():
    # best-k (what the findings read) of BnB at n = 6, 7 down to AnB's: finding 2 goes
    lowered = lambda r: -8.4 if r["treatment"] == "selffer" and r["n"] >= 6 else 0.0  # noqa: E731
    result = precision_test(study(points=lambda r: 0.0, best_k=lowered), FLOAT32)
    assert result["overall"]["within"]
    assert all(t["within"] for t in result["treatments"].values())
    assert not result["passed"]
    changed = result["findings_changed"]
    assert list(changed) == [2] and changed[2]["float32"] == "reproduced"
    assert result["why"] == [f"finding 2 reproduced -> {changed[2]['candidate']}"]


def test_a_network_missing_or_failed_in_one_study_fails_the_pairing():
    candidate = study(points=lambda r: 0.05)
    lost = candidate.pop(5)  # never recorded
    candidate[7] = {**candidate[7], "status": "failed", "reason": "loss is NaN"}
    redone = {**FLOAT32[9]}  # an older failed record of a redone run does not count
    result = precision_test(candidate, [{**redone, "status": "failed"}, *FLOAT32])
    assert result["unpaired"] == sorted([lost["run"], candidate[7]["run"]])
    assert result["overall"]["networks"] == 109 and result["overall"]["within"]
    assert not result["passed"] and result["why"][0].startswith("ok in one study only: ")


def test_a_treatment_of_one_network_has_no_interval_and_cannot_pass():
    def one_random(records):
        return [r for r in records if r["treatment"] != "random" or r["run"].endswith("n1/seed0")]

    result = precision_test(one_random(study(points=lambda r: 0.05)), one_random(FLOAT32))
    random = result["treatments"]["random"]
    assert random["ci"] is None and not random["within"] and random["why"] == "one network"
    assert not result["passed"]


def benchmark_results(candidate):
    """Rows 7, 7b and 8 of a benchmark run whose row 7b trained `candidate`'s records."""

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

    float32, bfloat16 = row(800.0, "float32", FLOAT32), row(680.0, "mixed_bfloat16", candidate)
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
    results = benchmark_results(study(points=lambda r: -0.6))
    lines = []
    report.print_table(results, lines.append)
    row_7b = next(line for line in lines if line.startswith("7b "))
    assert "1.18x as fast as row 7" in row_7b
    assert "precision test: mean paired difference -0.6" in row_7b and ": failed" in row_7b
    assert "90% CI [-0.6" in row_7b
    assert any(line.startswith("8 ") and "1.07x as fast as by hand" in line for line in lines)
    assert "  base: mean -0.6" in "\n".join(lines)
    assert "  findings that changed status: none" in lines
    assert any(line.startswith("  verdict: not at parity: all networks: 90% CI") for line in lines)
    (target,) = [line for line in lines if line.startswith("target: row 7b")]
    assert target.endswith("(NOT met)")
    text = "\n".join(report.mixed_precision_section(results))
    assert "Verdict: not at parity (all networks: 90% CI" in text
    assert "this run agrees." in text

    passing = benchmark_results(study(points=lambda r: 0.05))
    (target,) = [t for t in passing["targets"] if t["target"].startswith("row 7b")]
    assert target["met"] and target["value"] < 0.5
    text = "\n".join(report.mixed_precision_section(passing))
    assert "Verdict: at parity" in text and "**disagrees**" in text
