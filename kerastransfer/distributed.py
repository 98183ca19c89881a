"""One run across several devices and machines: mixed precision, MultiWorkerMirroredStrategy.

Every worker of a multi-worker run executes the same grid in lockstep (TensorFlow's
collectives all-reduce the gradients, so their weights stay identical). Only the chief
(TF_CONFIG's "chief" task, or worker 0 when there is none) writes to the workdir: results,
weights, checkpoints, TensorBoard logs. The others are followers: they read the chief's
workdir, write their own copies to a throwaway folder, and after each run wait for the
chief's record and check that their weights equal the chief's.

Example (two machines; see docs/scale_out.md):
    TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
                "task": {"type": "worker", "index": 0}}' \\
    python -m kerastransfer.run --flagfile=configs/imagenet_paper.flags --strategy=multi_worker
"""

import contextlib
import hashlib
import os
import shutil
import tempfile
import time

import h5py
import keras
import tensorflow as tf

from kerastransfer.errors import StudyStopped

# How often a follower rereads results.jsonl for the chief's record of the run it just did.
FOLLOW_POLL_SECONDS = 0.5


def set_precision(policy):
    """--mixed_precision: Keras's global dtype policy for every model built afterwards.

    Variables stay float32 and every model's softmax head is built with dtype float32;
    mixed_float16 also wraps the optimizer in loss scaling (Keras does it in compile).
    """
    keras.mixed_precision.set_global_policy("float32" if policy == "none" else policy)


def multi_worker_strategy():
    """MultiWorkerMirroredStrategy from TF_CONFIG, with Keras's multi-worker fit repaired.

    Create it before any other TensorFlow op: the collectives are configured at start-up.
    """
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    _repair_keras_multi_worker_fit()
    return strategy


def is_chief(strategy):
    """True for the process that writes the workdir: the only one, unless multi-worker."""
    return strategy.extended.should_checkpoint


def worker_name(strategy):
    resolver = strategy.cluster_resolver
    return f"{resolver.task_type} {resolver.task_id}"


def _repair_keras_multi_worker_fit():
    """Keras 3.15's `fit` fails under MultiWorkerMirroredStrategy (keras-team/keras#20585):

    1. before training it reduces a whole data batch across workers only to learn its
       shapes, with a call that cannot take a tuple of per-replica values;
    2. it averages each step's scalar metrics across replicas with `axis=0`, which scalars
       do not have.
    This builds from the local replica's batch instead, and averages scalars across all
    workers' replicas (what Keras does on one machine). Both changes apply only in
    multi-worker mode, which is Keras's own test for taking the broken branches.
    """
    from keras.src import tree  # noqa: PLC0415
    from keras.src.backend.tensorflow import trainer  # noqa: PLC0415

    if getattr(trainer, "_kerastransfer_repaired", False):
        return
    keras_build = trainer.TensorFlowTrainer._maybe_symbolic_build
    keras_reduce = trainer.reduce_per_replica

    def local_value(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return value.values[0]
        return value

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if strategy is None or not trainer._collective_all_reduce_multi_worker(strategy):
            return keras_build(self, iterator=iterator, data_batch=data_batch)
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tree.map_structure(local_value, next(batches))
                break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    def reduce_per_replica(values, strategy, reduction):
        if (reduction in ("auto", "mean")
                and trainer._collective_all_reduce_multi_worker(strategy)):
            return tree.map_structure(
                lambda value: strategy.reduce("MEAN", value, axis=None), values)
        return keras_reduce(values, strategy, reduction)

    trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    trainer.reduce_per_replica = reduce_per_replica
    trainer._kerastransfer_repaired = True


def weights_digest(path):
    """sha256 of the arrays in a Keras weights file (names and values, not file bytes)."""
    digest = hashlib.sha256()
    with h5py.File(path, "r") as f:
        names = []
        f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset)
                     else None)
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

    def __init__(self, chief_store, study, name, timeout):
        self._chief = chief_store
        self.path = chief_store.path
        self._study, self._name, self._timeout = study, name, timeout
        self._seen = len(chief_store.records())

    def records(self):
        return self._chief.records()

    def latest(self):
        return self._chief.latest()

    def append(self, record):
        chief = self._wait_for(record["run"])
        study = self._study
        if record["status"] == "ok" and chief["status"] == "ok":
            ours = weights_digest(os.path.join(study.outdir, record["weights"]))
            theirs = weights_digest(os.path.join(study.workdir, chief["weights"]))
            if ours != theirs:
                raise StudyStopped(f"{self._name}: the weights of {record['run']} differ from "
                                   "the chief's; the workers did not train in lockstep")
            study.log(f"{self._name}: weights of {record['run']} equal the chief's "
                      f"(digest {ours})")
        shutil.rmtree(os.path.join(study.outdir, "runs", record["run"]), ignore_errors=True)

    def _wait_for(self, run_id):
        deadline = time.monotonic() + self._timeout
        while True:
            records = self._chief.records()
            for index in range(self._seen, len(records)):
                if records[index]["run"] == run_id:
                    self._seen = index + 1
                    return records[index]
            if time.monotonic() > deadline:
                raise StudyStopped(f"{self._name}: the chief recorded no result for {run_id} "
                                   f"within --wait_timeout={self._timeout}s")
            time.sleep(FOLLOW_POLL_SECONDS)


@contextlib.contextmanager
def following_chief(study, log):
    """Makes `study` a follower's for the block: reads the chief's workdir, writes nothing
    there; its own files go to a temporary folder, removed at the end."""
    name = worker_name(study.strategy)
    outdir = tempfile.mkdtemp(prefix=f"kerastransfer-{name.replace(' ', '')}-")
    log(f"{name}: not the chief; the chief writes the workdir, this worker's copies go to "
        f"{outdir} (removed at the end)")
    study.outdir = outdir
    study.store = FollowerStore(study.store, study, name, study.experiment.wait_timeout)
    try:
        yield
    finally:
        shutil.rmtree(outdir, ignore_errors=True)
