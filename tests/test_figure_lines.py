"""Every line of the figures joins points that rest on the same base networks
(analysis/figure_lines.py): on the cells the default flagfile plans, on the paper's own
networks, and in what plots.py draws."""

import copy
import os

import numpy as np
import pytest

from helpers.cli import REPO
from helpers.records import run_record
from kerastransfer import config, treatments
from kerastransfer import flags as kt_flags
from kerastransfer.analysis import load_paper_csv, normalize_records
from kerastransfer.analysis.analysis_json import analyze
from kerastransfer.analysis.baselines import Baselines, unit_label, unit_of
from kerastransfer.analysis.figure_lines import TRANSFER_SERIES, figure_lines
from kerastransfer.data.splits import make_split
from kerastransfer.designs import split_group
from kerastransfer.reporting import plots
from kerastransfer.study.plan import plan


def _default_records():
    """A record for every network the default flagfile plans, accuracies drawn at random."""
    values = copy.deepcopy(kt_flags.FLAGS)
    values(["kt", f"--flagfile={os.path.join(REPO, 'configs', 'fashion_mnist.flags')}"])
    experiment = config.from_flags(values)
    classes = [str(label) for label in range(10)]
    names = [make_split(spec, classes, "fashion_mnist").name for spec in experiment.data.splits]
    rng = np.random.default_rng(0)
    return normalize_records(
        [
            run_record(s.split, s.treatment, s.target, s.n, s.seed, float(rng.uniform(0.7, 0.95)))
            for s in plan(experiment, names)
        ]
    )


@pytest.fixture(scope="module")
def default_records():
    return _default_records()


@pytest.fixture(scope="module")
def paper_records():
    return normalize_records(load_paper_csv())


def _series_records(records, entry):
    """The ok records a figure entry's series draws from, by the series' own selection."""
    chosen = []
    for r in records:
        if r.status != "ok":
            continue
        if entry["figure"] == "transfer":
            if r.treatment == entry["series"] and split_group(r.split) == "random":
                chosen.append(r)
        else:
            name, group = {
                "random_splits": ("transfer", "random"),
                "dissimilar": ("transfer", "dissimilar"),
                "random_features": ("random", None),
            }[entry["series"]]
            if r.treatment == name and (group is None or split_group(r.split) == group):
                chosen.append(r)
    return chosen


def assert_lines_rest_on_their_units(records, lines):
    """The rule, checked against the records themselves: every point of an entry rests on
    the entry's units, its mean is the mean over exactly those units (each averaging its own
    networks), and a series' line and dots share no unit."""
    baselines = Baselines(records)
    for entry in lines:
        units = entry["units"]
        assert units and all(p["units"] == units for p in entry["points"]), entry
        if entry["kind"] == "base":
            continue
        runs = _series_records(records, entry)
        for point in entry["points"]:
            by_unit = {}
            for r in runs:
                if unit_label(unit_of(r)) in units and r.n == point["n"]:
                    value = r.best_k
                    if entry["panel"] == "relative":
                        value = 100.0 * (value - baselines.lookup(r)[0])
                    by_unit.setdefault(unit_label(unit_of(r)), []).append(value)
            if point["n"] == 0:
                assert entry["kind"] == "line" and entry["figure"] == "dissimilar"
                expected = [0.0] * len(units)
                if entry["panel"] != "relative":
                    owner = {unit_label(unit_of(r)): r for r in runs}
                    expected = [baselines.lookup(owner[u])[0] for u in units]
            else:
                assert sorted(by_unit) == sorted(units), (entry["series"], point["n"])
                expected = [np.mean(by_unit[u]) for u in units]
            assert point["mean"] == pytest.approx(np.mean(expected), abs=1e-12)
    drawn = {(e["figure"], e["panel"], e["series"]) for e in lines if e["kind"] != "base"}
    for figure, panel, series in drawn:
        entries = [
            e
            for e in lines
            if (e["figure"], e["panel"], e["series"]) == (figure, panel, series)
            and e["kind"] != "base"
        ]
        assert [e["kind"] for e in entries].count("line") == 1, (figure, panel, series)
        seen = [u for e in entries for u in e["units"]]
        assert len(seen) == len(set(seen)), (figure, panel, series)


