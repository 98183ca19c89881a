"""A study's data and the training of one of its runs.

`Study.load` reads the dataset and builds the splits once; `train_run` builds, trains and
evaluates one network of the plan and returns its record. Which runs to train, in what
order, and what a failure does is the runner's business (study/runner.py).
"""

import dataclasses
import os
import shutil
import threading
import zlib
from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from kerastransfer import data, models, surgery, training, treatments
from kerastransfer.config import Experiment
from kerastransfer.errors import UsageError
from kerastransfer.study.plan import RunSpec, check_layers, plan
from kerastransfer.training.caching import PrefixCache, cache_layer
from kerastransfer.training.loop import Batches, TrainData
from kerastransfer.treatments import Stage, Treatment
from kerastransfer.workdir.provenance import workdir_of
from kerastransfer.workdir.records import RunLine, trained_line


@dataclasses.dataclass
class _RunSetup:
    """What `Study._set_up` prepares for one run's training."""

    model: keras.Model  # the run's network (saved, evaluated)
    trainee: keras.Model  # what trains: the network, or its suffix over cached features
    twin: keras.Model  # the kept compiled model that trains it (training.CompiledModels)
    solver: training.Solver
    layer: keras.layers.Layer | None  # the cached prefix's last layer, or None
    train_data: TrainData  # skip -> training batches
    val_data: Batches
    cache: dict[str, Any]  # the cache fields of the record
    stages: list[Stage] | None  # a staged recipe's stages (training.fit_stages), or None


def _layers_only(model: keras.Model) -> keras.Model:
    """`model`'s layers without its optimizer, so its weights file holds the weights alone:
    a run's own model carries optimizer state only when it trained itself instead of a
    kept compiled twin, which depends on which thread ran it."""
    return keras.Model(model.inputs, model.outputs, name=model.name)


