"""--directions: B->A networks are planned, trained and recorded like A->B ones, and a finished
study grows (both directions, another split) by training only its new runs."""

import os

import numpy as np
import pytest

from helpers.cli import REPO, SMOKE, run_cli
from helpers.records import by_run, records
from kerastransfer import config, surgery
from kerastransfer import flags as kt_flags
from kerastransfer.study.plan import plan
from kerastransfer.study.study import Study
from kerastransfer.workdir.provenance import stored_experiment

pytestmark = pytest.mark.e2e

SMOKE_LAYERS = (1, 5, 7)
TREATMENTS = ("selffer", "selffer_ft", "transfer", "transfer_ft", "random")


def test_both_directions_plan_every_treatment_for_each_target():
    experiment = config.Experiment(workdir="unused").replace(layers=(2,), directions="both")
    runs = {(spec.treatment, spec.target): spec for spec in plan(experiment, ["random0"])}
    assert runs[("transfer", "B")].run == "random0/transfer/n2/seed0"  # ids as before
    assert runs[("transfer", "B")].source == "A"
    assert runs[("transfer", "A")].run == "random0/transfer/A/n2/seed0"
    assert runs[("transfer", "A")].source == "B"
    assert runs[("transfer", "A")].base_run == "random0/base/B/seed0"
    assert runs[("selffer", "A")].base_run == "random0/base/A/seed0"
    assert runs[("random", "A")].base_run is None
    assert runs[("transfer_ft", "A")].label == "BnA+ n=2"


def test_a_finished_study_grows_by_its_new_runs_only(smoke_copy):
    before = by_run(smoke_copy)
    assert len(before) == 2 + len(SMOKE_LAYERS) * len(TREATMENTS)

    done = run_cli(f"--flagfile={SMOKE}", f"--workdir={smoke_copy}", "--directions=both")
    assert done.returncode == 0, done.stderr[-3000:]
    grown = records(smoke_copy)
    new = grown[len(before) :]
    assert len(new) == len(SMOKE_LAYERS) * len(TREATMENTS)  # only the B->A runs trained
    assert {r["target"] for r in new} == {"A"}
    assert {(r["treatment"], r["source"]) for r in new} == {
        ("selffer", "A"),
        ("selffer_ft", "A"),
        ("transfer", "B"),
        ("transfer_ft", "B"),
        ("random", ""),
    }
    assert all(by_run(smoke_copy)[run] == record for run, record in before.items())
    assert "export/kerastransfer/2" in done.stdout  # analysis and export ran again

    # A B->A frozen network starts from base B: its first n blocks are base B's.
    experiment, _ = stored_experiment(config.Experiment(workdir=smoke_copy))
    study = Study.load(experiment, log=lambda message: None)
    latest = by_run(smoke_copy)
    base_b = study.trained_network(latest["random0/base/B/seed0"])
    frozen = study.trained_network(latest["random0/transfer/A/n5/seed0"])
    for theirs, ours in zip(surgery.block_layers(base_b, 5), surgery.block_layers(frozen, 5)):
        for a, b in zip(theirs.get_weights(), ours.get_weights()):
            np.testing.assert_array_equal(a, b)
    fc6 = surgery.weight_layers(frozen)[5]
    assert not np.array_equal(fc6.get_weights()[0], base_b.get_layer(fc6.name).get_weights()[0])

    done = run_cli(
        f"--flagfile={SMOKE}",
        f"--workdir={smoke_copy}",
        "--directions=both",
        "--splits=random:0,random:1",
        "--layers=1",
        "--mode=train",  # the analysis and export of a grown study ran above
    )
    assert done.returncode == 0, done.stderr[-3000:]
    newer = records(smoke_copy)[len(grown) :]
    # random1: two bases and n=1 of every treatment in both directions; random0 had them all
    assert len(newer) == 2 + 2 * len(TREATMENTS)
    assert {r["split"] for r in newer} == {"random1"}

    done = run_cli(f"--flagfile={SMOKE}", f"--workdir={smoke_copy}", "--epochs=4")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--epochs" in lines[0] and "--overwrite" in lines[0]


def test_full_flagfile_plans_four_base_networks_on_each_side_of_every_finding():
    """configs/fashion_mnist_full.flags: every finding compares random-split networks (or the
    dissimilar split's) over 4 base networks, split x target half x seed, a side."""
    flagfile = os.path.join(REPO, "configs", "fashion_mnist_full.flags")
    kt_flags.FLAGS.unparse_flags()
    try:
        kt_flags.FLAGS(["test", f"--flagfile={flagfile}"])
        experiment = config.from_flags(kt_flags.FLAGS)
    finally:
        kt_flags.FLAGS.unparse_flags()  # other tests parse flags onto the defaults
    runs = plan(experiment, ["random0", "dissimilar"])
    assert len(runs) == 128
    for split in ("random0", "dissimilar"):
        for treatment in TREATMENTS:
            units = {
                (s.target, s.seed) for s in runs if (s.split, s.treatment) == (split, treatment)
            }
            assert len(units) == 4, (split, treatment, units)
