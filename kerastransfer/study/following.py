"""A multi-worker follower: trains in lockstep with the chief but writes nothing of its own.

Every worker of a multi-worker run executes the same grid in lockstep (TensorFlow's
collectives all-reduce the gradients, so their weights stay identical). Only the chief
(TF_CONFIG's "chief" task, or worker 0 when there is none) writes to the workdir: results,
weights, checkpoints, TensorBoard logs. The others are followers: they read the chief's
workdir, write their own copies to a throwaway folder, and after each run wait for the
chief's record and check that their weights equal the chief's.
"""

import contextlib
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import h5py
import tensorflow as tf

from kerastransfer.errors import StudyStopped
from kerastransfer.training.strategies import worker_name
from kerastransfer.workdir.records import RunLine
from kerastransfer.workdir.results import ResultStore

# How often a follower rereads results.jsonl for the chief's record of the run it just did.
FOLLOW_POLL_SECONDS = 0.5


def weights_digest(path: str) -> str:
    """sha256 of the arrays in a Keras weights file (names and values, not file bytes)."""
    digest = hashlib.sha256()
    with h5py.File(path, "r") as f:
        names: list[str] = []
        f.visititems(
            lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None
        )
        for name in sorted(names):
            digest.update(name.encode())
            digest.update(f[name][()].tobytes())
    return digest.hexdigest()


class FollowerStore:
    """results.jsonl as a follower sees it: the chief's records, never written by it.

    `append` stands in for writing: it waits for the chief's record of the same run, so the
    follower moves on in step with the chief and later runs load the chief's base weights,
    and it checks the follower's own weights against the chief's.
    """

    def __init__(
        self,
        chief_store: ResultStore,
        workdir: str,
        outdir: str,
        name: str,
        timeout: float,
        log: Callable[[str], None],
    ) -> None:
        self._chief = chief_store
        self.path = chief_store.path
        self._workdir, self._outdir, self._log = workdir, outdir, log
        self._name, self._timeout = name, timeout
        self._seen = len(chief_store.records())

    def records(self) -> list[RunLine]:
        return self._chief.records()

    def latest(self) -> dict[str, RunLine]:
        return self._chief.latest()

    def append(self, record: Mapping[str, Any]) -> None:
        chief = self._wait_for(record["run"])
        if record["status"] == "ok" and chief["status"] == "ok":
            ours = weights_digest(os.path.join(self._outdir, record["weights"]))
            theirs = weights_digest(os.path.join(self._workdir, chief["weights"]))
            if ours != theirs:
                raise StudyStopped(
                    f"{self._name}: the weights of {record['run']} differ from "
                    "the chief's; the workers did not train in lockstep"
                )
            self._log(f"{self._name}: weights of {record['run']} equal the chief's (digest {ours})")
        shutil.rmtree(os.path.join(self._outdir, "runs", record["run"]), ignore_errors=True)

    def _wait_for(self, run_id: str) -> RunLine:
        deadline = time.monotonic() + self._timeout
        while True:
            records = self._chief.records()
            for index in range(self._seen, len(records)):
                if records[index]["run"] == run_id:
                    self._seen = index + 1
                    return records[index]
            if time.monotonic() > deadline:
                raise StudyStopped(
                    f"{self._name}: the chief recorded no result for {run_id} "
                    f"within --wait_timeout={self._timeout}s"
                )
            time.sleep(FOLLOW_POLL_SECONDS)


@contextlib.contextmanager
def follower_outdir(
    strategy: tf.distribute.Strategy, log: Callable[[str], None]
) -> Iterator[tuple[str, str]]:
    """A temporary folder for a follower's own files for the block, removed at the end;
    yields (folder, the worker's name)."""
    name = worker_name(strategy)
    outdir = tempfile.mkdtemp(prefix=f"kerastransfer-{name.replace(' ', '')}-")
    log(
        f"{name}: not the chief; the chief writes the workdir, this worker's copies go to "
        f"{outdir} (removed at the end)"
    )
    try:
        yield outdir, name
    finally:
        shutil.rmtree(outdir, ignore_errors=True)
