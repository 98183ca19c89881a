"""The analysis's outputs end to end: analysis.json, the figures and report.md, from a
synthetic results.jsonl (several seeds, failed and skipped runs) and from the paper's CSV
alone through `python -m kerastransfer.analysis --paper`."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from helpers.cli import REPO
from helpers.records import run_record
from kerastransfer import analysis, reporting
from kerastransfer.analysis.__main__ import driver_argv
from kerastransfer.analysis.records import PAPER_CSV
from kerastransfer.reporting import plots, report
from kerastransfer.workdir.results import read_results

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
COMMAND = "python -m kerastransfer.run --flagfile=configs/synthetic.cfg"
CONFIG = {
    "dataset": "synthetic",
    "seeds": [0, 1, 2],
    "train": {"epochs": 3, "lr": 0.01},
    "note": None,
}
SEEDS = (0, 1, 2)

# Effects in accuracy units, shaped like the paper's: BnB dips at 3-5, AnB falls from 5 on,
# AnB+ gains 1.5 points, BnB+ 0.5, dissimilar transfer loses three times as much, random
# frozen features lose a lot from n = 2.
SHIFT = {
    "selffer": lambda n: -0.03 if n in (3, 4, 5) else 0.0,
    "selffer_ft": lambda n: 0.005,
    "transfer": lambda n: -0.012 * max(0, n - 4),
    "transfer_ft": lambda n: 0.015,
    "random": lambda n: -0.05 * n,
}


def _record(rng, split, treatment, target, n, seed, accuracy, status="ok"):
    ok = status == "ok"
    return run_record(
        split,
        treatment,
        target,
        n,
        seed,
        accuracy if ok else None,
        k=5,
        final_val=accuracy - 0.001 if ok else None,
        test_accuracy=accuracy - 0.004 if ok else None,
        val_history=[[100, accuracy - 0.05], [200, accuracy]] if ok else [],
        train_seconds=float(rng.uniform(10, 20)) if ok else None,
        images_per_second=float(rng.uniform(1500, 2500)) if ok else None,
        status=status,
        reason=None if ok else f"{status} on purpose",
    )


def synthetic_records():
    """Base A and B plus every treatment on B for 2 random splits and the dissimilar split,
    3 seeds, noise sd .003; one failed and one skipped run."""
    rng = np.random.default_rng(0)
    records = []
    for split, base, distance in (
        ("random0", 0.80, 1.0),
        ("random1", 0.81, 1.0),
        ("dissimilar", 0.78, 3.0),
    ):
        for seed in SEEDS:
            for target in ("A", "B"):
                records.append(
                    _record(rng, split, "base", target, 0, seed, base + rng.normal(0, 0.003))
                )
            treatments = SHIFT if split != "dissimilar" else ("transfer",)
            for treatment in treatments:
                for n in range(1, 8):
                    shift = SHIFT[treatment](n) * (distance if treatment == "transfer" else 1)
                    records.append(
                        _record(
                            rng, split, treatment, "B", n, seed, base + shift + rng.normal(0, 0.003)
                        )
                    )
    records.append(_record(rng, "random0", "transfer_ft", "B", 4, 3, None, status="failed"))
    records.append(_record(rng, "random1", "selffer", "B", 2, 3, None, status="skipped"))
    return records


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A workdir analyzed the way the analyze driver does it; returns (workdir, analysis
    dict)."""
    workdir = tmp_path_factory.mktemp("study")
    with open(workdir / "results.jsonl", "w") as f:
        for record in synthetic_records():
            f.write(json.dumps(record) + "\n")
    records = analysis.normalize_records(read_results(str(workdir / "results.jsonl")))
    reference = analysis.normalize_records(analysis.load_paper_csv(), "reference record")
    result = analysis.analyze(
        records,
        config=CONFIG,
        reference_records=reference,
        source_label="results.jsonl",
        command=COMMAND,
    )
    paths = reporting.write_analysis(str(workdir), result, records)
    assert paths[:2] == [str(workdir / "analysis.json"), str(workdir / "report.md")]
    with open(paths[0]) as f:
        return workdir, json.load(f)


