"""--design=findings and the compute-matched base: which networks a unit trains, the layers
every finding reads, the control it is measured against, and the report that leads with them."""

import collections
import re

import numpy as np

from helpers.records import run_record
from helpers.studies import tiny_study
from kerastransfer import config, designs, treatments
from kerastransfer.analysis import analysis_json, findings
from kerastransfer.reporting import report
from kerastransfer.study.plan import plan

EVERY = (*treatments.PAPER_NAMES, treatments.LONG_BASE)


def _experiment(**flags):
    return config.Experiment(workdir="/tmp/unused").replace(
        layers=(1, 2, 3, 4, 5, 6, 7), treatments=EVERY, seeds=(0, 1), directions="both", **flags
    )


def test_findings_design_gives_each_unit_the_cells_its_findings_read_and_two_units_every_cell():
    runs = plan(_experiment(design="findings"), ["random0", "dissimilar"])
    cells = collections.defaultdict(set)
    for spec in runs:
        cells[(spec.split, spec.target, spec.seed)].add((spec.treatment, spec.n))
    assert len(cells) == 8  # 2 splits x 2 target halves x 2 seeds: every base network
    grid = {(name, n) for name in treatments.PAPER_NAMES for n in range(1, 8)}
    # Both target halves of the first split's first seed train every cell (the figures' lines).
    for unit in (("random0", "B", 0), ("random0", "A", 0)):
        assert cells[unit] == grid | {("base", 0), (treatments.LONG_BASE, 0)}, unit
    random_unit = {
        ("base", 0),
        ("selffer", 4),
        ("selffer", 7),
        ("selffer_ft", 4),
        ("transfer", 7),
        ("transfer_ft", 4),
        (treatments.LONG_BASE, 0),
    }
    for unit in (("random0", "A", 1), ("random0", "B", 1)):
        assert cells[unit] == random_unit, unit
    for target in ("A", "B"):
        for seed in (0, 1):
            assert cells[("dissimilar", target, seed)] == {
                ("base", 0),
                ("transfer", 4),
                ("transfer", 7),
                ("random", 4),
            }
    assert len(runs) == len({spec.run for spec in runs}) == 104
    # Bases first, then the compute-matched bases, which copy their own half's base.
    kinds = [spec.treatment for spec in runs]
    assert kinds[:8] == ["base"] * 8 and kinds[8:12] == [treatments.LONG_BASE] * 4
    long_base = runs[8]
    assert long_base.run == "random0/base_long/B/seed0" and long_base.label == "baseB-long"
    assert long_base.base_run == "random0/base/B/seed0"


def test_the_grid_design_trains_every_cell_and_findings_cells_follow_the_layers():
    runs = plan(_experiment(design="grid"), ["random0"])
    assert len(runs) == 4 + 4 + 4 * 7 * 5  # bases, compute-matched bases, the grid

    def layers(cells, treatment):
        return {n for name, n in cells if name == treatment}

    cells = designs.findings_cells([3, 5, 7])
    assert layers(cells["random"], "selffer") == {5, 7}
    assert layers(cells["distant"], "transfer") == {5, 7}
    assert layers(designs.findings_cells([1, 2])["random"], "selffer") == {2}  # no n in 3..7


def _unit_records(split, target, seed, base, extra):
    """A base network at accuracy `base` and its runs, {(treatment, n): accuracy}."""
    records = [run_record(split, "base", target, 0, seed, base)]
    records += [
        run_record(split, name, target, n, seed, accuracy) for (name, n), accuracy in extra.items()
    ]
    return records


def _study(rng):
    """Four random0 units and four dissimilar ones: BnB equal to its base at n = 4 and 2
    points under it at n = 3 and 5 (one unit has those), the compute-matched base 2 points
    over its base, AnB+ 1 point over the base."""
    records = []
    for target in ("A", "B"):
        for seed in (0, 1):
            base = 0.80 + rng.normal(0, 0.02)
            noise = {key: rng.normal(0, 0.001) for key in range(8)}
            cells = {
                ("selffer", 4): base + noise[0],
                ("selffer", 7): base + noise[1],
                ("transfer", 7): base - 0.08 + noise[2],
                ("selffer_ft", 4): base + noise[3],
                ("transfer_ft", 4): base + 0.01 + noise[4],
                (treatments.LONG_BASE, 0): base + 0.02 + noise[5],
            }
            if (target, seed) == ("B", 0):
                cells |= {("selffer", 3): base - 0.02, ("selffer", 5): base - 0.02}
            records += _unit_records("random0", target, seed, base, cells)
            records += _unit_records(
                "dissimilar",
                target,
                seed,
                base,
                {
                    ("transfer", 7): base - 0.25 + noise[6],
                    ("transfer", 4): base - 0.05 + noise[7],
                    ("random", 4): base - 0.3 + noise[6],
                },
            )
    return records


