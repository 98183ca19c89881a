"""--deterministic: the (reduced) smoke study run twice gives identical metrics and weights."""

import concurrent.futures
import json
import os

import pytest

from helpers.cli import run_cli
from helpers.records import records
from helpers.reliability import REDUCED
from kerastransfer import config

pytestmark = pytest.mark.e2e

DETERMINISTIC = (*REDUCED, "--treatments=transfer_ft", "--deterministic")
METRICS = ("val_history", "best_k", "final_val", "test_accuracy", "weights_sha256")


def test_deterministic_study_twice_gives_identical_metrics(tmp_path):
    workdirs = [str(tmp_path / name) for name in ("first", "second")]
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda w: run_cli(*DETERMINISTIC, f"--workdir={w}"), workdirs))
    for done in runs:
        assert done.returncode == 0, done.stderr[-3000:]
    first, second = (records(w) for w in workdirs)
    assert (
        [r["run"] for r in first]
        == [r["run"] for r in second]
        == ["random0/base/A/seed0", "random0/base/B/seed0", "random0/transfer_ft/n5/seed0"]
    )
    for a, b in zip(first, second):
        assert a["status"] == b["status"] == "ok"
        assert {m: a[m] for m in METRICS} == {m: b[m] for m in METRICS}, a["run"]
    with open(os.path.join(workdirs[0], "config.json")) as f:
        assert config.Experiment.from_json(json.load(f)["experiment"]).grid.deterministic is True
