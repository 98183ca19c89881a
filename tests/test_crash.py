"""Crash safety: SIGKILL the (reduced) smoke study at three moments, restart it each time, and
check that nothing was lost, nothing was done twice, and an interrupted run resumed.

Kill points, read off the runner's stdout and the files it writes:
  1. during a base run: as soon as base A has written its first checkpoint;
  2. between runs: right after "[2/4] done" (printed once base B's record is appended);
  3. during a transfer run: as soon as AnB+ n=5 has written its first checkpoint.
"""

import collections
import glob
import hashlib
import os

import pytest

from helpers.records import records
from helpers.reliability import REDUCED, Runner
from kerastransfer import config, data, training
from kerastransfer.study.plan import plan
from kerastransfer.study.study import Study
from kerastransfer.training.loop import CHECKPOINT_METADATA
from kerastransfer.workdir.provenance import stored_experiment

pytestmark = pytest.mark.e2e

RUNS = "runs/random0"
BASE_A, BASE_B = "random0/base/A/seed0", "random0/base/B/seed0"
ANB, ANB_FT = "random0/transfer/n5/seed0", "random0/transfer_ft/n5/seed0"


def checkpoint_of(workdir, run_id):
    return os.path.join(workdir, "runs", run_id, "backup", CHECKPOINT_METADATA)


@pytest.fixture(scope="module")
def crashed_study(tmp_path_factory):
    """The reduced smoke study, killed three times and restarted until it finishes."""
    tmp = tmp_path_factory.mktemp("crash")
    workdir, stderr = str(tmp / "study"), str(tmp / "stderr.txt")

    def start():
        return Runner(*REDUCED, f"--workdir={workdir}", stderr_path=stderr)

    runner = start()  # 1. during base A, once it has a checkpoint
    runner.wait_until(lambda: os.path.exists(checkpoint_of(workdir, BASE_A)))
    runner.kill()
    assert not runner.printed("[1/4] done"), "base A finished before the kill"
    assert records(workdir) == []

    runner = start()  # 2. between runs: base B's record is in, AnB has not trained
    runner.wait_until(lambda: runner.printed("[2/4] done"))
    runner.kill()
    assert [r["run"] for r in records(workdir)] == [BASE_A, BASE_B]
    assert not os.path.exists(checkpoint_of(workdir, ANB))

    runner = start()  # 3. during AnB+ n=5, once it has a checkpoint
    runner.wait_until(lambda: os.path.exists(checkpoint_of(workdir, ANB_FT)))
    runner.kill()
    assert not runner.printed("[4/4] done"), "AnB+ finished before the kill"
    assert [r["run"] for r in records(workdir)] == [BASE_A, BASE_B, ANB]

    runner = start()
    assert runner.finish() == 0, runner.output()
    return workdir, runner


def test_crash_every_line_parses_and_every_planned_run_has_one_ok_record(crashed_study):
    workdir, _ = crashed_study
    with open(os.path.join(workdir, "results.jsonl")) as f:
        text = f.read()
    assert text.endswith("\n")
    lines = records(workdir)  # the package's reader: a line that is not JSON fails
    assert len(lines) == text.count("\n")  # ... and none was skipped
    experiment, _ = stored_experiment(config.Experiment(workdir=workdir))
    planned = [spec.run for spec in plan(experiment, ["random0"])]
    assert planned == [BASE_A, BASE_B, ANB, ANB_FT]
    assert collections.Counter(r["run"] for r in lines) == collections.Counter(planned)
    assert all(r["status"] == "ok" for r in lines)
    assert glob.glob(os.path.join(workdir, RUNS, "**", "backup"), recursive=True) == []


def test_crash_interrupted_runs_resumed_from_their_checkpoints(crashed_study):
    """Base A and AnB+ were killed mid-run: each continued from a checkpoint (step > 0),
    and its validation history still has every evaluation once, from step eval_every on."""
    workdir, _ = crashed_study
    by_run = {r["run"]: r for r in records(workdir)}
    assert by_run[BASE_A]["resumed_from_step"] > 0
    assert by_run[ANB_FT]["resumed_from_step"] > 0
    assert by_run[BASE_B]["resumed_from_step"] == by_run[ANB]["resumed_from_step"] == 0
    for record in by_run.values():
        steps = [step for step, _ in record["val_history"]]
        every = steps[0]
        assert steps == list(range(every, record["steps"] + 1, every)), record["run"]


def test_crash_every_weights_file_loads_and_reproduces_its_test_accuracy(crashed_study):
    workdir, _ = crashed_study
    experiment, _ = stored_experiment(config.Experiment(workdir=workdir))
    study = Study.load(experiment, log=lambda _: None)
    for record in records(workdir):
        path = os.path.join(workdir, record["weights"])
        with open(path, "rb") as f:
            content = f.read()
        assert len(content) == record["weights_bytes"]
        assert hashlib.sha256(content).hexdigest() == record["weights_sha256"]
        model = study.build_model(record["num_classes"])
        model.load_weights(path)
        half = study.halves.half(record["split"], record["target"])
        test = data.make_dataset(
            half.test_x,
            half.test_y,
            study.preprocessing,
            batch_size=data.EVAL_BATCH,
            training=False,
            cache=False,
        )
        assert training.Evaluator()(model, test)[0] == pytest.approx(
            record["test_accuracy"], abs=1e-9
        ), record["run"]
