"""The study's grid: plan every run (bases first), then train the ones not done yet.

A run is done once its record is in results.jsonl and its weights file is on disk, so a
killed grid resumes where it stopped; an interrupted run continues from its checkpoint.
"""

import dataclasses
import hashlib
import os
import shutil
import time
import zlib

import keras
import numpy as np
import tensorflow as tf

from kerastransfer import caching, data, fileio, models, surgery, training
from kerastransfer.data.preprocessing import IMAGENET_MEAN_RGB, Preprocessing
from kerastransfer.errors import UsageError
from kerastransfer.results import ResultStore, best_k_mean, display_name

# treatment -> (source half, surgery mode); every transferred network targets half B.
TREATMENT_SOURCE = {
    "selffer": ("B", "frozen"),
    "selffer_ft": ("B", "fine_tuned"),
    "transfer": ("A", "frozen"),
    "transfer_ft": ("A", "fine_tuned"),
    "random": ("", "random_frozen"),
}
EVAL_BATCH = 512
# Cached validation features go through the suffix in batches of up to this many bytes (all
# 3,000 of the default study's at once): each batch is a call into the graph, and a
# suffix's activations are small.
CACHED_EVAL_BATCH_BYTES = 64 * 2**20
# Treatments trained with --learning_rate times --fine_tune_lr_scale.
FINE_TUNED = ("selffer_ft", "transfer_ft")


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One network of the study; `run` is its stable id, e.g. random0/transfer_ft/n3/seed0."""

    run: str
    treatment: str
    split: str
    source: str
    target: str
    n: int
    seed: int

    @property
    def base_run(self):
        """The base network this run copies from (None for bases and random features)."""
        if self.treatment == "base" or not self.source:
            return None
        return base_id(self.split, self.source, self.seed)

    @property
    def label(self):
        name = display_name(self.treatment, self.target)
        return name if self.treatment == "base" else f"{name} n={self.n}"


def base_id(split, half, seed):
    return f"{split}/base/{half}/seed{seed}"


def _base_of(record):
    """The run id of the base a record's run copies from (None when it has none)."""
    fields = {field.name for field in dataclasses.fields(RunSpec)}
    return RunSpec(**{k: v for k, v in record.items() if k in fields}).base_run


def plan(experiment, split_names):
    """Every run of the study in execution order: all bases first, then the grid.

    The `all` split's halves are the same (every class), so it has one base, on B.
    """
    runs = [RunSpec(base_id(split, half, seed), "base", split, "", half, 0, seed)
            for split in split_names for seed in experiment.seeds
            for half in (("B",) if split == data.ALL_SPLIT else ("A", "B"))]
    for split in split_names:
        for n in experiment.layers:
            for treatment in experiment.treatments:
                for seed in experiment.seeds:
                    source = TREATMENT_SOURCE[treatment][0]
                    runs.append(RunSpec(f"{split}/{treatment}/n{n}/seed{seed}", treatment,
                                        split, source, "B", n, seed))
    return runs


def preprocessing_for(experiment, source):
    """How raw pixels become input for this architecture and dataset."""
    if experiment.arch == "caffenet":
        size = experiment.image_size or 227
        return Preprocessing((size, size), 3, scale=1.0, mean=IMAGENET_MEAN_RGB,
                             resize_shorter=round(size * 256 / 227))
    shape = source.image_shape
    if shape is None:  # variable-size images: resize to the requested or a common size
        size = experiment.image_size or 224
        return Preprocessing((size, size), 3)
    size = (experiment.image_size,) * 2 if experiment.image_size else tuple(shape[:2])
    channels = 3 if experiment.arch in models.BACKBONES else shape[2]
    return Preprocessing(size, channels)


