"""The grid split between independent processes that share one workdir.

`--num_shards=N --shard_index=i` gives a process every N-th run of the plan, starting at
run i (bases come first in the plan, so they start first); `--runs=ID,...` restricts the
runs before they are split. The processes (a SLURM job array, a Kubernetes Indexed Job, a
few terminals) cooperate through the workdir only:

- before training a run, a process claims it by creating `claims/<run id>.claim` with
  O_CREAT | O_EXCL, which is atomic on a local disk and on NFS: no run is trained twice,
  even when the processes' selections overlap;
- results.jsonl (appended under a file lock) says which runs are finished;
- a run whose base network is not finished waits for it, rereading results.jsonl every
  --poll_seconds, for up to --wait_timeout seconds, then the process stops (exit 1);
- a claim whose holder died is taken over by the restarted process of the same shard
  (a requeued array task, a restarted pod), or by any process on the holder's host once
  the holder's pid is gone. Otherwise it is left alone and named at the end.

Analysis and export are left to one unsharded run of the same command after the shards.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kerastransfer.config import Experiment
from kerastransfer.errors import StudyStopped, UsageError
from kerastransfer.study.plan import RunSpec
from kerastransfer.workdir.records import RunLine

if TYPE_CHECKING:
    from kerastransfer.study.runner import Runner, Store

# A claim file's JSON ("owner", "host", "pid", "time"), with its "path"; only "owner" and
# "path" while its holder has not written it yet.
Claim = dict[str, Any]


def select(runs: list[RunSpec], experiment: Experiment) -> list[RunSpec]:
    """This process's runs, in plan order: --runs (all if empty), then every N-th from i."""
    e = experiment.scale_out
    if e.runs:
        known = {spec.run for spec in runs}
        unknown = [run for run in e.runs if run not in known]
        if unknown:
            raise UsageError(
                f"--runs names {unknown[0]!r}, which is not in this study's plan; run ids "
                f"look like {runs[0].run} or {runs[-1].run} (split/treatment/nN/seedS)"
            )
        runs = [spec for spec in runs if spec.run in e.runs]
    return runs[e.shard_index :: e.num_shards]


def owner_label(experiment: Experiment) -> str:
    """Names this process's slot: a restarted process of the same slot gets the same label."""
    e = experiment.scale_out
    label = f"shard {e.shard_index} of {e.num_shards}"
    if e.runs:
        label += f", runs {hashlib.sha1(','.join(e.runs).encode()).hexdigest()[:8]}"
    return label


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    return True


class Claims:
    """Atomic claims on runs: files under workdir/claims, one per run id."""

    def __init__(self, workdir: str, owner: str) -> None:
        self.root = os.path.join(workdir, "claims")
        self.owner = owner
        self.host, self.pid = socket.gethostname(), os.getpid()

    def path(self, run_id: str) -> str:
        return os.path.join(self.root, f"{run_id}.claim")

    def claim(self, run_id: str) -> Claim | None:
        """Claims `run_id`; returns None when this process got it, else the holder's claim."""
        path = self.path(run_id)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        for _ in range(3):  # a takeover that races with another process tries again
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                text, holder = self._read(path)
                if holder is None or not self._stale(holder):
                    return holder or {"owner": "a process writing its claim", "path": path}
                self._take_over(path, text)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(
                    {
                        "owner": self.owner,
                        "host": self.host,
                        "pid": self.pid,
                        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
                    },
                    f,
                )
                f.flush()
                os.fsync(f.fileno())
            return None
        return {"owner": "processes taking it over at the same time", "path": path}

    def holder(self, run_id: str) -> Claim | None:
        """The claim on `run_id`, or None when nobody claimed it."""
        path = self.path(run_id)
        if not os.path.exists(path):
            return None
        return self._read(path)[1] or {"owner": "a process writing its claim", "path": path}

    def _read(self, path: str) -> tuple[str | None, Claim | None]:
        try:
            with open(path) as f:
                text = f.read()
            holder = json.loads(text)
        except FileNotFoundError:
            return None, None
        except ValueError:  # created but not written yet
            return text, None
        return text, {**holder, "path": path}

    def _stale(self, holder: Claim) -> bool:
        """A dead holder: on this host with its pid gone, or an earlier life of our slot."""
        same_host = holder.get("host") == self.host
        if same_host and holder.get("pid") is not None:
            return not _pid_alive(holder["pid"])
        return holder.get("owner") == self.owner

    def _take_over(self, path: str, text: str | None) -> None:
        """Moves a stale claim aside; of processes racing to do so, exactly one succeeds.

        If the claim changed between reading it and moving it (another process took over
        first), it is put back and nobody takes it over this time.
        """
        aside = f"{path}.stale.{self.host}.{self.pid}"
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return
        with open(aside) as f:
            moved = f.read()
        if moved != text:
            try:
                os.link(aside, path)  # atomic: fails if a claim appeared meanwhile
            except FileExistsError:
                pass
        os.remove(aside)


