"""The main job end to end: the smoke study through the real command line."""

import glob
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
import tensorflow as tf

from helpers.cli import REPO, SMOKE, run_cli
from helpers.records import records as records_of
from helpers.reliability import snapshot

pytestmark = pytest.mark.e2e

SMOKE_LAYERS = (1, 5, 7)
TREATMENTS = ("selffer", "selffer_ft", "transfer", "transfer_ft", "random")


def test_smoke_covers_the_plan_once_with_status_ok(smoke_workdir):
    workdir, done = smoke_workdir.workdir, smoke_workdir.done
    records = records_of(workdir)
    expected = {("base", 0, "A"), ("base", 0, "B")} | {
        (t, n, "B") for t in TREATMENTS for n in SMOKE_LAYERS
    }
    keys = [(r["treatment"], r["n"], r["target"]) for r in records]
    assert sorted(keys) == sorted(expected)
    assert all(r["status"] == "ok" and r["split"] == "random0" for r in records)
    for record in records:
        assert os.path.getsize(os.path.join(workdir, record["weights"])) == record["weights_bytes"]
        assert len(record["val_history"]) >= 2 and 0 <= record["test_accuracy"] <= 1
        top = sorted((acc for _, acc in record["val_history"]), reverse=True)[: record["k"]]
        assert record["best_k"] == pytest.approx(sum(top) / len(top))
        assert record["final_val"] == record["val_history"][-1][1]
    frozen = [r for r in records if r["treatment"] in ("selffer", "transfer", "random")]
    assert all(r["cached_prefix"] for r in frozen)
    assert "[17/17] done" in done.stdout and "AnB+" in done.stdout


def test_smoke_writes_config_split_analysis_report_and_export(smoke_workdir):
    workdir = smoke_workdir.workdir
    with open(os.path.join(workdir, "config.json")) as f:
        config = json.load(f)
    assert config["experiment"]["data"]["splits"] == ["random:0"]
    with open(os.path.join(workdir, "splits", "random0", "split.json")) as f:
        split = json.load(f)
    assert split["A"]["classes"] == [1, 2, 4, 8, 9]
    with open(os.path.join(workdir, "analysis.json")) as f:
        analysis = json.load(f)
    assert set(analysis["table1"]) == {"1-7", "3-7", "5-7"}
    report = open(os.path.join(workdir, "report.md")).read()
    assert "nan" not in report.lower()
    for figure in ("transfer.png", "dissimilar.png"):
        assert os.path.getsize(os.path.join(workdir, "figures", figure)) > 10_000
    assert glob.glob(os.path.join(workdir, "export", "kerastransfer", "1", "saved_model.pb"))


def test_tensorboard_has_scalars_and_an_hparams_session(smoke_workdir):
    workdir = smoke_workdir.workdir
    run_dir = os.path.join(workdir, "tensorboard", "random0", "transfer_ft", "n5", "seed0")
    tags = set()
    for path in glob.glob(os.path.join(run_dir, "**", "events.out.tfevents.*"), recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"} <= tags
    assert "_hparams_/session_start_info" in tags and "hparams/test_accuracy" in tags


def test_rerun_finds_everything_done_within_seconds(smoke_copy):
    workdir = smoke_copy
    start = time.perf_counter()
    again = run_cli(f"--flagfile={SMOKE}", f"--workdir={workdir}")
    seconds = time.perf_counter() - start
    assert again.returncode == 0, again.stderr[-2000:]
    assert "all 17 runs already done" in again.stdout
    assert "nothing new" in again.stdout
    assert len(records_of(workdir)) == 17
    assert seconds < 60, seconds


def test_changed_config_is_refused_naming_the_flag(smoke_copy):
    workdir = smoke_copy
    before = snapshot(workdir)
    done = run_cli(f"--flagfile={SMOKE}", f"--workdir={workdir}", "--learning_rate=0.5")
    assert done.returncode == 2
    assert "--learning_rate 0.05 -> 0.5" in done.stderr and "--overwrite" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert snapshot(workdir) == before  # no file changed, results.jsonl and .lock included


def test_a_real_step_under_mirrored_strategy_on_two_cpus(tmp_path):
    """The runner trains under MirroredStrategy with two logical CPU devices."""
    script = textwrap.dedent(f"""
        import sys, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from absl import app
        from kerastransfer import run
        sys.argv = ["kt", "--flagfile={SMOKE}", "--workdir={tmp_path}", "--mode=train",
                    "--strategy=mirrored", "--layers=5", "--treatments=transfer_ft"]
        app.run(run.main, flags_parser=run.parse_flags)
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    records = records_of(str(tmp_path))
    assert [r["status"] for r in records] == ["ok"] * 3
    assert {(r["strategy"], r["replicas"]) for r in records} == {("MirroredStrategy", 2)}