def file_digest(path):
    """sha256 of a file, to detect a truncated or corrupt weights file later."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Study:
    """A workdir's study: data, splits, plan and the training of each run."""

    def __init__(self, experiment, log=print):
        self.experiment = experiment
        self.log = log
        self.workdir = experiment.workdir
        self.store = ResultStore(self.workdir)
        self._halves = {}
        self.strategy = tf.distribute.get_strategy()
        # Where this process writes run files: the workdir, except on a multi-worker
        # follower, which writes to a throwaway folder (distributed.follow_chief).
        self.outdir = self.workdir
        self._caching_note = None
        self._features = None  # caching.FeatureStore, made by the first cached run
        self._compiled = training.CompiledModels()  # traced models reused between runs
        self._evaluator = training.Evaluator()  # traced forward passes reused between runs
        self.stopped_by = None  # the failed record that ended the grid (--on_failure=stop)

    # ----- setup -----------------------------------------------------------------------
    def prepare(self):
        """Loads the dataset, builds the splits and checks the layers against the model.

        Writes nothing; call `save_splits` once the workdir is accepted.
        """
        e = self.experiment
        self.source = data.load_source(e.dataset, data_dir=e.data_dir, manual_dir=e.manual_dir,
                                       image_dir=e.image_dir)
        self.splits = {}
        for spec in e.splits:
            split = data.make_split(spec, self.source.class_names, e.dataset)
            if split.name in self.splits:
                raise UsageError(f"--splits lists {spec!r} twice")
            self.splits[split.name] = split
        self.preprocessing = preprocessing_for(e, self.source)
        probe = self.build_model(num_classes=2)
        blocks = surgery.num_blocks(probe)
        for n in e.layers:
            if n > blocks:
                raise UsageError(f"--layers value n={n} is past the last block of {e.arch} "
                                 f"(use 1..{blocks}; block {blocks + 1} is the head)")
        if not self.source.in_memory and not e.train_steps:
            raise UsageError(f"--dataset={e.dataset} is streamed (too large for memory), so "
                             "its epochs are not counted: give the training length with "
                             "--train_steps (the paper: 450000)")
        self.runs = plan(e, list(self.splits))
        return self

    def save_splits(self):
        for name, split in self.splits.items():
            split.save(os.path.join(self.workdir, "splits", name, "split.json"))

    def build_model(self, num_classes, weight_decay=None):
        """A fresh network of the study; `weight_decay` overrides --weight_decay (tuning)."""
        e = self.experiment
        shape = (*self.preprocessing.image_size, self.preprocessing.channels)
        decay = e.weight_decay if weight_decay is None else weight_decay
        return models.build(e.arch, num_classes=num_classes, input_shape=shape,
                            widths=e.widths or None, weight_decay=decay, dropout=e.dropout)

    def half(self, split, half):
        """A half's data: arrays (HalfData) when the source fits in memory, else a
        StreamedHalf. With --eval_split=test nothing is held out of training and the
        evaluations run on the test images."""
        key = (split, half)
        if key not in self._halves:
            e = self.experiment
            if not self.source.in_memory:
                self._halves[key] = StreamedHalf(self.splits[split], half)
                return self._halves[key]
            held_out = e.validation_fraction if e.eval_split == "validation" else 0.0
            arrays = data.make_half_data(
                self.source, self.splits[split], half,
                validation_fraction=held_out, seed=0,
                examples_per_class=e.examples_per_class or None,
                max_examples_per_class=e.max_examples_per_class or None)
            if e.eval_split == "test":
                arrays = dataclasses.replace(arrays, val_x=arrays.test_x, val_y=arrays.test_y)
            self._halves[key] = arrays
        return self._halves[key]

    def _train_size(self, half):
        """Training images of a half (0 for a streamed one: --train_steps sizes its runs)."""
        return 0 if isinstance(half, StreamedHalf) else len(half.train_y)

    def train_batches(self, half, seed, skip, batch_size=None):
        """Endless training batches (of --batch_size unless `batch_size` is given), from
        batch `skip` on when a killed run resumes.

        A streamed half does not replay the `skip` batches (that would decode them all
        again): the resumed run reshuffles with a seed moved by `skip` instead.
        """
        e, prep = self.experiment, self.preprocessing
        batch_size = batch_size or e.batch_size
        if not isinstance(half, StreamedHalf):
            if prep.augments:
                ds = data.make_dataset(half.train_x, half.train_y, prep,
                                       batch_size=batch_size, training=True, seed=seed)
            else:
                ds = data.gathered_batches(half.train_x, half.train_y, batch_size,
                                           shuffle_seed=seed, transform=prep.eval_tf)
            return ds.repeat().skip(skip).prefetch(tf.data.AUTOTUNE)
        return data.make_streaming_half(
            self.source, half.split, half.half, prep, split_name="train",
            batch_size=batch_size, training=True, seed=seed + skip,
            part="train" if e.eval_split == "validation" else "all",
            validation_fraction=e.validation_fraction,
            examples_per_class=e.examples_per_class or None,
            max_examples_per_class=e.max_examples_per_class or None).repeat()

    def eval_batches(self, half, part):
        """Batches of a half's "val" (what --eval_split names) or "test" images."""
        e, prep = self.experiment, self.preprocessing
        if not isinstance(half, StreamedHalf):
            x, y = (half.val_x, half.val_y) if part == "val" else (half.test_x, half.test_y)
            return data.ArrayBatches(x, y, EVAL_BATCH, transform=prep.eval_tf)
        held_out = part == "val" and e.eval_split == "validation"
        return data.make_streaming_half(
            self.source, half.split, half.half, prep,
            split_name="train" if held_out else "test", batch_size=EVAL_BATCH,
            training=False, seed=0, part="validation" if held_out else "all",
            validation_fraction=e.validation_fraction,
            max_examples_per_class=e.max_examples_per_class or None)

    def _caching_allowed(self):
        """Frozen-prefix caching needs fixed inputs, in-memory data and a single worker;
        the first time it is off, says why."""
        why = ("random crops and mirrors change the frozen layers' output every step"
               if self.preprocessing.augments else
               "the data is streamed, not held in memory" if not self.source.in_memory else
               "the data is sharded between workers"
               if isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy)
               else None)
        if why and self._caching_note is None:
            self._caching_note = why
            self.log(f"frozen-prefix caching is off: {why}; frozen runs compute every layer")
        return why is None

    # ----- status ------------------------------------------------------------------------
    def finished(self):
        """Records of runs that need no (re)training: ok with intact weights, failed, or
        skipped because their base failed."""
        latest = self.store.latest()
        done = {}
        for run_id, record in latest.items():
            if record["status"] == "failed":
                done[run_id] = record
            elif record["status"] == "ok" and self._weights_intact(record):
                done[run_id] = record
            elif record["status"] == "skipped":
                base = latest.get(_base_of(record), {})
                if base.get("status") == "failed":
                    done[run_id] = record
        return done

    def _weights_intact(self, record):
        """Checks a finished run's weights file against the size and sha256 in its record.

        A damaged file means the run is trained again, or with --on_corrupt_weights=error
        a UsageError naming the file.
        """
        path = os.path.join(self.workdir, record["weights"])
        if not os.path.exists(path):
            problem = "is missing"
        elif os.path.getsize(path) != record["weights_bytes"]:
            problem = (f"is truncated or damaged ({os.path.getsize(path)} bytes, its record in "
                       f"results.jsonl says {record['weights_bytes']})")
        elif file_digest(path) != record["weights_sha256"]:
            problem = "is corrupt (its sha256 differs from the one in results.jsonl)"
        else:
            return True
        if self.experiment.on_corrupt_weights == "error":
            raise UsageError(f"weights file {path} of finished run {record['run']} {problem}; "
                             "restore it, or pass --on_corrupt_weights=redo to train the run "
                             "again")
        self.log(f"weights file {path} of {record['run']} {problem}: training it again")
        return False

    # ----- the grid ---------------------------------------------------------------------
    def run_grid(self):
        """Trains every planned run that is not finished; returns the final records."""
        done = self.finished()
        todo = [spec for spec in self.runs if spec.run not in done]
        total = len(self.runs)
        if not todo:
            self.log(f"all {total} runs already done in {self.workdir}")
            return done
        self.log(f"{len(todo)} of {total} runs to train ({total - len(todo)} already done)")
        started, durations = time.perf_counter(), []
        for index, spec in enumerate(todo, start=1):
            position = f"[{total - len(todo) + index}/{total}]"
            base = done.get(spec.base_run) if spec.base_run else None
            if spec.base_run and (base is None or base["status"] != "ok"):
                why = "failed" if base and base["status"] == "failed" else "did not finish"
                record = self._skipped(spec, f"base {spec.base_run} {why}")
                self.store.append(record)
                self.log(f"{position} SKIPPED {spec.run}: {record['reason']}")
            else:
                self.log(f"{position} start {spec.run} ({spec.label})")
                record = self.train_run(spec, base)
                self.store.append(record)  # before "done": a line on screen means a record
                durations.append(record.get("train_seconds", 0.0))
                eta = np.mean(durations) * (len(todo) - index) if durations else 0.0
                if record["status"] == "ok":
                    self.log(f"{position} done  {spec.run} ({spec.label}): best-{record['k']} "
                             f"val {record['best_k']:.4f}, test {record['test_accuracy']:.4f}, "
                             f"{record['train_seconds']:.1f}s, "
                             f"{record['images_per_second']:.0f} img/s; "
                             f"elapsed {_clock(time.perf_counter() - started)}, ETA {_clock(eta)}")
                else:
                    self.log(f"{position} FAILED {spec.run}: {record['reason']}")
            done[spec.run] = record
            if record["status"] == "failed" and self.experiment.on_failure == "stop":
                self.stopped_by = record
                break
        return done

    def _skipped(self, spec, reason):
        return {**dataclasses.asdict(spec), "status": "skipped", "reason": reason}

    def train_run(self, spec, base_record):
        """Builds, trains and evaluates one network; returns its record."""
        e = self.experiment
        half = self.half(spec.split, spec.target)
        run_dir = self._run_dir(spec)
        keras.utils.set_random_seed((zlib.crc32(spec.run.encode()) + e.seed_offset) % 2**31)
        with self.strategy.scope():
            model = self._network(spec, base_record, half.num_classes)
        steps, every = training.plan_steps(self._train_size(half), e.batch_size, e.epochs,
                                           e.train_steps, e.eval_every)
        rate = e.learning_rate * (e.fine_tune_lr_scale if spec.treatment in FINE_TUNED else 1)
        solver = training.Solver(rate, e.momentum, steps, every, e.lr_decay_steps,
                                 e.bias_lr_multiplier)
        layer = (caching.cache_layer(model, spec.n)
                 if e.cache_frozen and spec.treatment in ("selffer", "transfer", "random")
                 and self._caching_allowed() else None)
        with self.strategy.scope():
            trainee, train_data, val_data, cache = self._inputs(model, half, spec, layer,
                                                                base_record)
            training.compile_model(trainee, solver)
            twin = self._compiled.twin(trainee)
        try:
            result = training.train(
                twin, train_data, val_data, solver=solver, batch_size=e.batch_size,
                run_dir=run_dir, verbose=e.verbose, evaluator=self._evaluator,
                tensorboard_dir=os.path.join(self.outdir, "tensorboard", spec.run))
            self._compiled.copy_back(trainee, twin)
        except training.DivergedError as error:
            shutil.rmtree(os.path.join(run_dir, "backup"), ignore_errors=True)  # NaN weights
            if self._features is not None:
                self._features.release(spec.run)
            return {**dataclasses.asdict(spec), "status": "failed",
                    "reason": f"{error} (learning rate {solver.learning_rate:g})"}
        weights = os.path.join("runs", spec.run, "final.weights.h5")
        with fileio.atomic_path(os.path.join(self.outdir, weights)) as tmp:
            model.save_weights(tmp)
        path = os.path.join(self.outdir, weights)
        record = {
            **dataclasses.asdict(spec),
            "status": "ok", "reason": None,
            "best_k": best_k_mean(result.val_history, e.best_k), "k": e.best_k,
            "final_val": result.val_history[-1][1], "val_history": result.val_history,
            "test_accuracy": self._evaluator(model, self.eval_batches(half, "test"))[0],
            "train_seconds": result.train_seconds,
            "images_per_second": result.images_per_second,
            "steps": solver.total_steps, "resumed_from_step": result.resumed_from_step,
            "cached_prefix": layer.name if layer is not None else None, **cache,
            "strategy": type(self.strategy).__name__,
            "replicas": self.strategy.num_replicas_in_sync,
            "dtype_policy": keras.config.dtype_policy().name,
            "num_classes": half.num_classes, "class_names": half.class_names,
            "weights": weights, "weights_bytes": os.path.getsize(path),
            "weights_sha256": file_digest(path),
        }
        shutil.rmtree(os.path.join(run_dir, "backup"), ignore_errors=True)
        if self._features is not None:
            self._features.release(spec.run)
        self._log_hparams(spec, record)
        return record

    def _log_hparams(self, spec, record):
        """One HParams session per run, so TensorBoard's HParams dashboard shows the grid."""
        from tensorboard.plugins.hparams import api as hparams  # noqa: PLC0415

        writer = tf.summary.create_file_writer(
            os.path.join(self.outdir, "tensorboard", spec.run, "hparams"))
        with writer.as_default():
            hparams.hparams({"treatment": spec.treatment, "n": spec.n, "split": spec.split,
                             "seed": spec.seed, "target": spec.target}, trial_id=spec.run)
            for metric in ("best_k", "final_val", "test_accuracy"):
                tf.summary.scalar(f"hparams/{metric}", record[metric], step=record["steps"])
        writer.close()

    def _run_dir(self, spec):
        """A run's checkpoint folder; a multi-worker follower starts from the chief's, so
        both resume a killed run at the same segment."""
        run_dir = os.path.join(self.outdir, "runs", spec.run)
        chief_dir = os.path.join(self.workdir, "runs", spec.run)
        if self.outdir != self.workdir and os.path.isdir(chief_dir):
            shutil.copytree(chief_dir, run_dir, dirs_exist_ok=True)
        return run_dir

    def _network(self, spec, base_record, num_classes):
        """The untrained network of a run: fresh base, or surgery on a trained/fresh base."""
        if spec.treatment == "base":
            return self.build_model(num_classes)
        if spec.treatment == "random":
            return surgery.transfer(self.build_model(num_classes), spec.n, "random_frozen")
        base = self.build_model(base_record["num_classes"])
        base.load_weights(os.path.join(self.workdir, base_record["weights"]))
        return surgery.transfer(base, spec.n, TREATMENT_SOURCE[spec.treatment][1],
                                num_classes=num_classes)

    def _inputs(self, model, half, spec, layer, base_record):
        """(model to train, train-data factory, validation batches, cache fields of the
        record), on the cached outputs of the frozen prefix up to `layer` when one is given.

        The features stay in memory when they fit --cache_budget_mb (kept per base, so the
        next n of the same base computes only its new blocks), else in a tf.data file cache
        under outdir/cache/<run>, removed when the run ends.
        """
        e, prep = self.experiment, self.preprocessing
        seed = spec.seed + e.seed_offset

        def full_train(skip):
            return self.train_batches(half, seed, skip)

        if layer is None:
            return model, full_train, self.eval_batches(half, "val"), {}
        started = time.perf_counter()
        if self._features is None:
            self._features = caching.FeatureStore(e.cache_budget_mb * 2**20,
                                                  os.path.join(self.outdir, "cache"))
        store, parts = self._features, {"train": (half.train_x, half.train_y),
                                        "val": (half.val_x, half.val_y)}
        batches = {part: data.make_dataset(x, y, prep, batch_size=caching.FEATURE_BATCH,
                                           training=False, cache=False)
                   for part, (x, y) in parts.items()}
        _, suffix = caching.split_model(model, layer)
        if store.fits(layer, len(half.train_y) + len(half.val_y)):
            key = (base_record["weights_sha256"], spec.split, spec.target) if base_record else None
            features = store.in_memory(model, layer, {part: ds.map(lambda x, _: x)
                                                      for part, ds in batches.items()}, key)

            def cached_train(skip):
                ds = data.gathered_batches(features["train"], half.train_y, e.batch_size,
                                           shuffle_seed=seed)
                return ds.repeat().skip(skip).prefetch(tf.data.AUTOTUNE)

            per_example = caching.feature_bytes(layer, 1)
            val = data.ArrayBatches(features["val"], half.val_y,
                                    max(EVAL_BATCH, CACHED_EVAL_BATCH_BYTES // per_example))
            storage = "memory"
        else:
            examples = store.on_file(model, layer, batches, spec.run)
            buffer = store.shuffle_buffer(layer, len(half.train_y))

            def cached_train(skip):
                ds = examples["train"].shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
                return ds.batch(e.batch_size).repeat().skip(skip).prefetch(tf.data.AUTOTUNE)

            val = examples["val"].batch(EVAL_BATCH).prefetch(tf.data.AUTOTUNE)
            storage = "file"
        cache = {"cache_storage": storage, "cache_seconds": time.perf_counter() - started}
        return suffix, cached_train, val, cache


@dataclasses.dataclass(frozen=True)
class StreamedHalf:
    """One half of a source too large for memory; its batches are streamed per use."""

    split: data.ClassSplit
    half: str

    @property
    def num_classes(self):
        return len(self.split.classes(self.half))

    @property
    def class_names(self):
        return self.split.half_names(self.half)


def _clock(seconds):
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s"