def describe(holder: Mapping[str, Any]) -> str:
    where = f" on {holder['host']} pid {holder['pid']}" if "host" in holder else ""
    since = f" since {holder['time']}" if "time" in holder else ""
    return f"{holder['owner']}{where}{since} ({holder['path']})"


def run_shard(runner: Runner) -> None:
    """Trains this process's share of the grid; returns when none of it is left to do here.

    Records go to the shared results.jsonl; runs claimed by other processes are left to
    them, runs whose base is unfinished wait for it (StudyStopped after --wait_timeout).
    """
    study, store, log = runner.study, runner.store, runner.log
    e = study.experiment
    mine = select(study.runs, e)
    claims = Claims(study.workdir, owner_label(e))
    done = runner.finished()  # weights checked once; newer records are trusted below
    seen = len(store.records())
    pending = [spec for spec in mine if spec.run not in done]
    log(
        f"{claims.owner}: {len(mine)} of the study's {len(study.runs)} runs are this "
        f"process's, {len(pending)} not finished"
    )
    trained = 0
    left: list[str] = []
    waited_since: float | None = None
    announced: set[str] = set()
    while pending:
        seen = _refresh(done, store, seen)
        pending = [spec for spec in pending if spec.run not in done]
        ready = [spec for spec in pending if not spec.base_run or spec.base_run in done]
        if not ready:
            if not pending:
                break
            waited_since = waited_since or time.monotonic()
            _wait(pending, claims, time.monotonic() - waited_since, e, log, announced)
            time.sleep(e.scale_out.poll_seconds)
            continue
        waited_since = None
        spec = ready[0]
        holder = claims.claim(spec.run)
        if holder is not None:
            log(f"{spec.run}: claimed by {describe(holder)}; left to it")
            pending.remove(spec)
            left.append(spec.run)
            continue
        seen = _refresh(done, store, seen)
        pending.remove(spec)
        if spec.run in done:  # another process finished it just before our claim
            continue
        record = runner.run_one(spec, done)
        trained += record["status"] != "skipped"
        if runner.stopped_by:
            break
    finished = sum(spec.run in done for spec in study.runs)
    log(
        f"{claims.owner}: trained {trained} runs; {len(left)} left to other processes; "
        f"{finished} of the study's {len(study.runs)} runs are finished"
    )


def _refresh(done: dict[str, RunLine], store: Store, seen: int) -> int:
    """Adds the records other processes appended since record number `seen`."""
    records = store.records()
    for record in records[seen:]:
        if record["status"] in ("ok", "failed", "skipped"):
            done[record["run"]] = record
    return len(records)


def _wait(
    pending: Sequence[RunSpec],
    claims: Claims,
    waited: float,
    experiment: Experiment,
    log: Callable[[str], None],
    announced: set[str],
) -> None:
    """Logs each base waited for once (every pending run waits for its base); stops the
    process past --wait_timeout."""
    bases = sorted({spec.base_run for spec in pending if spec.base_run})
    for base in bases:
        if base not in announced:
            holder = claims.holder(base)
            by = describe(holder) if holder else "nobody yet (its shard has not started)"
            log(f"waiting for base {base}, claimed by {by}")
            announced.add(base)
    if waited > experiment.scale_out.wait_timeout:
        holder = claims.holder(bases[0])
        by = (
            f"claimed by {describe(holder)}; if that process is gone, delete the claim "
            "file and start this shard again"
            if holder
            else "which no process claimed"
        )
        raise StudyStopped(
            f"{claims.owner}: base {bases[0]} is not finished after "
            f"--wait_timeout={experiment.scale_out.wait_timeout}s, {by}"
        )
