"""The grid split between processes sharing a workdir: selection, atomic claims, waiting
for bases, and two real shard processes that together train the single-process plan."""

import collections
import copy
import json
import multiprocessing
import os
import socket
import subprocess
import sys

import pytest

from helpers.cli import REPO, SMOKE, cli_command, run_cli
from helpers.records import records as read_records
from kerastransfer import config
from kerastransfer import flags as kt_flags
from kerastransfer.errors import UsageError
from kerastransfer.study.plan import plan
from kerastransfer.study.sharding import Claims, owner_label, select

# The smoke config at n = 5 only: bases A and B, then five treatments (7 runs).
SHARD_ARGS = (f"--flagfile={SMOKE}", "--mode=train", "--layers=5", "--poll_seconds=1")


def smoke_experiment(*overrides):
    values = copy.deepcopy(kt_flags.FLAGS)
    values(["kt", f"--flagfile={SMOKE}", "--workdir=/tmp/unused", *overrides])
    return config.from_flags(values)


def smoke_plan(*overrides):
    return plan(smoke_experiment(*overrides), ["random0"])


def test_shards_partition_the_plan_and_bases_start_first():
    runs = smoke_plan()
    shares = [
        select(runs, smoke_experiment("--num_shards=3", f"--shard_index={i}")) for i in range(3)
    ]
    assert sorted(spec.run for share in shares for spec in share) == sorted(
        spec.run for spec in runs
    )
    assert [share[0].treatment for share in shares] == ["base", "base", "selffer"]
    picked = smoke_experiment("--runs=random0/random/n7/seed0,random0/base/B/seed0")
    assert [spec.run for spec in select(runs, picked)] == [
        "random0/base/B/seed0",
        "random0/random/n7/seed0",
    ]  # plan order, not flag order


def test_an_unknown_run_id_names_it_and_the_id_format():
    with pytest.raises(UsageError, match=r"'random0/transfer/n9/seed0'.*random0/base/A/seed0"):
        select(smoke_plan(), smoke_experiment("--runs=random0/transfer/n9/seed0"))


@pytest.mark.e2e
@pytest.mark.parametrize(
    "args, message",
    [
        (("--num_shards=2", "--shard_index=2"), "--shard_index=2 --num_shards=2"),
        (("--num_shards=2", "--overwrite"), "--overwrite cannot be combined with --num_shards"),
        (
            ("--runs=random0/base/A/seed0", "--strategy=multi_worker"),
            "--strategy=multi_worker cannot be combined",
        ),
        (("--workdir=gs://bucket/study",), "is a URL"),
    ],
)
def test_shard_flags_that_cannot_work_end_with_one_line(tmp_path, args, message):
    done = run_cli(f"--flagfile={SMOKE}", f"--workdir={tmp_path}", *args)
    assert done.returncode == 2 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not os.listdir(tmp_path)


def _claim_all(workdir, owner, run_ids, queue, release):
    claims = Claims(workdir, owner)
    queue.put([run for run in run_ids if claims.claim(run) is None])
    release.wait(60)  # stay alive: a dead holder's claims are fair game on its host


def test_racing_processes_claim_each_run_exactly_once(tmp_path):
    run_ids = [f"random0/transfer/n{n}/seed{s}" for n in range(1, 8) for s in range(4)]
    queue, release = multiprocessing.Queue(), multiprocessing.Event()
    racers = [
        multiprocessing.Process(
            target=_claim_all, args=(str(tmp_path), f"racer {i}", run_ids, queue, release)
        )
        for i in range(4)
    ]
    for racer in racers:
        racer.start()
    won = [queue.get(timeout=60) for _ in racers]
    release.set()
    for racer in racers:
        racer.join()
    counts = collections.Counter(run for runs in won for run in runs)
    assert sorted(counts) == sorted(run_ids) and set(counts.values()) == {1}


def test_a_dead_holders_claim_is_taken_over_and_a_live_ones_is_not(tmp_path):
    host = socket.gethostname()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    holders = {
        "dead pid here": {"owner": "shard 1 of 2", "host": host, "pid": int(dead)},
        "live pid here": {"owner": "shard 1 of 2", "host": host, "pid": os.getppid()},
        "our slot elsewhere": {"owner": "shard 0 of 2", "host": "node7", "pid": 12},
        "other slot elsewhere": {"owner": "shard 1 of 2", "host": "node7", "pid": 12},
    }
    claims = Claims(str(tmp_path), "shard 0 of 2")
    for run, holder in holders.items():
        os.makedirs(os.path.dirname(claims.path(run)), exist_ok=True)
        with open(claims.path(run), "w") as f:
            json.dump(holder, f)
    taken = {run: claims.claim(run) is None for run in holders}
    assert taken == {
        "dead pid here": True,
        "live pid here": False,
        "our slot elsewhere": True,
        "other slot elsewhere": False,
    }
    assert json.load(open(claims.path("dead pid here")))["pid"] == os.getpid()
    assert not [f for f in os.listdir(tmp_path / "claims") if ".stale." in f]


def test_owner_labels_tell_shards_and_run_lists_apart():
    labels = {
        owner_label(smoke_experiment(*args))
        for args in [
            ("--num_shards=2", "--shard_index=0"),
            ("--num_shards=2", "--shard_index=1"),
            ("--runs=random0/base/A/seed0",),
            ("--runs=random0/base/B/seed0",),
        ]
    }
    assert len(labels) == 4


@pytest.mark.e2e
def test_a_shard_whose_base_never_finishes_stops_after_wait_timeout(tmp_path):
    done = run_cli(
        *SHARD_ARGS, f"--workdir={tmp_path}", "--runs=random0/selffer/n5/seed0", "--wait_timeout=2"
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert "waiting for base random0/base/B/seed0, claimed by nobody yet" in done.stdout
    assert (
        "base random0/base/B/seed0 is not finished after --wait_timeout=2s, which no "
        "process claimed"
    ) in done.stderr
    assert not os.path.exists(tmp_path / "results.jsonl")


@pytest.mark.e2e
def test_two_shards_at_once_train_the_single_process_plan_once(tmp_path):
    workdir = tmp_path / "work"
    shards = [
        subprocess.Popen(
            cli_command(
                *SHARD_ARGS, f"--workdir={workdir}", "--num_shards=2", f"--shard_index={index}"
            ),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(2)
    ]
    outputs = [shard.communicate(timeout=600) for shard in shards]
    for shard, (_, stderr) in zip(shards, outputs):
        assert shard.returncode == 0, stderr[-3000:]
    records = read_records(workdir)
    planned = [spec.run for spec in smoke_plan("--layers=5")]
    assert sorted(r["run"] for r in records) == sorted(planned)  # each run once
    assert all(r["status"] == "ok" for r in records)
    started = [
        line.split()[1]
        for out, _ in outputs
        for line in out.splitlines()
        if line.startswith("start ")
    ]
    assert sorted(started) == sorted(planned)
    for index, (out, _) in enumerate(outputs):
        assert f"shard {index} of 2: trained " in out
        own = {
            spec.run
            for spec in select(
                smoke_plan("--layers=5"),
                smoke_experiment("--layers=5", "--num_shards=2", f"--shard_index={index}"),
            )
        }
        assert {line.split()[1] for line in out.splitlines() if line.startswith("start ")} == own
    # a later unsharded run of the same command finds everything done
    again = run_cli(f"--flagfile={SMOKE}", "--mode=train", "--layers=5", f"--workdir={workdir}")
    assert again.returncode == 0 and "all 7 runs already done" in again.stdout
