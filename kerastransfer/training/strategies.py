"""Where a run computes: tf.distribute strategies, mixed precision, multi-worker repairs.

Every worker of a multi-worker run executes the same grid in lockstep (TensorFlow's
collectives all-reduce the gradients, so their weights stay identical); only the chief writes
the workdir (study/following.py says what the others do).

Example (two machines; see docs/scale_out.md):
    TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
                "task": {"type": "worker", "index": 0}}' \\
    python -m kerastransfer.run --flagfile=configs/imagenet_paper.flags --strategy=multi_worker
"""

import functools
from typing import Any

import keras
import tensorflow as tf

# /proc/cpuinfo flags of the bfloat16 instructions that make mixed_bfloat16 pay on a CPU, the
# most capable first: a CPU with AMX also has AVX512_BF16, and its kind is amx_bf16.
BFLOAT16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")

# The precision test's verdict on mixed_bfloat16 per kind of CPU (docs/statistics.md,
# "Precision"; `python -m tools.bench --rows=7b`): passed True, False, or None where no paired test
# has been run. --mixed_precision=auto picks mixed_bfloat16 only on a kind that passed.
BFLOAT16_VERDICTS: dict[str, dict[str, Any]] = {
    "avx512_bf16": {
        "passed": False,
        "measured": "AMD EPYC: 1.17x as fast; mean paired difference -1.17 points, 90% CI "
        "-2.94 to +0.60 over 74 networks, one network at chance (0.2000 against 0.9510); a "
        "second default study +0.28 points, 90% CI -0.48 to +1.05 over 8 base networks, every "
        "treatment rejected: 2 seeds cannot show parity (docs/statistics.md: 21 needed)",
    },
    "amx_bf16": {
        "passed": None,
        "measured": "Intel Xeon: 1.64x as fast, moves numbers by up to 1.1 points; no paired test",
    },
}


def set_precision(policy: str) -> None:
    """--mixed_precision: Keras's global dtype policy for every model built afterwards.

    Variables stay float32 and every model's softmax head is built with dtype float32
    (CaffeNet's fc6/fc7 too, under mixed_bfloat16: models/layers.fully_connected_dtype);
    mixed_float16 also wraps the optimizer in loss scaling (Keras does it in compile).
    """
    policy = resolve_precision(policy)
    keras.mixed_precision.set_global_policy("float32" if policy == "none" else policy)


def resolve_precision(policy: str) -> str:
    """The policy --mixed_precision=auto stands for on this machine (auto_precision); other
    values stand for themselves."""
    return auto_precision()[0] if policy == "auto" else policy


def auto_precision() -> tuple[str, str]:
    """(policy, why) of --mixed_precision=auto here: mixed_bfloat16 where there is no GPU and
    the CPU's kind passed the precision test (BFLOAT16_VERDICTS), else none (float32)."""
    if tf.config.list_physical_devices("GPU"):
        return "none", "float32 (a GPU: auto picks bfloat16 only on CPUs that passed the test)"
    kind = cpu_bfloat16_kind()
    if kind is None:
        return "none", "float32 (this CPU has no bfloat16 instructions)"
    passed, where = BFLOAT16_VERDICTS[kind]["passed"], f"on {kind.upper()} CPUs"
    if passed:
        return "mixed_bfloat16", f"mixed_bfloat16 (it passed the precision test {where})"
    if passed is None:
        return "none", f"float32 (mixed_bfloat16 has no precision test {where} yet: BENCHMARKS.md)"
    return "none", f"float32 (mixed_bfloat16 failed the precision test {where}: BENCHMARKS.md)"


def cpu_has_bfloat16() -> bool:
    """True when /proc/cpuinfo lists AMX-BF16 or AVX512_BF16 (False where it does not exist)."""
    return cpu_bfloat16_kind() is not None


@functools.cache
def cpu_bfloat16_kind() -> str | None:
    """The first of BFLOAT16_CPU_FLAGS that /proc/cpuinfo lists, or None (also where it does
    not exist)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = {word for line in f if line.startswith("flags") for word in line.split()}
    except OSError:
        return None
    return next((flag for flag in BFLOAT16_CPU_FLAGS if flag in flags), None)


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The tf.distribute strategy for --strategy (auto: mirrored when several GPUs exist)."""
    if name == "multi_worker":  # first: it must exist before TensorFlow lists devices
        return multi_worker_strategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "default"
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    return tf.distribute.get_strategy()


def multi_worker_strategy() -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy from TF_CONFIG, with Keras's multi-worker fit repaired.

    Create it before any other TensorFlow op: the collectives are configured at start-up.
    """
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    _repair_keras_multi_worker_fit()
    return strategy


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True for the process that writes the workdir: the only one, unless multi-worker."""
    return strategy.extended.should_checkpoint


def worker_name(strategy: tf.distribute.Strategy) -> str:
    resolver = strategy.cluster_resolver
    return f"{resolver.task_type} {resolver.task_id}"


def _repair_keras_multi_worker_fit() -> None:
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
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return tree.map_structure(
                lambda value: strategy.reduce("MEAN", value, axis=None), values
            )
        return keras_reduce(values, strategy, reduction)

    trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    trainer.reduce_per_replica = reduce_per_replica
    trainer._kerastransfer_repaired = True
