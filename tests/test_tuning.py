"""--mode=tune end to end: local search killed and resumed, the grid taking tuned.flags, and
keras-tuner's distributed mode with a chief and two workers on 127.0.0.1."""

import glob
import json
import os
import re
import subprocess
import time

import pytest
import tensorflow as tf

from helpers.cli import REPO, SMOKE, cli_command, run_cli
from kerastransfer import config

pytestmark = pytest.mark.e2e

TUNE = (f"--flagfile={SMOKE}", "--mode=tune", "--max_trials=2")
KT_ENV = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")


def local_env(**extra):
    """The environment without keras-tuner's distributed variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in KT_ENV}
    return {**env, **extra}


def error_lines(stderr):
    """The runner's own message lines (TensorFlow's C++ start-up logging aside)."""
    assert "Traceback" not in stderr, stderr[-3000:]
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def trial_records(workdir, stage):
    """Our record of each finished trial of a search (status ok or failed), by trial id."""
    records = {}
    for path in glob.glob(os.path.join(workdir, "tuning", stage, "trial_*", "kerastransfer.json")):
        with open(path) as f:
            record = json.load(f)
        records[record["trial_id"]] = record
    return records


FINISHED = ("COMPLETED", "FAILED")  # FAILED: the loss diverged, a legitimate result


def trial_statuses(workdir, stage):
    """keras-tuner's status of each trial of a search, by trial id."""
    statuses = {}
    for path in glob.glob(os.path.join(workdir, "tuning", stage, "trial_*", "trial.json")):
        with open(path) as f:
            trial = json.load(f)
        statuses[trial["trial_id"]] = trial["status"]
    return statuses


def read_flags(path):
    """(flag name -> value, comment lines) of a flagfile."""
    values, comments = {}, []
    for line in open(path).read().splitlines():
        if line.startswith("#"):
            comments.append(line)
        elif line.strip():
            name, value = line[2:].split("=", 1)
            assert name not in values, f"{name} set twice in {path}"
            values[name] = value
    return values, comments


def check_best_recorded_once(workdir):
    """tuned.flags and summary.json name the best trial of each search, once per value."""
    values, comments = read_flags(os.path.join(workdir, "tuned.flags"))
    with open(os.path.join(workdir, "tuning", "summary.json")) as f:
        summary = json.load(f)
    for stage, names in (
        ("base", ("learning_rate", "weight_decay", "batch_size", "epochs")),
        ("transfer_ft", ("fine_tune_lr_scale",)),
    ):
        records = [r for r in trial_records(workdir, stage).values() if r["status"] == "ok"]
        best = max(records, key=lambda r: r["best_k"])
        assert summary[stage]["trial_id"] == best["trial_id"]
        for name in names:
            assert float(values[name]) == best["values"][name]
            comment = [c for c in comments if c.startswith(f"# {name}:")]
            assert len(comment) == 1, comments
            assert (
                f"trial {best['trial_id']} (tuning/{stage}/trial_{best['trial_id']})" in comment[0]
            )
            assert f"val accuracy {best['best_k']:.4f}" in comment[0]
    return values