def _assert_figure(path):
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".png"):
        assert data.startswith(PNG_MAGIC), path
    else:
        assert data.startswith(b"%PDF"), path
    assert len(data) > 10_000, path


def test_analysis_json_complete_and_without_nan(study):
    workdir, result = study
    text = (workdir / "analysis.json").read_text()
    stored = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in analysis.json"))
    assert stored == result
    assert set(stored["table1"]) == {"1-7", "3-7", "5-7"}
    for row in stored["table1"].values():
        assert row["over_base"] is not None and row["over_selffer_ft"] is not None
    # 2 random splits x 3 seeds x (2 bases + 5 treatments x 7 n) + 3 seeds x (2 bases + 7 AnB)
    assert stored["counts"] == {"ok": 2 * 3 * 37 + 3 * 9, "failed": 1, "skipped": 1}
    assert {"cells", "matched", "relative_drop", "findings", "figures"} <= set(stored)


def test_synthetic_effects_are_recovered(study):
    _, result = study
    # AnB+ was built 1.5 points above its base, BnB+ 0.5 points.
    anb_plus = result["matched"]["by_range"]["1-7"]["AnB+"]
    assert (anb_plus["networks"], anb_plus["units"]) == (2 * len(SEEDS) * 7, 2 * len(SEEDS))
    assert anb_plus["effect"] == pytest.approx(1.5, abs=0.2)
    versus = result["matched"]["anb_plus_vs_bnb_plus"]["1-7"]["matched"]
    assert versus["effect"] == pytest.approx(1.0, abs=0.2) and versus["test"].startswith("paired")
    assert result["relative_drop"]["at_top"]["random_splits"] == pytest.approx(-3.6, abs=0.3)
    assert result["relative_drop"]["at_top"]["dissimilar"] == pytest.approx(-10.8, abs=0.5)
    assert [f["status"] for f in result["findings"]] == ["reproduced"] * 5
    assert [(f["units"], f["reference_units"]) for f in result["findings"]] == [
        (6, None),
        (6, None),
        (6, None),
        (3, 6),
        (6, None),
    ]
    cell = analysis.find_cell(result["cells"], "transfer_ft", 4)
    assert cell["best_k"]["count"] == len(SEEDS) * 2  # the failed seed-3 run is left out
    # Every run targets B: baseB holds the B bases only, the A bases are sources.
    base = analysis.find_cell(result["cells"], "base", 0)
    assert (base["label"], base["best_k"]["count"]) == ("baseB", 2 * len(SEEDS))
    assert analysis.find_cell(result["cells"], "base", 0, target="A")["label"] == "baseA"
    assert cell["test_accuracy"]["mean"] == pytest.approx(cell["best_k"]["mean"] - 0.004)


def test_figures_are_valid_files(study):
    workdir, result = study
    assert sorted(result["figures"]) == [
        os.path.join("figures", name)
        for name in ("dissimilar.pdf", "dissimilar.png", "transfer.pdf", "transfer.png")
    ]
    for relative in result["figures"]:
        _assert_figure(str(workdir / relative))


def test_report_reads_its_numbers_from_the_analysis(study):
    workdir, result = study
    text = (workdir / "report.md").read_text()
    assert not re.search(r"\bnan\b", text, re.IGNORECASE)
    assert not re.search(r"\bNone\b", text)
    for run in result["not_ok"]:
        assert run["run"] in text and f"{run['status']} on purpose" in text
    assert COMMAND in text
    assert "](figures/transfer.png)" in text and "](figures/dissimilar.png)" in text
    assert f"{result['table1']['3-7']['over_base']:+.2f}" in text
    assert f"{result['reference']['table1']['3-7']['over_base']:+.2f}" in text  # paper: +1.80
    assert "`train.epochs` | `3`" in text and "`note` | `null`" in text
    for finding in result["findings"]:
        assert f"{finding['effect']:+.2f}" in text
        # Decided: the smallest effect it could have detected, from its own units and spread.
        assert f"could have detected ±{finding['power']['detectable']:.2f} points" in text
    assert "## Power: what would decide each finding" in text
    assert "Total training time" in text


