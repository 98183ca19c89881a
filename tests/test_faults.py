"""Training faults: a diverging learning rate fails runs plainly (continue or stop), and a
damaged weights file of a finished run is either trained again or named in an error."""

import os

import pytest

from helpers.cli import SMOKE, run_cli
from helpers.records import by_run, records
from helpers.reliability import REDUCED, own_lines, snapshot

pytestmark = pytest.mark.e2e

# Base A, base B, AnB n=5 (copies base A) and random n=5 (depends on no base).
DIVERGING = (*REDUCED, "--treatments=transfer,random", "--learning_rate=10000")
# The smoke study's grid (17 runs), training only: what `damaged` holds, trained again.
SMOKE_TRAIN = (f"--flagfile={SMOKE}", "--mode=train")
BASE_A, BASE_B = "random0/base/A/seed0", "random0/base/B/seed0"
ANB, RANDOM = "random0/transfer/n5/seed0", "random0/random/n5/seed0"


@pytest.fixture(scope="module")
def diverged(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("diverged") / "study")
    done = run_cli(*DIVERGING, f"--workdir={workdir}")
    return workdir, done


def test_fault_diverging_runs_fail_dependents_skip_and_the_grid_goes_on(diverged):
    workdir, done = diverged
    assert done.returncode == 0, done.stderr[-3000:]
    runs = by_run(workdir)
    assert [r["run"] for r in records(workdir)] == [BASE_A, BASE_B, ANB, RANDOM]
    for run in (BASE_A, BASE_B, RANDOM):  # random n=5 was still trained: it needs no base
        assert runs[run]["status"] == "failed"
        assert "loss became" in runs[run]["reason"] and "learning rate 10000" in runs[run]["reason"]
        assert f"start {run}" in done.stdout
    assert runs[ANB]["status"] == "skipped"
    assert runs[ANB]["reason"] == f"base {BASE_A} failed"
    assert f"start {ANB}" not in done.stdout
    assert not os.path.exists(os.path.join(workdir, "runs", BASE_A, "backup"))


def test_fault_final_table_shows_failures_plainly(diverged):
    _, done = diverged
    table = done.stdout[done.stdout.index("mean test accuracy") :]
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines()[2:6]}
    assert rows == {
        "baseA": ["FAILED"],
        "baseB": ["FAILED"],
        "AnB": ["SKIPPED"],
        "random": ["FAILED"],
    }
    assert "4 of 4 runs did not finish" in table
    assert f"FAILED   {BASE_A}: loss became" in table
    assert f"SKIPPED  {ANB}: base {BASE_A} failed" in table


def test_fault_rerun_keeps_one_record_per_run(diverged):
    """Failed runs and the runs skipped because of them count as done: no duplicates."""
    workdir, _ = diverged
    again = run_cli(*DIVERGING, f"--workdir={workdir}")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "all 4 runs already done" in again.stdout
    assert len(records(workdir)) == 4


def test_fault_on_failure_stop_ends_the_study_at_the_first_failure(tmp_path):
    workdir = str(tmp_path / "study")
    done = run_cli(*DIVERGING, f"--workdir={workdir}", "--on_failure=stop")
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    # Keras may warn on stderr while training; the study's own verdict is the last line.
    message = own_lines(done.stderr)[-1]
    assert message.startswith(f"stopped: run {BASE_A} failed (loss became"), done.stderr[-3000:]
    assert "3 runs untrained" in message and "--on_failure=continue" in message
    assert [(r["run"], r["status"]) for r in records(workdir)] == [(BASE_A, "failed")]
    assert "start random0/base/B" not in done.stdout
    assert "FAILED" in done.stdout  # the table still prints


@pytest.fixture
def damaged(smoke_copy):
    """A copy of the finished smoke study whose base A weights are cut short and base B's
    have one byte flipped (same size, other sha256)."""
    workdir = smoke_copy
    runs = by_run(workdir)
    path_a = os.path.join(workdir, runs[BASE_A]["weights"])
    path_b = os.path.join(workdir, runs[BASE_B]["weights"])
    with open(path_a, "r+b") as f:
        f.truncate(runs[BASE_A]["weights_bytes"] // 2)
    with open(path_b, "r+b") as f:
        f.seek(runs[BASE_B]["weights_bytes"] - 100)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    return workdir, path_a, path_b


def test_fault_corrupt_weights_error_names_the_file(damaged):
    workdir, path_a, path_b = damaged
    kept = {
        name: content
        for name, content in snapshot(workdir).items()
        if name == "results.jsonl" or name.endswith(".weights.h5")
    }
    done = run_cli(*SMOKE_TRAIN, f"--workdir={workdir}", "--on_corrupt_weights=error")
    assert done.returncode == 2, done.stderr[-3000:]
    lines = own_lines(done.stderr)
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert f"weights file {path_a} of finished run {BASE_A} is truncated" in lines[0]
    assert "--on_corrupt_weights=redo" in lines[0]
    after = snapshot(workdir)
    assert {name: after[name] for name in kept} == kept


def test_fault_corrupt_weights_are_trained_again_by_default(damaged):
    workdir, path_a, path_b = damaged
    done = run_cli(*SMOKE_TRAIN, f"--workdir={workdir}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"weights file {path_a} of {BASE_A} is truncated" in done.stdout
    assert f"weights file {path_b} of {BASE_B} is corrupt (its sha256 differs" in done.stdout
    assert "2 of 17 runs to train" in done.stdout
    lines = records(workdir)
    assert [r["run"] for r in lines[17:]] == [BASE_A, BASE_B]  # appended; the newest wins
    for record in lines[17:]:
        path = os.path.join(workdir, record["weights"])
        assert record["status"] == "ok" and os.path.getsize(path) == record["weights_bytes"]