def summaries(run_dir):
    """(tag, step, value) of every summary under a TensorBoard run dir."""
    for path in glob.glob(os.path.join(run_dir, "**", "events.out.tfevents.*"), recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                yield value.tag, event.step, value


def scalars(run_dir, tag):
    """Sorted (step, value) of one scalar tag."""
    return sorted(
        (step, float(tf.make_ndarray(value.tensor)))
        for name, step, value in summaries(run_dir)
        if name == tag
    )


def test_killed_search_resumes_and_the_grid_takes_tuned_flags(tmp_path):
    workdir = str(tmp_path / "tune")
    args = (*TUNE, "--tuner=hyperband", f"--workdir={workdir}")
    first = subprocess.Popen(
        cli_command(*args),
        cwd=REPO,
        env=local_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    second_trial = os.path.join(workdir, "tuning", "base", "trial_1", "trial.json")
    deadline = time.monotonic() + 300
    while not os.path.exists(second_trial) and first.poll() is None:
        assert time.monotonic() < deadline, "the first trial took more than 5 minutes"
        time.sleep(0.2)
    first.kill()  # mid-way through base trial 1, after trial 0 finished
    assert first.wait() != 0, first.stderr.read()[-3000:]
    statuses = trial_statuses(workdir, "base")
    assert statuses["0"] in FINISHED and statuses["1"] == "RUNNING", statuses

    resumed = run_cli(*args, env=local_env())
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Reloading Tuner" in resumed.stdout
    base = trial_records(workdir, "base")
    for stage in ("base", "transfer_ft"):
        statuses = trial_statuses(workdir, stage)
        assert sorted(statuses) == ["0", "1"] and set(statuses.values()) <= set(FINISHED)
    assert base["0"]["pid"] == first.pid  # finished before the kill: not trained again
    assert base["1"]["pid"] != first.pid  # killed: trained by the resumed search
    for record in base.values():
        # Hyperband's shortest trials: 1/9 of twice --epochs=3
        assert record["values"]["epochs"] == 0.6667 and record["half"] == "A"
        assert 0.005 <= record["values"]["learning_rate"] <= 0.5
    tuned = check_best_recorded_once(workdir)
    assert 0.01 <= float(tuned["fine_tune_lr_scale"]) <= 1
    board = glob.glob(os.path.join(workdir, "tuning", "tensorboard", "base", "*", "execution0"))
    assert len(board) == 2
    for trial_dir in board:
        tags = {tag for tag, _, _ in summaries(trial_dir)}
        assert {"_hparams_/session_start_info", "epoch_accuracy"} <= tags
        assert scalars(trial_dir, "best_k_val_accuracy")

    flags_path = os.path.join(workdir, "tuned.flags")
    before = open(flags_path).read()
    changed = run_cli(*args, "--learning_rate=0.1", env=local_env())
    assert changed.returncode == 2
    [error] = error_lines(changed.stderr)
    assert "--learning_rate 0.05 -> 0.1" in error and "--overwrite" in error
    assert open(flags_path).read() == before

    grid_dir = str(tmp_path / "grid")
    done = run_cli(
        f"--flagfile={SMOKE}",
        f"--flagfile={flags_path}",
        f"--workdir={grid_dir}",
        "--mode=train",
        "--layers=1",
        "--treatments=transfer_ft",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with open(os.path.join(grid_dir, "config.json")) as f:
        experiment = config.flat_values(json.load(f)["experiment"])
    for name, value in tuned.items():
        assert experiment[name] == (int(value) if name == "batch_size" else float(value))
    board = os.path.join(grid_dir, "tensorboard", "random0")
    base_rate = scalars(os.path.join(board, "base", "A", "seed0"), "epoch_learning_rate")
    fine_rate = scalars(os.path.join(board, "transfer_ft", "n1", "seed0"), "epoch_learning_rate")
    assert abs(fine_rate[0][1] / base_rate[0][1] - float(tuned["fine_tune_lr_scale"])) < 1e-3


def test_chief_and_two_workers_share_the_trials(tmp_path, free_ports):
    workdir = str(tmp_path / "tune")
    port, _ = free_ports(2, consecutive=True)  # the chief serves both searches: port, port + 1
    processes = {}
    for tuner_id in ("chief", "tuner0", "tuner1"):
        env = local_env(
            KERASTUNER_TUNER_ID=tuner_id,
            KERASTUNER_ORACLE_IP="127.0.0.1",
            KERASTUNER_ORACLE_PORT=str(port),
        )
        processes[tuner_id] = subprocess.Popen(
            cli_command(*TUNE, f"--workdir={workdir}"),
            cwd=REPO,
            env=env,
            text=True,
            stdout=open(tmp_path / f"{tuner_id}.out", "w"),
            stderr=subprocess.STDOUT,
        )
    try:
        for tuner_id, process in processes.items():
            assert process.wait(timeout=480) == 0, (tmp_path / f"{tuner_id}.out").read_text()[
                -3000:
            ]
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    logs = {tuner_id: (tmp_path / f"{tuner_id}.out").read_text() for tuner_id in processes}
    ran_on = set()
    for stage in ("base", "transfer_ft"):
        statuses = trial_statuses(workdir, stage)
        assert sorted(statuses) == ["0", "1"] and set(statuses.values()) <= set(FINISHED)
        ran_on |= {r["tuner_id"] for r in trial_records(workdir, stage).values()}
    assert ran_on == {"tuner0", "tuner1"}
    assert re.search(r"chief: serving trials on 127\.0\.0\.1:\d+", logs["chief"])
    assert f"127.0.0.1:{port + 1}" in logs["chief"]
    check_best_recorded_once(workdir)
    assert "tuned flags:" in logs["chief"]
    assert all(
        "tuned flags:" not in logs[worker] and "the chief writes tuned.flags" in logs[worker]
        for worker in ("tuner0", "tuner1")
    )


def test_bad_tuning_input_is_one_line_and_writes_nothing(tmp_path):
    workdir = tmp_path / "tune"
    done = run_cli(*TUNE, f"--workdir={workdir}", "--tune_n=8", env=local_env())
    assert done.returncode == 2
    assert error_lines(done.stderr) == [
        "error: --tune_n=8 is past the last block of caffenet_small (use 1..7, or 0 for the "
        "middle block)"
    ]
    done = run_cli(
        *TUNE,
        f"--workdir={workdir}",
        env=local_env(KERASTUNER_ORACLE_IP="127.0.0.1", KERASTUNER_TUNER_ID="chief"),
    )
    assert done.returncode == 2
    [error] = error_lines(done.stderr)
    assert "KERASTUNER_ORACLE_PORT=''" in error
    assert not workdir.exists()