class Study:
    """A workdir's study: data, splits, plan and the training of each run.

    Args:
        experiment: the config.Experiment.
        source: the data.DatasetSource.
        splits: {split name: data.ClassSplit}.
        preprocessing: the data.Preprocessing of the model's input.
        runs: the plan, a list of RunSpec.
        log: where progress lines go.
        strategy: the tf.distribute strategy runs train under (default: the current one).
        outdir: where this process writes run files: the workdir, except on a multi-worker
            follower, which writes to a throwaway folder (study/following.py).
    """

    def __init__(
        self,
        experiment: Experiment,
        *,
        source: data.DatasetSource,
        splits: dict[str, data.ClassSplit],
        preprocessing: data.Preprocessing,
        runs: list[RunSpec],
        log: Callable[[str], None] = print,
        strategy: tf.distribute.Strategy | None = None,
        outdir: str | None = None,
    ) -> None:
        self.experiment = experiment
        self.workdir = workdir_of(experiment)
        self.source, self.splits, self.runs = source, splits, runs
        self.preprocessing = preprocessing
        self.halves = data.make_halves(source, splits, preprocessing, experiment.data)
        self.log = log
        self.strategy = strategy or tf.distribute.get_strategy()
        self.outdir = outdir or self.workdir
        self._prefix_cache = PrefixCache(
            experiment.grid.cache_budget_mb, os.path.join(self.outdir, "cache"), log
        )
        # Seeding, building and the training data's shuffle seed use process-wide random
        # state: runs in flight (study/runner.py) take turns at them under this lock.
        self._setup_lock = threading.Lock()
        self._per_thread = threading.local()

    @property
    def compiled(self) -> training.CompiledModels:
        """This thread's training.CompiledModels: traced models reused between its runs."""
        if not hasattr(self._per_thread, "compiled"):
            self._per_thread.compiled = training.CompiledModels()
        return self._per_thread.compiled

    @property
    def evaluator(self) -> training.Evaluator:
        """This thread's training.Evaluator: traced forward passes reused between its runs."""
        if not hasattr(self._per_thread, "evaluator"):
            self._per_thread.evaluator = training.Evaluator()
        return self._per_thread.evaluator

    @property
    def runs_in_flight(self) -> int:
        """How many runs train at once: --runs_in_flight on the default strategy (the CPU or
        one device), 1 under a tf.distribute strategy, whose collectives take one at a time."""
        default = self.strategy is tf.distribute.get_strategy() and not tf.distribute.has_strategy()
        return self.experiment.scale_out.runs_in_flight if default else 1

    @classmethod
    def load(
        cls,
        experiment: Experiment,
        log: Callable[[str], None] = print,
        strategy: tf.distribute.Strategy | None = None,
        outdir: str | None = None,
    ) -> "Study":
        """Loads the dataset, builds the splits and checks the layers against the model.

        Writes nothing; call `save_splits` once the workdir is accepted.
        """
        d = experiment.data
        source = data.load_source(
            d.dataset, data_dir=d.data_dir, manual_dir=d.manual_dir, image_dir=d.image_dir
        )
        splits = {}
        for spec in d.splits:
            split = data.make_split(spec, source.class_names, d.dataset)
            if split.name in splits:
                raise UsageError(f"--splits lists {spec!r} twice")
            splits[split.name] = split
        m = experiment.model
        preprocessing = data.Preprocessing(
            **models.input_spec_for(m.arch, m.image_size, source.image_shape)
        )
        if not source.in_memory and not experiment.solver.train_steps:
            raise UsageError(
                f"--dataset={d.dataset} is streamed (too large for memory), so "
                "its epochs are not counted: give the training length with "
                "--train_steps (the paper: 450000)"
            )
        study = cls(
            experiment,
            source=source,
            splits=splits,
            preprocessing=preprocessing,
            runs=plan(experiment, list(splits)),
            log=log,
            strategy=strategy,
            outdir=outdir,
        )
        model = study.build_model(num_classes=2)
        blocks = surgery.num_blocks(model, study.cut_names(model))
        check_layers(experiment.grid.layers, blocks, m.arch, f"block {blocks + 1} is the head")
        return study

    def save_splits(self) -> None:
        for name, split in self.splits.items():
            split.save(os.path.join(self.workdir, "splits", name, "split.json"))

    def build_model(self, num_classes: int, weight_decay: float | None = None) -> keras.Model:
        """A fresh network of the study; `weight_decay` overrides --weight_decay (tuning)."""
        m = self.experiment.model
        shape = (*self.preprocessing.image_size, self.preprocessing.channels)
        decay = self.experiment.solver.weight_decay if weight_decay is None else weight_decay
        return models.build(
            m.arch,
            num_classes=num_classes,
            input_shape=shape,
            widths=m.widths or None,
            weight_decay=decay,
            dropout=m.dropout,
        )

    def cut_names(self, model: keras.Model) -> list[str] | None:
        """The names of the layers that end blocks 1, 2, ... of `model`, a network of this
        study (surgery's `cut_names`), as --arch's family finds them (models.cut_points)."""
        return models.cut_points(self.experiment.model.arch, model)

    def trained_network(self, record: RunLine) -> keras.Model:
        """The network a finished run's record describes, with its trained weights loaded (its
        treatment says how: a linear probe's network ends at its cut)."""
        model = self.build_model(record["num_classes"])
        model = treatments.get(record["treatment"]).reload(
            model, record["n"], self.cut_names(model)
        )
        model.load_weights(os.path.join(self.workdir, record["weights"]))
        return model

    def copied_from(self, base_record: RunLine | None) -> keras.Model:
        """The network a transfer copies its blocks from: the trained base of its source half
        (ValueError without one: every transfer of the grid has a base)."""
        if base_record is None:
            raise ValueError("a transfer of the grid copies its trained base, and none was given")
        return self.trained_network(base_record)

    def network(self, spec: RunSpec, base_record: RunLine | None, num_classes: int) -> keras.Model:
        """The untrained network of a run, as its treatment builds it (a fresh base, surgery on
        a trained or fresh network, or the trained base itself)."""
        return treatments.get(spec.treatment).network(self, spec.n, num_classes, base_record)

    def record_fields(self, spec: RunSpec) -> dict[str, Any]:
        """What this study adds to a run's record (nothing for the grid)."""
        return {}

    def given_records(self) -> dict[str, RunLine]:
        """Records of runs the study does not train but is given (none for the grid)."""
        return {}

    def weights_key(
        self, spec: RunSpec, base_record: RunLine | None
    ) -> tuple[str, str, str] | None:
        """What a frozen run's cached prefix features depend on: the base's weights and the
        data they see (None when there is no trained base)."""
        if not base_record:
            return None
        return (base_record["weights_sha256"], spec.split, spec.target)

    # ----- one run ---------------------------------------------------------------------
    def train_run(self, spec: RunSpec, base_record: RunLine | None) -> RunLine:
        """Builds, trains and evaluates one network; returns its record."""
        e = self.experiment
        treatment = treatments.get(spec.treatment)
        half = self.halves.half(spec.split, spec.target)
        run_dir = self._run_dir(spec)
        with self._setup_lock:
            ready = self._set_up(spec, base_record, treatment, half)
        model, twin, solver, layer = ready.model, ready.twin, ready.solver, ready.layer

        def trained() -> keras.Model:
            self.compiled.copy_back(ready.trainee, twin)
            return _layers_only(model)

        weights = os.path.join("runs", spec.run, "final.weights.h5")
        fit_args: dict[str, Any] = {
            "batch_size": e.solver.batch_size,
            "best_k": e.solver.best_k,
            "run_dir": run_dir,
            "weights_path": os.path.join(self.outdir, weights),
            "tensorboard_dir": os.path.join(self.outdir, "tensorboard", spec.run),
            "trained": trained,
            "verbose": e.verbose,
            "evaluator": self.evaluator,
        }
        if ready.stages:
            outcome = training.fit_stages(
                model,
                ready.train_data,
                ready.val_data,
                stages=ready.stages,
                compile_model=training.compile_model,
                **fit_args,
            )
        else:
            outcome = training.fit_run(
                twin, ready.train_data, ready.val_data, solver=solver, **fit_args
            )
        if not outcome.ok:
            self._prefix_cache.release(spec.run)
            return trained_line(
                spec,
                outcome.record(),
                reason=f"{outcome.reason} (learning rate {solver.learning_rate:g})",
                **self.record_fields(spec),
            )
        record = trained_line(
            spec,
            outcome.record(),
            test_accuracy=self.evaluator(model, self.halves.eval_batches(half, "test"))[0],
            cached_prefix=layer.name if layer is not None else None,
            **ready.cache,
            strategy=type(self.strategy).__name__,
            replicas=self.strategy.num_replicas_in_sync,
            dtype_policy=keras.config.dtype_policy().name,
            num_classes=half.num_classes,
            class_names=half.class_names,
            val_examples=self.halves.eval_size(half, "val"),
            test_examples=self.halves.eval_size(half, "test"),
            weights=weights,
            **treatment.record_fields(e.solver),
            **self.record_fields(spec),
        )
        self._prefix_cache.release(spec.run)
        self._log_hparams(spec, record)
        return record

    def _set_up(
        self,
        spec: RunSpec,
        base_record: RunLine | None,
        treatment: Treatment,
        half: Any,
    ) -> _RunSetup:
        """A run's network, seeded from its run id, compiled on this thread's kept twin, and
        its training inputs (cached prefix features for a frozen run). Call under
        `_setup_lock`: seeding and building use process-wide random state.

        `half`: the run's half as self.halves gives it, a data.HalfData in memory or a
        data.halves.StreamedHalf streamed (Any: each kind of halves takes only its own)."""
        e = self.experiment
        run_seed = (zlib.crc32(spec.run.encode()) + e.grid.seed_offset) % 2**31
        keras.utils.set_random_seed(run_seed)
        with self.strategy.scope():
            model = self.network(spec, base_record, half.num_classes)
        solver = training.Solver.from_config(
            e.solver, self.halves.train_size(half), fine_tuned=treatment.fine_tuned
        )
        layer = (
            cache_layer(model, spec.n)
            if e.grid.cache_frozen
            and treatment.frozen
            and self._prefix_cache.allowed(self.preprocessing, self.halves.in_memory, self.strategy)
            else None
        )
        seed = spec.seed + e.grid.seed_offset
        cache: dict[str, Any]
        with self.strategy.scope():
            if layer is None:
                trainee, val_data, cache = model, self.halves.eval_batches(half, "val"), {}

                def batches(skip: int, /) -> tf.data.Dataset:
                    return self.halves.train_batches(half, seed, skip, e.solver.batch_size)
            else:
                trainee, batches, val_data, cache = self._prefix_cache.inputs(
                    model,
                    layer,
                    half,
                    self.preprocessing,
                    run=spec.run,
                    seed=seed,
                    batch_size=e.solver.batch_size,
                    key=self.weights_key(spec, base_record),
                )
            stages = treatment.stages(solver, e.solver, spec.n, self.cut_names(model))
            if stages:
                twin = trainee  # a staged recipe compiles each stage (training.fit_stages)
            else:
                rates = treatment.layer_rates(model, spec.n, e.solver, self.cut_names(model))
                training.compile_model(trainee, solver, layer_rates=rates)
                twin = self.compiled.twin(trainee)

        def train_data(skip: int) -> tf.data.Dataset:
            # The shuffle's seeds pair `seed` with TensorFlow's global seed, which another
            # run in flight may have set since: set the run's own again.
            with self._setup_lock:
                tf.random.set_seed(run_seed)
                return batches(skip)

        return _RunSetup(model, trainee, twin, solver, layer, train_data, val_data, cache, stages)

    def _log_hparams(self, spec: RunSpec, record: RunLine) -> None:
        """One HParams session per run, so TensorBoard's HParams dashboard shows the grid."""
        from tensorboard.plugins.hparams import api as hparams  # noqa: PLC0415

        writer = tf.summary.create_file_writer(
            os.path.join(self.outdir, "tensorboard", spec.run, "hparams")
        )
        with writer.as_default():
            hparams.hparams(
                {
                    "treatment": spec.treatment,
                    "n": spec.n,
                    "split": spec.split,
                    "seed": spec.seed,
                    "target": spec.target,
                },
                trial_id=spec.run,
            )
            for metric in ("best_k", "final_val", "test_accuracy"):
                tf.summary.scalar(f"hparams/{metric}", record[metric], step=record["steps"])
        writer.close()

    def _run_dir(self, spec: RunSpec) -> str:
        """A run's checkpoint folder; a multi-worker follower starts from the chief's, so
        both resume a killed run at the same segment."""
        run_dir = os.path.join(self.outdir, "runs", spec.run)
        chief_dir = os.path.join(self.workdir, "runs", spec.run)
        if self.outdir != self.workdir and os.path.isdir(chief_dir):
            shutil.copytree(chief_dir, run_dir, dirs_exist_ok=True)
        return run_dir