def test_default_flagfile_lines_rest_on_their_units_and_figure2_on_two(default_records):
    lines = figure_lines(default_records)
    assert_lines_rest_on_their_units(default_records, lines)
    figure2 = [e for e in lines if e["figure"] == "transfer" and e["kind"] == "line"]
    assert sorted(e["series"] for e in figure2) == sorted(TRANSFER_SERIES)
    for entry in figure2:
        assert entry["units"] == ["random0 B seed 0", "random0 A seed 0"], entry["series"]
        assert [p["n"] for p in entry["points"]] == list(range(1, 8))
    # The other base networks' cells are dots of their own: BnB at the findings' n.
    dots = {e["series"]: e for e in lines if e["figure"] == "transfer" and e["kind"] == "dots"}
    assert [p["n"] for p in dots["selffer"]["points"]] == [4, 7]
    assert dots["selffer"]["units"] == ["random0 B seed 1", "random0 A seed 1"]
    # The dashed base line is the two figure units' bases.
    (base,) = [e for e in lines if e["figure"] == "transfer" and e["kind"] == "base"]
    assert base["units"] == figure2[0]["units"] and sorted(base["belongs_to"]) == sorted(
        TRANSFER_SERIES
    )
    bases = [
        r.best_k
        for r in default_records
        if r.treatment == treatments.BASE
        and (r.split, r.target, r.seed) in {("random0", "B", 0), ("random0", "A", 0)}
    ]
    assert base["points"][0]["mean"] == pytest.approx(np.mean(bases), abs=1e-12)
    # Figure 3: random features join the figure units; the dissimilar split's are dots.
    random_line = next(
        e
        for e in lines
        if (e["figure"], e["panel"], e["series"], e["kind"])
        == ("dissimilar", "relative", "random_features", "line")
    )
    assert random_line["units"] == ["random0 B seed 0", "random0 A seed 0"]
    assert [p["n"] for p in random_line["points"]] == list(range(0, 8))


def test_paper_lines_are_redrawn_by_base_network(paper_records):
    lines = figure_lines(paper_records)
    assert_lines_rest_on_their_units(paper_records, lines)
    anb_plus = {
        e["kind"]: e for e in lines if e["figure"] == "transfer" and e["series"] == "transfer_ft"
    }
    # AnB+: split 0 at every n, split 1 at n = 2..4 only (the paper's CSV).
    assert anb_plus["line"]["units"] == ["random0 B"]
    assert [p["n"] for p in anb_plus["line"]["points"]] == list(range(1, 8))
    assert anb_plus["dots"]["units"] == ["random1 B"]
    assert [p["n"] for p in anb_plus["dots"]["points"]] == [2, 3, 4]
    bases = [e for e in lines if e["figure"] == "transfer" and e["kind"] == "base"]
    assert {tuple(b["belongs_to"]) for b in bases} == {
        ("selffer",),
        ("selffer_ft",),
        ("transfer",),
        ("transfer_ft",),
    }
    assert next(b for b in bases if b["belongs_to"] == ["transfer_ft"])["points"][0][
        "mean"
    ] == pytest.approx(0.6341)  # half0B, AnB+'s one base network


def test_the_figures_draw_the_lines_of_figure_lines(tmp_path, monkeypatch, paper_records):
    """What plots.py puts on Figure 2's bottom panel and Figure 3's relative panel is the
    figure_lines' points, line by line."""
    result = analyze(paper_records)
    drawn = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, directory, stem: drawn.append(fig) or [])
    plots.plot_figures(str(tmp_path), result, paper_records)
    transfer, dissimilar = drawn
    for axis, figure, panel in (
        (transfer.axes[1], "transfer", "accuracy"),
        (dissimilar.axes[2], "dissimilar", "relative"),
    ):
        plotted = sorted(
            (tuple(line.get_xdata()), tuple(np.round(line.get_ydata(), 9)))
            for line in axis.get_lines()
            if line.get_linestyle() == "-" and not line.get_label().startswith("_")
        )
        expected = sorted(
            (
                tuple(p["n"] for p in e["points"]),
                tuple(np.round([p["mean"] for p in e["points"]], 9)),
            )
            for e in result["figure_lines"]
            if (e["figure"], e["panel"], e["kind"]) == (figure, panel, "line")
        )
        assert plotted == expected, figure
