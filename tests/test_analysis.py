"""kerastransfer.analysis: statistics, loaders, linear CKA, and the paper's numbers recomputed
from its published networks (the shipped CSV)."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from kerastransfer import analysis, treatments
from kerastransfer.analysis import baselines, findings, intervals
from kerastransfer.analysis.records import PAPER_FULL_BASE_TOP1
from kerastransfer.analysis.similarity import (
    cka_heatmap,
    cka_matrix,
    cka_runs,
    gram,
    gram_cka,
    linear_cka,
)
from kerastransfer.errors import UsageError
from kerastransfer.workdir.results import read_results

# docs/paper.md, "Results to reproduce": mean top-1 per n of BnB, BnB+, AnB, AnB+, random splits.
PAPER_MEANS = {
    "selffer": (0.6267, 0.6235, 0.6211, 0.6048, 0.5935, 0.6188, 0.6232),
    "selffer_ft": (0.6177, 0.6215, 0.6313, 0.6287, 0.6301, 0.6276, 0.6266),
    "transfer": (0.6282, 0.6239, 0.6189, 0.5998, 0.5780, 0.5806, 0.5425),
    "transfer_ft": (0.6373, 0.6358, 0.6426, 0.6398, 0.6446, 0.6460, 0.6465),
}
PAPER_BASEB_MEAN, PAPER_BASEB_SD, PAPER_BASEB_COUNT = 0.6251, 0.005, 8
# "To 4 decimals": the paper rounds half-way means (e.g. .62355) either way.
FOUR_DECIMALS = 5e-5 + 1e-9


@pytest.fixture(scope="module")
def paper():
    return analysis.load_paper_csv()


@pytest.fixture(scope="module")
def paper_analysis(paper):
    return analysis.analyze(paper, source_label="paper")


# ----------------------------------------------------------------------------- statistics


def test_summarize_mean_sd_and_t_interval():
    stats = analysis.summarize([1.0, 2.0, 3.0])
    assert (stats["count"], stats["mean"], stats["sd"]) == (3, 2.0, 1.0)
    half = 4.3027 / np.sqrt(3)
    assert stats["ci"] == pytest.approx([2.0 - half, 2.0 + half], abs=1e-3)
    assert analysis.summarize([0.5]) == {
        "count": 1,
        "mean": 0.5,
        "sd": None,
        "ci": None,
        "why": "one network",
    }
    assert analysis.summarize([])["mean"] is None


def test_difference_is_welch():
    # Both variances 1, 3 networks each: se = sqrt(2/3), Welch df = 4, t(0.975, 4) = 2.7764.
    result = analysis.difference([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    half = 2.7764 * np.sqrt(2.0 / 3.0)
    assert result["effect"] == pytest.approx(-3.0)
    assert result["ci"] == pytest.approx([-3.0 - half, -3.0 + half], abs=1e-3)
    assert analysis.difference([1.0], [4.0, 5.0])["ci"] is None


def test_welch_takes_each_sides_variance_and_fractional_df():
    # Variances 1 (3 networks) and 20/3 (4): se = sqrt(1/3 + 5/3) = sqrt(2), Welch df =
    # 4 / (1/18 + 25/27) = 4.075; t(0.975, 4.075) = 2.7563, between the tables' 2.7764 (df 4)
    # and 2.5706 (df 5). Pooling the variances would give df 5 and se 1.60.
    result = analysis.difference([1.0, 2.0, 3.0], [4.0, 6.0, 8.0, 10.0])
    half = 2.7563 * np.sqrt(2.0)
    assert result["effect"] == pytest.approx(-5.0)
    assert result["ci"] == pytest.approx([-5.0 - half, -5.0 + half], abs=1e-3)


@pytest.mark.parametrize(
    "effect, ci, direction, status",
    [
        (-2.0, [-3.0, -1.0], -1, "reproduced"),
        (2.0, [1.0, 3.0], -1, "not reproduced"),
        (0.1, [0.05, 0.2], +1, "not reproduced"),  # negligible even though the CI excludes 0
        (1.0, [-0.5, 2.5], +1, "inconclusive"),
        (3.0, None, +1, "inconclusive"),  # a single base network: no CI
        (None, None, +1, "inconclusive"),
    ],
)
def test_decide(effect, ci, direction, status):
    assert findings.decide(effect, ci, direction)[0] == status


# ----------------------------------------------------------------------------- loaders


def test_load_paper_csv_maps_the_schema(paper):
    assert len(paper) == 136
    assert {r.split for r in paper} == {
        "random0",
        "random1",
        "random2",
        "random3",
        "dissimilar",
        "full",
    }
    first = paper[0]
    assert first.run == "half0A"
    assert (first.treatment, first.target, first.n, first.source) == (
        "base",
        "A",
        0,
        None,
    )
    assert (first.best_k, first.final_val, first.k) == (0.6151, 0.6146, 10)
    assert all(r.test_accuracy is None and r.status == "ok" for r in paper)
    netbase = [r for r in paper if r.run == "netbase"]
    assert netbase[0].best_k == PAPER_FULL_BASE_TOP1


def _write(tmp_path, lines):
    path = tmp_path / "results.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


GOOD = json.dumps(
    {
        "run": "random0/base/B/seed0",
        "treatment": "base",
        "split": "random0",
        "source": "",
        "target": "B",
        "n": 0,
        "seed": 0,
        "best_k": 0.8,
        "status": "ok",
    }
)


def test_read_results_names_the_malformed_line(tmp_path):
    path = _write(tmp_path, [GOOD, "", '{"run": "cut off'])
    with pytest.raises(UsageError, match=r"results\.jsonl:3: not valid JSON"):
        read_results(path)


def test_read_results_names_the_bad_field(tmp_path):
    bad = json.loads(GOOD) | {"treatment": "finetune"}
    path = _write(tmp_path, [GOOD, json.dumps(bad)])
    with pytest.raises(UsageError, match=r"results\.jsonl:2: treatment='finetune'"):
        read_results(path)
    missing = json.loads(GOOD) | {"best_k": None}
    with pytest.raises(UsageError, match=r":1: best_k=None is missing"):
        read_results(_write(tmp_path, [json.dumps(missing)]))


def test_read_results_ignores_a_torn_tail_and_keeps_a_redone_runs_last_record(tmp_path):
    failed = json.loads(GOOD) | {"best_k": None, "status": "failed", "reason": "diverged"}
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps(failed) + "\n" + GOOD + "\n" + '{"run": "torn')
    records = read_results(str(path))
    assert [(r.run, r.status) for r in records] == [("random0/base/B/seed0", "ok")]


def test_read_results_missing_file(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        read_results(str(tmp_path / "nope.jsonl"))


def test_failed_records_need_no_accuracy(tmp_path):
    failed = json.loads(GOOD) | {"run": "x", "best_k": None, "status": "failed", "reason": "OOM"}
    records = read_results(_write(tmp_path, [GOOD, json.dumps(failed)]))
    assert len(analysis.ok_records(records)) == 1


def test_analysis_imports_no_tensorflow_matplotlib_or_reporting():
    code = (
        "import sys, kerastransfer.analysis as a; a.analyze(a.load_paper_csv()); "
        "a.recommend([]); sys.exit(any(m.split('.')[0] in ('tensorflow', 'keras', "
        "'matplotlib') or m.startswith('kerastransfer.reporting') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# ----------------------------------------------------------------------------- the paper's numbers


def test_paper_cells_match_the_paper(paper_analysis):
    cells = paper_analysis["cells"]
    base = analysis.find_cell(cells, "base", 0)
    assert base["label"] == "baseB"
    assert base["best_k"]["count"] == PAPER_BASEB_COUNT
    assert abs(base["best_k"]["mean"] - PAPER_BASEB_MEAN) <= FOUR_DECIMALS
    assert base["best_k"]["sd"] == pytest.approx(PAPER_BASEB_SD, abs=5e-4)
    for treatment, means in PAPER_MEANS.items():
        for n, expected in enumerate(means, start=1):
            cell = analysis.find_cell(cells, treatment, n)
            assert abs(cell["best_k"]["mean"] - expected) <= FOUR_DECIMALS, (treatment, n)
            assert cell["label"] == treatments.get(treatment).paper_name
    assert analysis.find_cell(cells, "transfer", 7)["best_k"]["count"] == 8
    assert analysis.find_cell(cells, "selffer", 5)["best_k"]["count"] == 4
    assert analysis.find_cell(cells, "selffer_ft", 3)["best_k"]["count"] == 2


def test_paper_table1_the_papers_way(paper_analysis):
    """Pooled networks, the 8 bases of the halves the runs target (every half): the paper's
    numbers, without an interval (pooled networks are not independent replicates)."""
    table = paper_analysis["table1"]
    assert [round(table[r]["over_base"], 1) for r in ("1-7", "3-7", "5-7")] == [1.6, 1.8, 2.1]
    assert [round(table[r]["over_selffer_ft"], 1) for r in ("1-7", "3-7", "5-7")] == [1.4, 1.4, 1.7]
    assert table["1-7"]["counts"] == {"transfer_ft": 10, "base": 8, "selffer_ft": 10}
    assert "over_base_ci" not in table["1-7"]


def test_paper_matched_baselines_show_the_caveat(paper_analysis):
    """docs/paper.md: against their own half's base, AnB+ and BnB+ both gain about +1.0 point;
    10 networks each, from 2 base networks each (B halves of splits 0, 1 and A halves)."""
    by_range = paper_analysis["matched"]["by_range"]["1-7"]
    assert [(by_range[t]["networks"], by_range[t]["units"]) for t in ("AnB+", "BnB+")] == [
        (10, 2),
        (10, 2),
    ]
    assert round(by_range["AnB+"]["effect"], 1) == 1.0
    assert round(by_range["BnB+"]["effect"], 1) == 1.0
    versus = paper_analysis["matched"]["anb_plus_vs_bnb_plus"]["1-7"]
    # No AnB+ shares a split, half and n with a BnB+: the two sides' base networks, Welch.
    assert versus["matched"]["test"] == intervals.WELCH
    assert versus["matched"]["ci"][0] < 0 < versus["matched"]["ci"][1]
    assert round(versus["pooled"], 1) == 1.4
    assert paper_analysis["matched"]["unmatched_runs"] == []


def test_paper_relative_drop(paper_analysis):
    drop = paper_analysis["relative_drop"]
    assert drop["at_top"]["n"] == 7
    assert round(drop["at_top"]["random_splits"], 1) == -8.3
    assert round(drop["at_top"]["dissimilar"], 1) == -25.0
    # Random frozen features against the 1000-class network: .4917 - .5763 at n=1.
    assert drop["random_features"][0]["effect"] == pytest.approx(-8.46)
    assert [c["n"] for c in drop["random_features"]] == list(range(1, 8))


def test_paper_full_base_constant_stands_in_for_a_missing_row(paper):
    without = [r for r in paper if r.run != "netbase"]
    drop = analysis.relative_drop(without)
    assert drop["random_features"][0]["effect"] == pytest.approx(-8.46)


def test_paper_findings(paper_analysis):
    """Findings 1-4 hold over the paper's base networks; the random features (finding 5) all
    stand on the one 1000-class network, so they get no interval."""
    results = paper_analysis["findings"]
    assert [f["finding"] for f in results] == [1, 2, 3, 4, 5]
    for finding in results[:4]:
        assert finding["status"] == "reproduced", finding
        assert finding["ci"][0] <= finding["effect"] <= finding["ci"][1]
        assert finding["rule"]
    assert [(f["units"], f["reference_units"]) for f in results[:4]] == [
        (4, None),
        (4, None),
        (2, None),
        (2, 8),
    ]
    assert [p["status"] for p in results[0]["parts"]] == ["reproduced", "reproduced"]
    assert results[4]["status"] == "inconclusive" and results[4]["ci"] is None
    assert "random features: one base network (full)" in results[4]["why"]
    assert results[4]["effect"] < -30


def test_findings_fail_when_the_paper_is_contradicted(paper):
    """AnB+ set 1 point below its own base must flip finding 3, and only finding 3."""
    bases = baselines.Baselines(paper)
    contradicted = [
        dataclasses.replace(
            r,
            best_k=bases.lookup(r)[0] - 0.01 + 0.001 * (r.n % 3) + 0.0005 * (r.split == "random1"),
        )
        if r.treatment == "transfer_ft"
        else r
        for r in paper
    ]
    statuses = [f["status"] for f in findings.check(contradicted)]
    assert statuses == ["reproduced", "reproduced", "not reproduced", "reproduced", "inconclusive"]


def test_matched_baseline_prefers_the_same_seed():
    def run(treatment, seed, best_k, n=0):
        return {
            "treatment": treatment,
            "split": "random0",
            "target": "B",
            "n": n,
            "seed": seed,
            "best_k": best_k,
            "status": "ok",
        }

    records = analysis.normalize_records(
        [
            run("base", 0, 0.80),
            run("base", 1, 0.90),
            run("transfer", 0, 0.82, n=3),
            run("transfer", 2, 0.86, n=3),
        ]
    )
    matched, unmatched = baselines.matched_points(records)
    assert [m.points for m in matched] == pytest.approx([2.0, 1.0])  # seed 0; .85 for seed 2
    assert [m.unit for m in matched] == [
        ("random0", "B", 0),
        ("random0", "B", baselines.MEAN_OF_SEEDS),
    ]
    assert unmatched == []


def test_analysis_json_has_no_nan(paper_analysis):
    json.dumps(paper_analysis, allow_nan=False)


# ----------------------------------------------------------------------------- similarity


def test_linear_cka_properties():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 20))
    rotation, _ = np.linalg.qr(rng.normal(size=(20, 20)))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, 3.0 * x @ rotation + 7.0) == pytest.approx(1.0)
    # 5 of 20 isotropic features: sqrt(5 / 20) = 0.5 in expectation.
    assert linear_cka(x, x[:, :5]) == pytest.approx(0.5, abs=0.05)
    many = rng.normal(size=(5000, 10))
    assert linear_cka(many, rng.normal(size=(5000, 10))) < 0.02


def test_linear_cka_gram_and_feature_forms_agree():
    rng = np.random.default_rng(1)
    wide = rng.normal(size=(40, 6, 6, 8))  # conv-like, features outnumber examples
    mixed = wide.reshape(40, -1) @ rng.normal(size=(288, 16))
    tall_x, tall_y = wide.reshape(40, -1)[:, :4], mixed[:, :4]
    x, y = wide.reshape(40, -1), mixed
    centered_x, centered_y = x - x.mean(0), y - y.mean(0)
    expected = np.linalg.norm(centered_y.T @ centered_x) ** 2 / (
        np.linalg.norm(centered_x.T @ centered_x) * np.linalg.norm(centered_y.T @ centered_y)
    )
    assert linear_cka(wide, mixed) == pytest.approx(expected)
    assert gram_cka(gram(wide), gram(mixed)) == pytest.approx(expected)
    assert gram_cka(gram(tall_x), gram(tall_y)) == pytest.approx(linear_cka(tall_x, tall_y))
    assert 0.0 < linear_cka(tall_x, tall_y) < 1.0
    with pytest.raises(ValueError):
        linear_cka(x, y[:10])
    with pytest.raises(ValueError):
        gram_cka(gram(x), gram(y[:10]))


def test_cka_matrix_shape_and_diagonal():
    rng = np.random.default_rng(2)
    layers = [rng.normal(size=(100, d)) for d in (4, 8, 16)]
    matrix = cka_matrix(layers, layers[:2])
    assert matrix.shape == (3, 2)
    assert np.diag(matrix[:2]) == pytest.approx([1.0, 1.0])


def _cka_record(run, treatment, target, n, seed=0, status="ok"):
    source = "" if treatment == "base" else treatments.get(treatment).source_half(target)
    return {
        "run": run,
        "split": "random0",
        "treatment": treatment,
        "source": source,
        "target": target,
        "n": n,
        "seed": seed,
        "status": status,
        "best_k": 0.5 if status == "ok" else None,
    }


def test_cka_heatmap_compares_each_copied_run_with_its_source_base():
    rng = np.random.default_rng(3)
    records = [
        _cka_record("random0/transfer_ft/B/n1/seed0", "transfer_ft", "B", 1),
        _cka_record("random0/transfer/B/n2/seed0", "transfer", "B", 2),
        _cka_record("random0/selffer/B/n1/seed0", "selffer", "B", 1),
        _cka_record("random0/transfer/B/n1/seed1", "transfer", "B", 1, seed=1),
        _cka_record("random0/random/B/n1/seed0", "random", "B", 1),
        _cka_record("random0/transfer/B/n1/seed0", "transfer", "B", 1, status="failed"),
        _cka_record("random0/base/A/seed0", "base", "A", 0),
    ]
    assert cka_runs(records, "random0") is None  # base B has not finished
    records.append(_cka_record("random0/base/B/seed0", "base", "B", 0))
    runs, bases = cka_runs(records, "random0")
    # seed 0, finished, copied layers, in the table's order (selffer first), then by n
    assert [r.run for r in runs] == [
        "random0/selffer/B/n1/seed0",
        "random0/transfer/B/n2/seed0",
        "random0/transfer_ft/B/n1/seed0",
    ]
    assert {half: r.run for half, r in bases.items()} == {
        "A": "random0/base/A/seed0",
        "B": "random0/base/B/seed0",
    }
    layers = {"A": rng.normal(size=(50, 6)), "B": rng.normal(size=(50, 6))}
    rotation, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    activations = {
        "random0/base/A/seed0": [layers["A"], layers["A"]],
        "random0/base/B/seed0": [layers["B"], layers["B"]],
        # a copy of its source's layer 1 (rotated: CKA 1), constant at layer 2 (undefined)
        "random0/selffer/B/n1/seed0": [layers["B"] @ rotation, np.ones((50, 6))],
        "random0/transfer/B/n2/seed0": [layers["A"], layers["B"]],
        "random0/transfer_ft/B/n1/seed0": [2 * layers["A"], layers["A"]],
    }
    heatmap = cka_heatmap(runs, bases, lambda r: (["conv1", "fc6"], activations[r.run]))
    assert heatmap["rows"] == ["BnB n=1", "AnB n=2", "AnB+ n=1"]
    assert heatmap["layers"] == ["conv1", "fc6"]
    (selffer, transfer, transfer_ft) = heatmap["matrix"]
    assert selffer[0] == pytest.approx(1.0) and selffer[1] is None
    assert transfer[0] == pytest.approx(1.0)
    assert transfer[1] == pytest.approx(linear_cka(layers["B"], layers["A"]))
    assert transfer_ft == pytest.approx([1.0, 1.0])
