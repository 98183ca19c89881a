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


def plan(experiment, split_names):
    """Every run of the study in execution order: all bases first, then the grid."""
    runs = [RunSpec(base_id(split, half, seed), "base", split, "", half, 0, seed)
            for split in split_names for seed in experiment.seeds for half in ("A", "B")]
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
        self.runs = plan(e, list(self.splits))
        return self

    def save_splits(self):
        for name, split in self.splits.items():
            split.save(os.path.join(self.workdir, "splits", name, "split.json"))

    def build_model(self, num_classes):
        e = self.experiment
        shape = (*self.preprocessing.image_size, self.preprocessing.channels)
        return models.build(e.arch, num_classes=num_classes, input_shape=shape,
                            widths=e.widths or None, weight_decay=e.weight_decay,
                            dropout=e.dropout)

    def half(self, split, half):
        key = (split, half)
        if key not in self._halves:
            e = self.experiment
            self._halves[key] = data.make_half_data(
                self.source, self.splits[split], half,
                validation_fraction=e.validation_fraction, seed=0,
                examples_per_class=e.examples_per_class or None,
                max_examples_per_class=e.max_examples_per_class or None)
        return self._halves[key]

    # ----- status ------------------------------------------------------------------------
    def finished(self):
        """Records of runs that need no (re)training: ok with intact weights, or failed."""
        done = {}
        for run_id, record in self.store.latest().items():
            if record["status"] == "failed":
                done[run_id] = record
            elif record["status"] == "ok" and self._weights_intact(record):
                done[run_id] = record
        return done

    def _weights_intact(self, record):
        path = os.path.join(self.workdir, record["weights"])
        if not os.path.exists(path) or os.path.getsize(path) != record["weights_bytes"]:
            self.log(f"weights of {record['run']} missing or truncated ({path}): redoing it")
            return False
        if file_digest(path) != record["weights_sha256"]:
            self.log(f"weights of {record['run']} corrupt (checksum of {path}): redoing it")
            return False
        return True

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
                record = self._skipped(spec, f"base {spec.base_run} did not finish")
                self.log(f"{position} skip {spec.run}: {record['reason']}")
            else:
                self.log(f"{position} start {spec.run} ({spec.label})")
                record = self.train_run(spec, base)
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
            self.store.append(record)
            done[spec.run] = record
        return done

    def _skipped(self, spec, reason):
        return {**dataclasses.asdict(spec), "status": "skipped", "reason": reason}

    def train_run(self, spec, base_record):
        """Builds, trains and evaluates one network; returns its record."""
        e = self.experiment
        half = self.half(spec.split, spec.target)
        run_dir = os.path.join(self.workdir, "runs", spec.run)
        keras.utils.set_random_seed((zlib.crc32(spec.run.encode()) + e.seed_offset) % 2**31)
        with self.strategy.scope():
            model = self._network(spec, base_record, half.num_classes)
        steps, every = training.plan_steps(len(half.train_y), e.batch_size, e.epochs,
                                           e.train_steps, e.eval_every)
        solver = training.Solver(e.learning_rate, e.momentum, steps, every, e.lr_decay_steps,
                                 e.bias_lr_multiplier)
        layer = (caching.cache_layer(model, spec.n)
                 if e.cache_frozen and spec.treatment in ("selffer", "transfer", "random")
                 and not self.preprocessing.augments else None)
        with self.strategy.scope():
            trainee, train_data, val_data = self._inputs(model, half, spec, layer)
            training.compile_model(trainee, solver)
        try:
            result = training.train(
                trainee, train_data, val_data, solver=solver, batch_size=e.batch_size,
                run_dir=run_dir, verbose=e.verbose,
                tensorboard_dir=os.path.join(self.workdir, "tensorboard", spec.run))
        except training.DivergedError as error:
            return {**dataclasses.asdict(spec), "status": "failed", "reason": str(error)}
        test_ds = data.make_dataset(half.test_x, half.test_y, self.preprocessing,
                                    batch_size=EVAL_BATCH, training=False, cache=False)
        weights = os.path.join("runs", spec.run, "final.weights.h5")
        with fileio.atomic_path(os.path.join(self.workdir, weights)) as tmp:
            model.save_weights(tmp)
        path = os.path.join(self.workdir, weights)
        record = {
            **dataclasses.asdict(spec),
            "status": "ok", "reason": None,
            "best_k": best_k_mean(result.val_history, e.best_k), "k": e.best_k,
            "final_val": result.val_history[-1][1], "val_history": result.val_history,
            "test_accuracy": training.evaluate_accuracy(model, test_ds),
            "train_seconds": result.train_seconds,
            "images_per_second": result.images_per_second,
            "steps": solver.total_steps, "resumed_from_step": result.resumed_from_step,
            "cached_prefix": layer.name if layer is not None else None,
            "strategy": type(self.strategy).__name__,
            "replicas": self.strategy.num_replicas_in_sync,
            "num_classes": half.num_classes, "class_names": half.class_names,
            "weights": weights, "weights_bytes": os.path.getsize(path),
            "weights_sha256": file_digest(path),
        }
        shutil.rmtree(os.path.join(run_dir, "backup"), ignore_errors=True)
        self._log_hparams(spec, record)
        return record

    def _log_hparams(self, spec, record):
        """One HParams session per run, so TensorBoard's HParams dashboard shows the grid."""
        from tensorboard.plugins.hparams import api as hparams  # noqa: PLC0415

        writer = tf.summary.create_file_writer(
            os.path.join(self.workdir, "tensorboard", spec.run, "hparams"))
        with writer.as_default():
            hparams.hparams({"treatment": spec.treatment, "n": spec.n, "split": spec.split,
                             "seed": spec.seed, "target": spec.target}, trial_id=spec.run)
            for metric in ("best_k", "final_val", "test_accuracy"):
                tf.summary.scalar(f"hparams/{metric}", record[metric], step=record["steps"])
        writer.close()

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

    def _inputs(self, model, half, spec, layer):
        """(model to train, train-data factory, validation dataset), cached prefix or not."""
        e, prep = self.experiment, self.preprocessing
        seed = spec.seed + e.seed_offset

        def full_train(skip):
            ds = data.make_dataset(half.train_x, half.train_y, prep, batch_size=e.batch_size,
                                   training=True, seed=seed)
            return ds.repeat().skip(skip)

        val = data.make_dataset(half.val_x, half.val_y, prep, batch_size=EVAL_BATCH,
                                training=False)
        if layer is None:
            return model, full_train, val
        prefix, suffix = caching.split_model(model, layer)
        features = {}
        for name, (x, y) in {"train": (half.train_x, half.train_y),
                             "val": (half.val_x, half.val_y)}.items():
            plain = data.make_dataset(x, y, prep, batch_size=EVAL_BATCH, training=False,
                                      cache=False)
            features[name] = (prefix.predict(plain.map(lambda i, _: i), verbose=0), y)

        def cached_train(skip):
            x, y = features["train"]
            ds = tf.data.Dataset.from_tensor_slices((x, y.astype(np.int64)))
            ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
            return ds.batch(e.batch_size).repeat().skip(skip).prefetch(tf.data.AUTOTUNE)

        val_x, val_y = features["val"]
        cached_val = tf.data.Dataset.from_tensor_slices((val_x, val_y.astype(np.int64)))
        return suffix, cached_train, cached_val.batch(EVAL_BATCH)


def _clock(seconds):
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s"