def test_each_unit_averages_its_own_layers_and_findings_1_and_3_face_the_long_base():
    records = _study(np.random.default_rng(0))
    checked = {f["finding"]: f for f in findings.check(records)}
    assert findings.base_convergence(records)["improving"]  # the long base gained 2 points
    # Still improving: the compute-matched base decides the dip and the boost.
    dip = checked[1]
    assert dip["comparison"] == findings.LONG_BASE_COMPARISON and "improving" in dip["basis"]
    assert "compute-matched base at n=3..5," in dip["measure"] and dip["units"] == 4
    # The unit with n = 3, 4, 5 averages its three (-4/3 points), the others have n = 4 (0);
    # each is 2 points under its compute-matched base.
    assert abs(dip["effect"] + 7 / 3) < 0.1 and dip["parts"][0]["status"] == "reproduced"
    assert dip["parts"][1]["status"] == "not reproduced"  # BnB+ = BnB: negligible
    assert dip["status"] == "not reproduced"
    paper = dip["beside"]  # the plain base, as the paper measures it
    assert paper["comparison"] == findings.OWN_BASE and "at n=3..5," in paper["measure"]
    assert abs(paper["effect"] + 1 / 3) < 0.1 and paper["status"] == "inconclusive"
    assert paper["units"] == 4 and paper["networks"] == 6
    boost = checked[3]
    assert abs(boost["effect"] + 1.0) < 0.2 and boost["status"] == "not reproduced"
    assert abs(boost["beside"]["effect"] - 1.0) < 0.2  # over the plain base: extra training
    assert boost["beside"]["status"] == "reproduced"
    assert "n=7" in checked[4]["measure"] and checked[4]["status"] == "reproduced"
    assert checked[5]["status"] == "reproduced" and "at n=4" in checked[5]["measure"]
    assert checked[2]["beside"] is None  # only findings 1 and 3 are measured against it
    assert checked[2]["basis"] is None
    # Bases that had stopped improving: the plain base decides, the control stands beside.
    for r in records:
        if r["treatment"] == treatments.LONG_BASE:
            base = next(
                b["best_k"]
                for b in records
                if b["treatment"] == "base"
                and (b["split"], b["target"], b["seed"]) == (r["split"], r["target"], r["seed"])
            )
            r["best_k"] = base + (0.001 if r["target"] == "A" else -0.001)
    assert not findings.base_convergence(records)["improving"]
    dip = findings.check(records)[0]
    assert dip["comparison"] == findings.OWN_BASE and dip["basis"] is None
    assert dip["parts"][0]["status"] == "inconclusive"
    assert dip["beside"]["comparison"] == findings.LONG_BASE_COMPARISON


def test_the_report_opens_with_its_findings_and_warns_when_bases_were_still_improving():
    records = _study(np.random.default_rng(1))
    analysis = analysis_json.analyze(records, config={"experiment": {"seeds": [0, 1]}})
    convergence = analysis["base_convergence"]
    assert convergence["improving"] and convergence["long_base"]["units"] == 4
    text = report.render_report(analysis)
    order = [
        text.index(heading)
        for heading in (
            "## What this study found",
            "## Findings check",
            "## Configuration",
            "## How to reproduce",
        )
    ]
    assert order == sorted(order)
    opening = text[order[0] : order[1]]
    assert opening.count("- Finding ") == 5
    boost = re.search(r"- Finding 3, generalization boost: (.*)", opening).group(1)
    assert boost.startswith("**not reproduced** (-0.97 points")
    assert (
        "against the compute-matched base of the same half, because the bases were still "
        "improving" in boost
    )
    assert (
        "; against the base network of the same split, target half and seed, as the paper "
        "measures it: **reproduced** (+1.01 points" in boost
    )
    assert "**Warning: the base networks had not stopped improving**" in opening
    gained = float(re.search(r"they gained ([+-][0-9.]+) points", opening).group(1))
    assert abs(gained - 2.0) < 0.2
    # Without compute-matched bases or late gains, no warning.
    plain = [r for r in records if r["treatment"] != treatments.LONG_BASE]
    assert not analysis_json.analyze(plain)["base_convergence"]["improving"]
    assert "Warning" not in report.render_report(analysis_json.analyze(plain))
    # A validation curve still climbing at its end is a warning too (k = 2: 0.80 vs 0.74).
    for r in plain:
        if r["treatment"] == "base":
            r |= {"k": 2, "val_history": [[25, 0.70], [50, 0.78], [75, 0.80], [100, 0.80]]}
    rising = analysis_json.analyze(plain)["base_convergence"]
    assert rising["improving"] and rising["long_base"] is None
    assert abs(rising["late_gain"]["mean"] - 6.0) < 1e-9 and rising["late_gain"]["ci"] is None
    assert "last validation accuracies were +6.00 points" in report.render_report(
        analysis_json.analyze(plain)
    )


def test_the_compute_matched_base_trains_on_from_its_own_base(tmp_path):
    study = tiny_study(tmp_path, layers=(7,), treatments=(treatments.LONG_BASE,))
    assert [spec.treatment for spec in study.runs] == ["base", "base", treatments.LONG_BASE]
    base_spec, long_spec = study.runs[1], study.runs[2]
    base_record = study.train_run(base_spec, None)
    start = study.network(long_spec, base_record, base_record["num_classes"])
    trained = study.trained_network(base_record)
    for mine, theirs in zip(start.weights, trained.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    record = study.train_run(long_spec, base_record)
    assert record["status"] == "ok" and record["steps"] == base_record["steps"]
    assert record["n"] == 0 and record["run"] == "random0/base_long/B/seed0"