def test_report_of_an_empty_study():
    empty = analysis.analyze([], source_label="nothing yet")
    text = report.render_report(empty)
    assert "No successful runs." in text and "not recorded" in text
    assert not re.search(r"\bnan\b|\bNone\b", text)


def _analysis_command(*args):
    return subprocess.run(
        [sys.executable, "-m", "kerastransfer.analysis", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )


@pytest.fixture(scope="module")
def paper_dir(tmp_path_factory):
    """`python -m kerastransfer.analysis --paper OUT_DIR` run once; returns OUT_DIR."""
    out = tmp_path_factory.mktemp("paper")
    done = _analysis_command("--paper", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def test_the_command_line_launches_the_analyze_driver():
    run = [sys.executable, "-m", "kerastransfer.run", "--mode=analyze"]
    assert driver_argv(["study"]) == run + ["--workdir=study"]
    assert driver_argv(["--paper", "out", "--no-reference"]) == run + [
        "--workdir=out",
        f"--results={PAPER_CSV}",
        "--reference=none",
    ]
    assert driver_argv(["study", "--reference=yosinski2014"])[-1] == "--reference=yosinski2014"


@pytest.mark.e2e
def test_paper_mode_draws_the_papers_own_figures(paper_dir):
    result = json.loads((paper_dir / "analysis.json").read_text())
    assert [f["status"] for f in result["findings"]] == ["reproduced"] * 4 + ["inconclusive"]
    assert result["reference"] is None
    for relative in result["figures"]:
        _assert_figure(str(paper_dir / relative))
    text = (paper_dir / "report.md").read_text()
    assert "No run configuration" in text
    assert f"--results={PAPER_CSV} --workdir={paper_dir}" in text


@pytest.mark.e2e
def test_paper_mode_shows_table1_the_papers_way_beside_the_matched_one(paper_dir):
    """The paper's networks give its Table 1 (1.6 / 1.8 / 2.1 and 1.4 / 1.4 / 1.7) computed the
    paper's way, and the same row shows the matched version over base networks."""
    result = json.loads((paper_dir / "analysis.json").read_text())
    text = (paper_dir / "report.md").read_text()
    assert "| layers | paper's way: AnB+ − baseB | paper's way: AnB+ − BnB+ |" in text
    expected = {"1-7": (1.6, 1.4), "3-7": (1.8, 1.4), "5-7": (2.1, 1.7)}
    for name, (over_base, over_selffer) in expected.items():
        row = result["table1"][name]
        assert (round(row["over_base"], 1), round(row["over_selffer_ft"], 1)) == (
            over_base,
            over_selffer,
        )
        boost = result["matched"]["by_range"][name]["AnB+"]
        versus = result["matched"]["anb_plus_vs_bnb_plus"][name]["matched"]
        line = next(line for line in text.splitlines() if line.startswith(f"| {name} | "))
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[1:3] == [f"{row['over_base']:+.2f}", f"{row['over_selffer_ft']:+.2f}"]
        assert cells[4] == f"{boost['effect']:+.2f}" and cells[6] == str(boost["units"])
        assert cells[7] == f"{versus['effect']:+.2f}"


@pytest.mark.e2e
def test_command_line_reports_a_missing_results_file(tmp_path):
    done = _analysis_command(str(tmp_path))
    assert done.returncode == 2
    assert "results.jsonl is missing" in done.stderr.strip().splitlines()[-1]


def test_plot_cka(tmp_path):
    path = plots.plot_cka(
        np.array([[1.0, 0.4], [0.3, 0.9], [0.1, 0.2]]),
        ["conv1", "conv2", "fc6"],
        ["baseA", "AnB+"],
        str(tmp_path / "cka.png"),
    )
    with open(path, "rb") as f:
        assert f.read(8) == PNG_MAGIC
    with pytest.raises(ValueError, match="does not match"):
        plots.plot_cka(np.eye(2), ["a"], ["b", "c"], str(tmp_path / "bad.png"))
