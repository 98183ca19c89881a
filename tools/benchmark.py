"""How fast kerastransfer trains, against plain Keras, PyTorch and the machine's own limit.

Rows (all but row 7 measured in this one process, on the same model and data, so the ratios
hold on a noisy machine):
  1. the machine's float32 peak: a large TensorFlow matmul, GFLOP/s (best of several);
  2. training FLOPs per image of the default model, from its layer shapes (formula below);
  3. plain `model.fit` on the half's numpy arrays, batch 128, default Keras settings;
  4. the same model trained with PyTorch on the CPU (skipped with a note without torch);
  5. kerastransfer's training path (`training.train` on the study's data and solver), and
     its ratios to rows 3 and 4; 5b: the same with the study's validation every
     `eval_every` steps;
  6. AnB runs at n = 3, 5, 7 (`Study.train_run`), with and without frozen-prefix caching;
     the cached images/s pays for computing the features (block by block, as the study);
  7. (full run only) the whole default study in a subprocess: wall time, its floor (the sum
     over runs of training FLOPs / row 1), their ratio, and the child's peak resident memory;
     7b: (on a CPU with bfloat16 instructions) the same study in mixed_bfloat16, and the
     precision test of its networks against row 7's (docs/statistics.md, "Precision");
  8. (full run only) the study's first split (one seed, A->B) through kerastransfer in a
     subprocess, analysis and export included, then the same networks trained by hand in a
     subprocess (`grid_by_hand`: the loop a user writes with `set_weights`, `trainable` and
     `model.fit`), and the ratio of their wall times.
Rows 3-5 time `steps` training steps and one pass over the validation images, after a
warm-up call (tracing excluded), repeated `repeats` times in turn; each keeps its best
repetition (the least disturbed by other load).

FLOPs: counted from the layer shapes by `kerastransfer.flops` (its docstring gives the
formula).

Usage:
    python tools/benchmark.py --quick            # rows 1-6, a few minutes
    python tools/benchmark.py --studies_only     # rows 1-2, 7 and 8
    python tools/benchmark.py --write_md=BENCHMARKS.md   # all rows and levers; rewrites it
"""

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_FLAGFILE = os.path.join(REPO, "configs", "fashion_mnist.flags")
FROZEN_N = (3, 5, 7)


# ----- machine ------------------------------------------------------------------------------
def cpu_model():
    """The CPU's model name from /proc/cpuinfo (platform's guess elsewhere)."""
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def other_load(seconds=1.0):
    """Load averages and the processes other than this benchmark (and its children) that
    used over 5% of a core during `seconds` (from /proc, sampled twice)."""
    mine = {os.getpid()}

    def ticks():
        found = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            with contextlib.suppress(OSError, ValueError, IndexError):
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                found[int(pid)] = (int(fields[1]), int(fields[11]) + int(fields[12]), command)
        return found

    before = ticks()
    time.sleep(seconds)
    after = ticks()
    hz = os.sysconf("SC_CLK_TCK")
    busy = []
    for pid, (ppid, used, command) in after.items():
        if pid in mine or ppid in mine or pid not in before or not command:
            continue
        share = (used - before[pid][1]) / hz / seconds * 100
        if share >= 5:
            busy.append({"cpu_percent": round(share), "command": command[:110]})
    busy.sort(key=lambda p: -p["cpu_percent"])
    return {
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "busy": busy[:6],
        "method": f"CPU over {seconds:g} s",
    }


def peak_gflops(size=2048, repeats=20, seconds=0.25):
    """Float32 matmul throughput in GFLOP/s (2 * size**3 per product), best of `repeats`
    short bursts: on a shared machine the best burst is the one least disturbed."""
    import tensorflow as tf  # noqa: PLC0415

    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    product = tf.function(lambda a, b: tf.reduce_sum(tf.matmul(a, b)))
    product(a, b).numpy()
    start = time.perf_counter()
    product(a, b).numpy()
    count = max(1, int(seconds / max(time.perf_counter() - start, 1e-6)))
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(count):
            product(a, b).numpy()
        best = max(best, count * 2 * size**3 / (time.perf_counter() - start))
    return best / 1e9


# ----- the study's pieces --------------------------------------------------------------------
def load_experiment(flagfile, workdir, **overrides):
    """The Experiment a flagfile describes, as the runner would build it."""
    from kerastransfer import config  # noqa: PLC0415
    from kerastransfer import flags as kt_flags  # noqa: PLC0415

    kt_flags.FLAGS.unparse_flags()
    kt_flags.FLAGS(["benchmark", f"--flagfile={flagfile}", f"--workdir={workdir}"])
    return config.from_flags(kt_flags.FLAGS).replace(**overrides)


@dataclasses.dataclass
class Setup:
    """What every row trains: the study's first half (A of its first split) and solver."""

    experiment: object
    study: object
    half: object
    workdir: str

    @property
    def x(self):
        """The half's training images as the model sees them (float32, preprocessed)."""
        return self.study.preprocessing.eval_tf(self.half.train_x).numpy()

    @property
    def val_x(self):
        return self.study.preprocessing.eval_tf(self.half.val_x).numpy()

    def build(self):
        return self.study.build_model(self.half.num_classes)


def make_setup(flagfile, workdir):
    from kerastransfer.study.study import Study  # noqa: PLC0415

    experiment = load_experiment(
        flagfile, workdir, splits=load_experiment(flagfile, workdir).data.splits[:1]
    )
    study = Study.load(experiment, log=lambda message: None)
    split = next(iter(study.splits))
    return Setup(experiment, study, study.halves.half(split, "A"), workdir)


def best_of(rates):
    return max(rates) if rates else None


# ----- rows 3-5: three ways to train the same network -------------------------------------
# Each `run(steps)` trains `steps` batches, then measures accuracy on the half's validation
# images once (as `fit(..., validation_data=...)` does after an epoch), and returns the
# trained images per second of the whole call.
class PlainKeras:
    """Row 3: what a user writes: compile, then `fit` on numpy arrays with defaults."""

    name = "plain Keras model.fit"

    def __init__(self, setup, steps):
        import keras  # noqa: PLC0415

        e = setup.experiment
        keras.utils.set_random_seed(0)
        self.model = setup.build()
        self.model.compile(
            optimizer=keras.optimizers.SGD(e.solver.learning_rate, momentum=e.solver.momentum),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        self.x, self.y, self.batch = setup.x, setup.half.train_y, e.solver.batch_size
        self.val = (setup.val_x, setup.half.val_y)

    def run(self, steps):
        count = steps * self.batch
        start = time.perf_counter()
        self.model.fit(
            self.x[:count],
            self.y[:count],
            batch_size=self.batch,
            epochs=1,
            validation_data=self.val,
            verbose=0,
        )
        return count / (time.perf_counter() - start)


class TorchPeer:
    """Row 4: the same layers, widths, batch, optimizer and dropout in PyTorch (CPU)."""

    name = "PyTorch (CPU)"

    def __init__(self, setup, steps):
        import torch  # noqa: PLC0415  (ImportError: the caller skips the row)
        from torch import nn  # noqa: PLC0415

        e = setup.experiment
        torch.manual_seed(0)
        keras_model = setup.build()
        layers, channels = [], setup.x.shape[-1]
        for layer in keras_model.layers[1:]:
            kind = type(layer).__name__
            if kind == "Conv2D":
                size = layer.kernel_size[0]
                layers += [nn.Conv2d(channels, layer.filters, size, padding=size // 2), nn.ReLU()]
                channels = layer.filters
            elif kind == "MaxPooling2D":
                layers.append(nn.MaxPool2d(layer.pool_size[0], layer.strides[0], padding=1))
            elif kind == "Flatten":
                layers.append(nn.Flatten())
            elif kind == "Dense":
                layers.append(nn.LazyLinear(layer.units))
                if layer.name != keras_model.layers[-1].name:
                    layers.append(nn.ReLU())
            elif kind == "Dropout":
                layers.append(nn.Dropout(layer.rate))
        self.model = nn.Sequential(*layers)
        self.x = torch.from_numpy(setup.x.transpose(0, 3, 1, 2).copy())
        self.y = torch.from_numpy(setup.half.train_y)
        self.val_x = torch.from_numpy(setup.val_x.transpose(0, 3, 1, 2).copy())
        self.val_y = torch.from_numpy(setup.half.val_y)
        self.model(self.x[:2])  # materializes the lazy layers
        decay = [p for name, p in self.model.named_parameters() if name.endswith("weight")]
        rest = [p for name, p in self.model.named_parameters() if not name.endswith("weight")]
        self.optimizer = torch.optim.SGD(
            [{"params": decay, "weight_decay": e.solver.weight_decay}, {"params": rest}],
            lr=e.solver.learning_rate,
            momentum=e.solver.momentum,
        )
        self.batch, self.torch = e.solver.batch_size, torch
        self.check = keras_model.count_params(), sum(p.numel() for p in self.model.parameters())

    def run(self, steps):
        torch, batch = self.torch, self.batch
        loss_fn = torch.nn.functional.cross_entropy
        order = torch.randperm(len(self.y))
        self.model.train()
        start = time.perf_counter()
        for step in range(steps):
            index = order[(step * batch) % (len(order) - batch) :][:batch]
            self.optimizer.zero_grad(set_to_none=True)
            loss_fn(self.model(self.x[index]), self.y[index]).backward()
            self.optimizer.step()
        self.model.eval()
        with torch.no_grad():
            correct = sum(
                int((self.model(x).argmax(1) == y).sum())
                for x, y in zip(self.val_x.split(512), self.val_y.split(512))
            )
        self.accuracy = correct / len(self.val_y)
        return steps * batch / (time.perf_counter() - start)


class KerasTransfer:
    """Row 5: `training.train` on the study's datasets and solver, as `Study.train_run` calls
    it (compile_model, checkpoints, TensorBoard), validating once at the end like rows 3-4;
    with `study_schedule`, every eval_every steps as the study's runs do."""

    name = "kerastransfer training.train"

    def __init__(self, setup, steps, study_schedule=False):
        import keras  # noqa: PLC0415

        from kerastransfer import training  # noqa: PLC0415

        e, half = setup.experiment, setup.half
        self.every = training.plan_steps(
            len(half.train_y),
            e.solver.batch_size,
            e.solver.epochs,
            e.solver.train_steps,
            e.solver.eval_every,
        )[1]
        self.e, self.training, self.workdir = e, training, setup.workdir
        self.study_schedule = study_schedule
        if study_schedule:
            self.name = f"{self.name}, validation every {self.every} steps (the study's)"
        keras.utils.set_random_seed(0)
        self.model = setup.build()
        training.compile_model(self.model, self._solver(self.every, self.every))
        self.train_data = lambda skip: setup.study.halves.train_batches(
            half, 0, skip, e.solver.batch_size
        )
        self.val_data = setup.study.halves.eval_batches(half, "val")
        self.evaluator = training.Evaluator()
        self.calls = 0

    def _solver(self, steps, every):
        """The study's solver for `steps` steps, validating every `every` (which divides it)."""
        return self.training.Solver.from_config(
            self.e.solver, 0, train_steps=steps, eval_every=every
        )

    def run(self, steps):
        """Trains `steps` (with the study's schedule: whole segments) in a fresh folder."""
        self.calls += 1
        run_dir = os.path.join(self.workdir, "row5", f"{id(self)}-{self.calls}")
        if self.study_schedule:
            steps = max(1, steps // self.every) * self.every
        solver = self._solver(steps, self.every if self.study_schedule else steps)
        result = self.training.train(
            self.model,
            self.train_data,
            self.val_data,
            solver=solver,
            batch_size=self.e.solver.batch_size,
            run_dir=run_dir,
            tensorboard_dir=run_dir,
            evaluator=self.evaluator,
        )
        shutil.rmtree(run_dir, ignore_errors=True)
        return result.images_per_second


def compare_trainers(setup, steps, repeats, log):
    """Rows 3-5: each trainer warmed up once, then `repeats` rounds of `steps` steps in turn.

    Returns {name: {"rates": [...], "best": ...}} and a note per skipped trainer.
    """
    trainers, notes = [], {}
    for kind in (PlainKeras, TorchPeer, KerasTransfer):
        try:
            trainers.append(kind(setup, steps))
        except ImportError as error:
            notes[kind.name] = f"skipped: {error.name} is not installed (pip install -e '.[bench]')"
    trainers.append(KerasTransfer(setup, steps, study_schedule=True))
    for trainer in trainers:
        trainer.run(trainer.every if isinstance(trainer, KerasTransfer) else 8)  # warm-up
    rates = {trainer.name: [] for trainer in trainers}
    for round_ in range(repeats):
        for trainer in trainers:
            rates[trainer.name].append(trainer.run(steps))
            log(f"  round {round_ + 1}: {trainer.name}: {rates[trainer.name][-1]:.0f} img/s")
    return {name: {"rates": r, "best": best_of(r)} for name, r in rates.items()}, notes


# ----- levers: what else could make the training path faster ------------------------------
class Lever(KerasTransfer):
    """Row 5b's trainer changed in one way: compile options or the validation batch."""

    def __init__(self, setup, steps, name, compile_options=None, eval_batch=None, precision=None):
        from kerastransfer import data  # noqa: PLC0415
        from kerastransfer.training import strategies  # noqa: PLC0415

        if precision:  # the model is built under the policy; the others stay float32
            strategies.set_precision(precision)
        try:
            super().__init__(setup, steps, study_schedule=True)
        finally:
            strategies.set_precision("none")
        self.name = name
        if compile_options:
            self.model.compile(
                optimizer=self.model.optimizer,
                loss=self.model.loss,
                metrics=["accuracy"],
                **compile_options,
            )
        if eval_batch:
            half = setup.half
            self.val_data = data.ArrayBatches(
                half.val_x, half.val_y, eval_batch, transform=setup.study.preprocessing.eval_tf
            )


def compare_levers(setup, steps, repeats, log):
    """Row 5b's trainer against itself with one lever changed, in turn: best images/s and
    CPU microseconds per trained image (process time, which other load disturbs less)."""
    every = KerasTransfer(setup, steps).every
    trainers = [
        Lever(setup, steps, f"as the study trains (row 5b; steps_per_execution={every})"),
        Lever(setup, steps, "steps_per_execution=1 (Keras's default)", {"steps_per_execution": 1}),
        Lever(setup, steps, "jit_compile=True (XLA)", {"jit_compile": True}),
        Lever(setup, steps, "validation batch 1500 instead of 512", eval_batch=1500),
        Lever(
            setup,
            steps,
            "mixed_bfloat16, fc6/fc7 in float32 (--mixed_precision=mixed_bfloat16)",
            precision="mixed_bfloat16",
        ),
    ]
    for trainer in trainers:
        trainer.run(trainer.every)
    found = {trainer.name: {"rates": [], "cpu_us": []} for trainer in trainers}
    for _ in range(repeats):
        for trainer in trainers:
            cpu = time.process_time()
            found[trainer.name]["rates"].append(trainer.run(steps))
            found[trainer.name]["cpu_us"].append(
                (time.process_time() - cpu) / (steps * trainer.e.solver.batch_size) * 1e6
            )
            log(f"  {trainer.name}: {found[trainer.name]['rates'][-1]:.0f} img/s")
    found["input pipeline"] = input_levers(setup, repeats, log)
    found["compiled-model reuse"] = reuse_lever(setup, repeats, log)
    found["steps_per_execution on a cached suffix"] = suffix_lever(setup, every, repeats, log)
    found["runs in flight"] = flight_lever(setup, 1, log)
    return found


def input_levers(setup, repeats, log):
    """Seconds of one run's segments (fit, validating after each segment as the study does)
    three ways, in turn, best of `repeats`: as the study (training batches gathered from
    memory by shuffled index, validation by `training.Evaluator`), with the training batches
    from a shuffle buffer over all examples (`data.make_dataset`), and with Keras's own
    validation (`fit(validation_data=...)` on a cached tf.data pipeline)."""
    import keras  # noqa: PLC0415

    from kerastransfer import data, training  # noqa: PLC0415

    e, half, prep = setup.experiment, setup.half, setup.study.preprocessing
    steps, every = training.plan_steps(
        len(half.train_y),
        e.solver.batch_size,
        e.solver.epochs,
        e.solver.train_steps,
        e.solver.eval_every,
    )
    model = setup.build()
    solver = training.Solver(e.solver.learning_rate, e.solver.momentum, steps, every)
    training.compile_model(model, solver)
    ours, evaluator = setup.study.halves.eval_batches(half, "val"), training.Evaluator()

    class Validate(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            evaluator(self.model, ours)

    gathered = setup.study.halves.train_batches(half, 0, 0, e.solver.batch_size)
    buffered = data.make_dataset(
        half.train_x, half.train_y, prep, batch_size=e.solver.batch_size, training=True, seed=0
    ).repeat()
    keras_val = data.make_dataset(
        half.val_x, half.val_y, prep, batch_size=data.EVAL_BATCH, training=False
    )
    ways = {
        "as the study": dict(x=gathered, callbacks=[Validate()]),
        "training batches from a shuffle buffer": dict(x=buffered, callbacks=[Validate()]),
        "validation by Keras's evaluate": dict(x=gathered, validation_data=keras_val),
    }
    found = {name: [] for name in ways}
    for round_ in range(repeats + 1):  # the first round traces
        for name, options in ways.items():
            start = time.perf_counter()
            model.fit(epochs=steps // every, steps_per_epoch=every, verbose=0, **options)
            if round_:
                found[name].append(time.perf_counter() - start)
    best = {name: min(times) for name, times in found.items()}
    log(f"  one run's segments: {best}")
    return {"run_seconds": best, "segments": steps // every, "images": len(half.val_y)}


def suffix_lever(setup, every, repeats, log):
    """Milliseconds per step of the n=5 suffix (fc6-fc8 on 512 cached features per image)
    trained for 9 segments, with one segment per graph call and with Keras's one step."""
    import numpy as np  # noqa: PLC0415

    from kerastransfer import data, surgery, training  # noqa: PLC0415
    from kerastransfer.training import caching  # noqa: PLC0415

    labels = setup.half.train_y
    per_step = {}
    for spe in (every, 1):
        model = surgery.transfer(setup.build(), 5, "frozen")
        layer = caching.cache_layer(model, 5)
        features = np.random.RandomState(0).rand(len(labels), *layer.output.shape[1:])
        batches = data.gathered_batches(
            features.astype("float32"), labels, setup.experiment.solver.batch_size, shuffle_seed=0
        )
        batches = batches.repeat()
        suffix = caching.split_model(model, layer)[1]
        training.compile_model(suffix, training.Solver(0.01, 0.9, 9 * every, every))
        suffix.compile(
            optimizer=suffix.optimizer,
            loss=suffix.loss,
            metrics=["accuracy"],
            steps_per_execution=spe,
        )
        suffix.fit(batches, epochs=1, steps_per_epoch=every, verbose=0)  # traces
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            suffix.fit(batches, epochs=9, steps_per_epoch=every, verbose=0)
            times.append((time.perf_counter() - start) / (9 * every) * 1e3)
        per_step[spe] = min(times)
        log(f"  cached n=5 suffix, steps_per_execution={spe}: {per_step[spe]:.2f} ms/step")
    return {"ms_per_step": per_step}


def reuse_lever(setup, repeats, log):
    """Seconds of `Study.train_run` for base B right after base A, on A's compiled model
    (reused) and on a model of its own (a fresh study: traced anew), in turn."""
    from kerastransfer.study.study import Study  # noqa: PLC0415

    seconds = {"reused": [], "fresh": []}
    for round_ in range(repeats):
        for kind in ("reused", "fresh"):
            workdir = os.path.join(setup.workdir, f"reuse_{kind}_{round_}")
            study = Study.load(setup.experiment.replace(workdir=workdir), log=lambda message: None)
            base_a, base_b = study.runs[:2]
            if kind == "reused":
                study.train_run(base_a, None)
            start = time.perf_counter()
            study.train_run(base_b, None)
            seconds[kind].append(time.perf_counter() - start)
            log(f"  base B run, {kind} compiled model: {seconds[kind][-1]:.1f} s")
    return {"seconds": seconds, "best": {k: min(v) for k, v in seconds.items()}}


# Runs of the plan the runs-in-flight lever trains: both bases, then the first target's
# five runs at n=1 (two of them fine-tuned, all of them on the full network).
FLIGHT_RUNS = 7


def flight_lever(setup, repeats, log):
    """Wall seconds of the runner training the plan's first FLIGHT_RUNS runs one at a time,
    then two at once (--runs_in_flight=2), each in a fresh study, in turn; and whether both
    ways give the same test accuracies."""
    from kerastransfer.study.runner import Runner  # noqa: PLC0415
    from kerastransfer.study.study import Study  # noqa: PLC0415
    from kerastransfer.workdir.results import ResultStore  # noqa: PLC0415

    seconds, accuracies = {1: [], 2: []}, {}
    for round_ in range(repeats):
        for width in (1, 2):
            workdir = os.path.join(setup.workdir, f"flight_{width}_{round_}")
            experiment = setup.experiment.replace(workdir=workdir, runs_in_flight=width)
            study = Study.load(experiment, log=lambda message: None)
            study.runs = study.runs[:FLIGHT_RUNS]
            start = time.perf_counter()
            done = Runner(study, ResultStore(workdir), lambda message: None).run_all()
            seconds[width].append(time.perf_counter() - start)
            accuracies[width] = {run: r["test_accuracy"] for run, r in done.items()}
            log(f"  first {FLIGHT_RUNS} runs, {width} at a time: {seconds[width][-1]:.1f} s")
    return {
        "runs": FLIGHT_RUNS,
        "seconds": seconds,
        "best": {width: min(v) for width, v in seconds.items()},
        "same_results": accuracies[1] == accuracies[2],
    }


# ----- row 6: frozen runs with and without caching -----------------------------------------
def frozen_runs(setup, layers, repeats, log):
    """AnB runs frozen at each n (the study's solver), with and without caching, in turn.

    Like the study, the cached runs of one base continue its features block by block: n=3
    computes blocks 1-3 from the images, n=5 only blocks 4-5 on n=3's features, and so on.
    Cached images/s counts that feature pass (trained images / (feature seconds + train
    seconds)); `train_only` leaves it out. The base is an untrained network (the speed is
    the same).
    """
    from kerastransfer.study.study import Study  # noqa: PLC0415
    from kerastransfer.workdir.provenance import file_digest  # noqa: PLC0415

    studies, bases = {}, {}
    for cached in (False, True):
        experiment = setup.experiment.replace(
            cache_frozen=cached,
            layers=tuple(layers),
            treatments=("transfer",),
            workdir=os.path.join(setup.workdir, f"row6_{cached}"),
        )
        study = studies[cached] = Study.load(experiment, log=lambda message: None)
        base_spec = next(s for s in study.runs if s.treatment == "base" and s.target == "A")
        base = setup.build()
        weights = os.path.join("runs", base_spec.run, "final.weights.h5")
        os.makedirs(os.path.dirname(os.path.join(study.workdir, weights)))
        base.save_weights(os.path.join(study.workdir, weights))
        bases[cached] = {
            "num_classes": setup.half.num_classes,
            "weights": weights,
            "weights_sha256": file_digest(os.path.join(study.workdir, weights)),
        }
    results = {n: {False: [], True: []} for n in layers}
    for _ in range(repeats):
        for n in layers:
            for cached, study in studies.items():
                spec = next(s for s in study.runs if s.treatment == "transfer" and s.n == n)
                shutil.rmtree(os.path.join(study.workdir, "runs", spec.run), ignore_errors=True)
                record = study.train_run(spec, bases[cached])
                trained = record["steps"] * setup.experiment.solver.batch_size
                seconds = record["train_seconds"] + record.get("cache_seconds", 0.0)
                results[n][cached].append(
                    {
                        "images_per_second": trained / seconds,
                        "train_only": record["images_per_second"],
                        "cache_seconds": record.get("cache_seconds", 0.0),
                        "cached_prefix": record["cached_prefix"],
                    }
                )
                log(
                    f"  n={n} {'cached' if cached else 'uncached'}: "
                    f"{results[n][cached][-1]['images_per_second']:.0f} img/s"
                )
    rows = {}
    for n, found in results.items():
        best = {cached: max(r, key=lambda x: x["images_per_second"]) for cached, r in found.items()}
        rows[n] = {
            "uncached": best[False],
            "cached": best[True],
            "ratio": best[True]["images_per_second"] / best[False]["images_per_second"],
            "ratio_train_only": best[True]["train_only"] / best[False]["train_only"],
        }
    return rows


# ----- row 7: the default study ------------------------------------------------------------
def timed_subprocess(command, log):
    """Runs `command` from the repository; (wall seconds, its stdout, its peak resident
    memory in bytes, sampled every 0.5 s). Raises on failure."""
    log(f"  {' '.join(command)}")
    peak = 0
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        child = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=err, text=True)
        while child.poll() is None:
            peak = max(peak, memory_high_water(child.pid))
            time.sleep(0.5)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if child.returncode != 0:
        what = " ".join(command[1:3])
        raise RuntimeError(f"{what} failed ({child.returncode}):\n{stderr[-3000:]}")
    return wall, stdout, peak


def memory_high_water(pid):
    """Peak resident memory (bytes) of process `pid` since its exec (VmHWM), 0 once gone.

    Not the rusage of wait4 or RUSAGE_CHILDREN: a child started by fork or vfork carries
    this process's own high-water mark through its exec, so a study started from the
    benchmark would report the benchmark's peak whenever that is higher."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return 0


def run_study(flagfile, workdir, log, *flags):
    """Runs the study (with `flags` added) in a subprocess; wall seconds, its peak RSS
    (bytes) and its stdout."""
    wall, stdout, peak = timed_subprocess(
        [
            sys.executable,
            "-m",
            "kerastransfer.run",
            f"--flagfile={flagfile}",
            f"--workdir={workdir}",
            *flags,
        ],
        log,
    )
    return wall, peak, stdout


def study_floor(flagfile, workdir, records):
    """Training FLOPs of every finished run of a study.

    Bases and fine-tuned runs train every layer each step. Frozen runs (selffer, transfer,
    random) compute their frozen prefix once per training image, as caching does, and the
    layers above it each step.
    """
    from kerastransfer import surgery, treatments  # noqa: PLC0415
    from kerastransfer.flops import forward_flops, training_flops  # noqa: PLC0415
    from kerastransfer.study.study import Study  # noqa: PLC0415
    from kerastransfer.training import caching  # noqa: PLC0415

    study = Study.load(load_experiment(flagfile, workdir), log=lambda m: None)
    total = 0.0
    for record in records:
        if record["status"] != "ok":
            continue
        model = study.build_model(record["num_classes"])
        images = record["steps"] * study.experiment.solver.batch_size
        if record["treatment"] != treatments.BASE and treatments.get(record["treatment"]).frozen:
            model = surgery.transfer(model, record["n"], "frozen")
            layer = caching.cache_layer(model, record["n"])
            examples = len(study.halves.half(record["split"], record["target"]).train_y)
            total += examples * forward_flops(model, layer)
            total += images * training_flops(model, after=layer)
        else:
            total += images * training_flops(model)
    return total


# What the precision test reads of a study's records: the pairing, test accuracy, findings.
RECORD_FIELDS = (
    "run",
    "treatment",
    "split",
    "source",
    "target",
    "n",
    "seed",
    "status",
    "best_k",
    "test_accuracy",
)


def study_row(flagfile, peak, log, *flags):
    """Row 7: the default study (with `flags` added), timed, with its FLOP floor, its
    precision, its bases' test accuracies on random:0 and its records (RECORD_FIELDS)."""
    workdir = tempfile.mkdtemp(prefix="kt-benchmark-study-")
    try:
        wall, rss, stdout = run_study(flagfile, workdir, log, *flags)
        with open(os.path.join(workdir, "results.jsonl")) as f:
            records = [json.loads(line) for line in f if line.strip()]
        floor = study_floor(flagfile, workdir, records) / (peak * 1e9)
        bases = {
            r["target"]: r["test_accuracy"]
            for r in records
            if r["treatment"] == "base" and r["split"] == "random0"
        }
        return {
            "flags": list(flags),
            "wall_seconds": wall,
            "floor_seconds": floor,
            "ratio": wall / floor,
            "peak_rss_bytes": rss,
            "networks": len(records),
            "ok": sum(r["status"] == "ok" for r in records),
            "precision": precisions(records),
            "train_seconds": sum(r.get("train_seconds", 0.0) for r in records),
            "cache_seconds": sum(r.get("cache_seconds", 0.0) for r in records),
            "base_accuracy": bases,
            "base_accuracy_mean": sum(bases.values()) / max(len(bases), 1),
            "records": [{name: r.get(name) for name in RECORD_FIELDS} for r in records],
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def precisions(records):
    """The dtype policies the finished runs trained in, sorted."""
    return sorted({r["dtype_policy"] for r in records if r["status"] == "ok"})


def mean_by_treatment(records):
    """Mean test accuracy of the finished runs, per treatment."""
    accuracies = {}
    for record in records:
        if record["status"] == "ok":
            accuracies.setdefault(record["treatment"], []).append(record["test_accuracy"])
    return {name: sum(values) / len(values) for name, values in accuracies.items()}


def precision_change(study, float32):
    """What a precision did against the same study in float32: the precision test of their
    networks (kerastransfer.analysis.precision), the speed-up and float32's peak memory."""
    from kerastransfer.analysis.precision import precision_test  # noqa: PLC0415

    return {
        "test": precision_test(study["records"], float32["records"]),
        "speedup": float32["wall_seconds"] / study["wall_seconds"],
        "float32_peak_rss_bytes": float32["peak_rss_bytes"],
    }


def interval_text(interval, confidence):
    """ "90% CI [-2.94, +0.60]", or why there is none."""
    if interval["ci"] is None:
        return f"no CI ({interval['why']})"
    low, high = interval["ci"]
    return f"{confidence:.0%} CI [{low:+.2f}, {high:+.2f}]"


def precision_summary(test):
    """The precision test in a line: mean paired difference, its CI, networks, verdict."""
    overall = test["overall"]
    mean = "-" if overall["mean"] is None else f"{overall['mean']:+.2f}"
    return (
        f"mean paired difference {mean} points, {interval_text(overall, test['confidence'])} "
        f"over {overall['networks']} networks: {'passed' if test['passed'] else 'failed'}"
    )


def precision_lines(test):
    """The precision test in full: overall, per treatment, findings changed, the largest
    paired difference and the verdict with every reason it failed."""
    changed = ", ".join(
        f"{number} {c['float32']} -> {c['candidate']}"
        for number, c in test["findings_changed"].items()
    )
    lines = [f"precision test (row 7b - row 7, test accuracy): {precision_summary(test)}"]
    lines += [
        f"  {name}: mean {t['mean']:+.2f}, {interval_text(t, test['confidence'])}, "
        f"{t['networks']} networks (bound +-{t['bound']:g})"
        for name, t in test["treatments"].items()
    ]
    lines.append(f"  findings that changed status: {changed or 'none'}")
    if test["largest"]:
        lines.append(
            f"  largest paired difference: {test['largest']['run']} "
            f"{test['largest']['points']:+.2f} points"
        )
    lines.append(
        "  verdict: at parity"
        if test["passed"]
        else "  verdict: not at parity: " + "; ".join(test["why"])
    )
    return lines


# ----- row 8: the study against the same networks trained by hand ---------------------------
def grid_by_hand(flagfile, workdir):
    """Row 8's baseline: the first split's networks (the study's treatments and layers, one
    seed, A->B) trained the way the Keras transfer-learning guide suggests, in the loop a
    user writes: build, `set_weights` on the copied layers, `trainable = False` on the
    frozen ones, `compile`, `fit` on numpy arrays, `evaluate` on the test images. Only the
    architecture and the data come from kerastransfer. Returns mean test accuracy per
    treatment and the number of networks."""
    import keras  # noqa: PLC0415

    from kerastransfer import surgery  # noqa: PLC0415

    setup = make_setup(flagfile, workdir)
    e, study = setup.experiment, setup.study
    split = next(iter(study.splits))
    arrays = {}
    for name in ("A", "B"):
        half = study.halves.half(split, name)
        prep = study.preprocessing.eval_tf
        arrays[name] = (
            prep(half.train_x).numpy(),
            half.train_y,
            prep(half.test_x).numpy(),
            half.test_y,
        )

    def train(model, half):
        x, y, test_x, test_y = arrays[half]
        steps = -(-len(y) * int(e.solver.epochs) // e.solver.batch_size)
        decay = e.solver.lr_decay_steps or max(1, round(steps * 100 / 450))
        boundaries = list(range(decay, steps, decay))
        rates = [e.solver.learning_rate * 0.1**i for i in range(len(boundaries) + 1)]
        schedule = keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, rates)
        model.compile(
            optimizer=keras.optimizers.SGD(schedule, momentum=e.solver.momentum),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        model.fit(x, y, batch_size=e.solver.batch_size, epochs=int(e.solver.epochs), verbose=0)
        return model.evaluate(test_x, test_y, batch_size=512, verbose=0)[1]

    def build(half):
        return study.build_model(study.halves.half(split, half).num_classes)

    accuracy, bases = {}, {}
    for half in ("A", "B"):
        keras.utils.set_random_seed(0)
        bases[half] = build(half)
        accuracy.setdefault("base", []).append(train(bases[half], half))
    for n in e.grid.layers:
        for treatment in e.grid.treatments:
            keras.utils.set_random_seed(n)
            model = build("B")
            source = {"selffer": "B", "selffer_ft": "B", "transfer": "A", "transfer_ft": "A"}
            for layer in surgery.block_layers(model, n):
                if treatment in source:
                    layer.set_weights(bases[source[treatment]].get_layer(layer.name).get_weights())
                layer.trainable = treatment.endswith("_ft")
            accuracy.setdefault(treatment, []).append(train(model, "B"))
    return {
        "networks": sum(len(values) for values in accuracy.values()),
        "mean_test_accuracy": {name: sum(v) / len(v) for name, v in accuracy.items()},
    }


def by_hand_row(flagfile, log):
    """Row 8: the first split of the study through kerastransfer (`--mode=all`: its analysis
    and export included), then the same networks by hand (`grid_by_hand`), each in its own
    subprocess from start-up to exit, one after the other."""
    workdir = tempfile.mkdtemp(prefix="kt-benchmark-grid-")
    try:
        experiment = load_experiment(flagfile, workdir)
        split, seed = experiment.data.splits[0], experiment.grid.seeds[0]
        ours, _, _ = run_study(
            flagfile,
            os.path.join(workdir, "study"),
            log,
            f"--splits={split}",
            "--directions=AB",
            f"--seeds={seed}",
        )
        with open(os.path.join(workdir, "study", "results.jsonl")) as f:
            records = [json.loads(line) for line in f if line.strip()]
        hand, stdout, _ = timed_subprocess(
            [
                sys.executable,
                os.path.abspath(__file__),
                "--grid_by_hand",
                f"--flagfile={flagfile}",
                f"--json={os.path.join(workdir, 'by_hand.json')}",
            ],
            log,
        )
        with open(os.path.join(workdir, "by_hand.json")) as f:
            by_hand = json.load(f)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "split": split,
        "networks": len(records),
        "package_seconds": ours,
        "by_hand_seconds": hand,
        "by_hand_networks": by_hand["networks"],
        "ratio": hand / ours,
        "package_accuracy": mean_by_treatment(records),
        "package_precision": precisions(records),
        "by_hand_accuracy": by_hand["mean_test_accuracy"],
    }


# ----- the whole benchmark -----------------------------------------------------------------
def run_benchmark(
    quick=False,
    flagfile=DEFAULT_FLAGFILE,
    steps=None,
    repeats=None,
    study=None,
    levers=None,
    trainers=True,
    log=print,
):
    """Measures rows 1-2, rows 3-6 (unless `trainers` is False), then (unless quick, or when
    asked) the levers and rows 7 and 8."""
    import keras  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    from kerastransfer import flops  # noqa: PLC0415
    from kerastransfer.training import strategies  # noqa: PLC0415

    steps = steps or (75 if quick else 225)
    repeats = repeats or (2 if quick else 3)
    study = (not quick) if study is None else study
    levers = (not quick) if levers is None else levers
    results = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(["python", "tools/benchmark.py", *sys.argv[1:]]),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "torch": _torch_version(),
        "flagfile": os.path.relpath(flagfile, REPO),
        "steps": steps,
        "repeats": repeats,
        "load_before": other_load(),
    }
    workdir = tempfile.mkdtemp(prefix="kt-benchmark-")
    try:
        log("row 1: float32 matmul peak")
        results["peak_gflops"] = peak_gflops(repeats=12 if quick else 20)
        setup = make_setup(flagfile, workdir)
        e = setup.experiment
        model = setup.build()
        results["model"] = {
            "arch": e.model.arch,
            "widths": list(e.model.widths),
            "batch_size": e.solver.batch_size,
            "input": list(model.input.shape[1:]),
            "params": model.count_params(),
            "half_train_images": len(setup.half.train_y),
            "half_val_images": len(setup.half.val_y),
        }
        results["flops_per_image"] = {
            "forward": flops.forward_flops(model),
            "training": flops.training_flops(model),
        }
        log(f"row 2: {results['flops_per_image']['training'] / 1e6:.1f} MFLOP per training image")
        if trainers:
            log(f"rows 3-5: {steps} steps, {repeats} rounds")
            results["trainers"], results["notes"] = compare_trainers(setup, steps, repeats, log)
            log("row 6: frozen runs with and without caching")
            results["frozen"] = frozen_runs(setup, FROZEN_N, 1 if quick else 3, log)
        results["load_after_rows_1_6"] = other_load()
        if levers and trainers:
            log("levers: row 5b with one change each")
            results["levers"] = compare_levers(setup, steps, max(2, repeats - 1), log)
        if study:
            log("row 1 again (the best of both measurements counts)")
            results["peak_gflops"] = max(results["peak_gflops"], peak_gflops())
            log("row 7: the default study")
            results["study"] = study_row(flagfile, results["peak_gflops"], log)
            results["load_after_row_7"] = other_load()
            if strategies.cpu_has_bfloat16():
                kind = strategies.cpu_bfloat16_kind()
                log(f"row 7b: the default study in mixed_bfloat16 ({kind} here)")
                results["study_bfloat16"] = study_row(
                    flagfile, results["peak_gflops"], log, "--mixed_precision=mixed_bfloat16"
                )
                results["precision_change"] = {
                    **precision_change(results["study_bfloat16"], results["study"]),
                    "cpu_kind": kind,
                    "declared": strategies.BFLOAT16_VERDICTS[kind],
                }
            log("row 8: the first split through kerastransfer, then by hand")
            results["by_hand"] = by_hand_row(flagfile, log)
            results["load_after_row_8"] = other_load()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["targets"] = targets(results)
    return results


def _torch_version():
    try:
        import torch  # noqa: PLC0415
    except ImportError:
        return None
    return torch.__version__


def _study_schedule_name(results):
    return next(
        name
        for name in results["trainers"]
        if name.startswith(KerasTransfer.name) and name != KerasTransfer.name
    )


def _rate(results, name):
    trainer = results["trainers"].get(name)
    return trainer["best"] if trainer else None


def targets(results):
    """The issue's targets, each with the measured value and whether it is met."""
    rows = []
    if "trainers" in results:
        ours = _rate(results, KerasTransfer.name)
        peer = _rate(results, TorchPeer.name)
        plain = _rate(results, PlainKeras.name)
        rows += [
            (
                "training path >= PyTorch peer (ratio >= 1.0)",
                None if peer is None else ours / peer,
                1.0,
            ),
            ("training path faster than plain model.fit (ratio > 1.0)", ours / plain, 1.0),
        ]
    if 5 in results.get("frozen", {}):
        rows += [
            (
                "frozen n=5 with caching >= 3x without (training only)",
                results["frozen"][5]["ratio_train_only"],
                3.0,
            ),
            (
                "frozen n=5 with caching >= 3x without (incl. its feature pass)",
                results["frozen"][5]["ratio"],
                3.0,
            ),
        ]
    study = results.get("study")
    if study:
        rows += [
            ("default study wall time <= 600 s", study["wall_seconds"], -600),
            ("base nets on random:0 >= 0.89 (mean of A and B)", study["base_accuracy_mean"], 0.89),
            ("default study within 1.6x of its FLOP floor", study["ratio"], -1.6),
            ("peak resident memory <= 3 GB", study["peak_rss_bytes"] / 1e9, -3.0),
        ]
    change = results.get("precision_change")
    if change:
        ci = change["test"]["overall"]["ci"]
        rows.append(
            (
                "row 7b (bfloat16) at parity with row 7 by the precision test (value: the "
                "farthest end of the 90% CI over all networks, points)",
                None if ci is None else max(map(abs, ci)),
                -0.5,
                change["test"]["passed"],
            )
        )
    grid = results.get("by_hand")
    if grid:
        rows.append(("one split >= 2x faster than by hand (row 8)", grid["ratio"], 2.0))
    # A negative bound is an upper bound; a fourth item, where there is one, is the verdict.
    return [
        {
            "target": name,
            "value": value,
            "bound": abs(bound),
            "met": verdict[0]
            if verdict
            else (None if value is None else (value <= -bound if bound < 0 else value >= bound)),
        }
        for name, value, bound, *verdict in rows
    ]


# ----- output ------------------------------------------------------------------------------
def table_rows(results):
    """The table as (row, what, value, ratios) strings."""
    peak, flops = results["peak_gflops"], results["flops_per_image"]["training"]

    def of_peak(rate):
        return f"{rate * flops / 1e9 / peak:.0%} of peak"

    rows = [
        ("1", "float32 peak (2048x2048 TensorFlow matmul)", f"{peak:.0f} GFLOP/s", ""),
        (
            "2",
            "training FLOPs per image, default model",
            f"{flops / 1e6:.1f} MFLOP",
            f"forward {results['flops_per_image']['forward'] / 1e6:.1f} MFLOP",
        ),
    ]
    if "trainers" in results:
        rows += _trainer_rows(results, of_peak)
    rows += _study_rows(results)
    return rows


def _trainer_rows(results, of_peak):
    """Rows 3-6."""
    plain = _rate(results, PlainKeras.name)
    peer = _rate(results, TorchPeer.name)
    rows = [
        ("3", PlainKeras.name + " (numpy arrays, defaults)", f"{plain:.0f} img/s", of_peak(plain)),
    ]
    if peer is None:
        rows.append(("4", TorchPeer.name, "-", results["notes"].get(TorchPeer.name, "")))
    else:
        rows.append(
            ("4", TorchPeer.name + f" {results['torch']}", f"{peer:.0f} img/s", of_peak(peer))
        )
    for row, name in (("5", KerasTransfer.name), ("5b", _study_schedule_name(results))):
        rate = _rate(results, name)
        versus = f"{rate / plain:.2f}x row 3" + (f", {rate / peer:.2f}x row 4" if peer else "")
        rows.append((row, name, f"{rate:.0f} img/s", f"{versus}; {of_peak(rate)}"))
    for n, row in results["frozen"].items():
        rows.append(
            (
                f"6 (n={n})",
                f"AnB n={n}: uncached / cached at {row['cached']['cached_prefix']}",
                f"{row['uncached']['images_per_second']:.0f} / "
                f"{row['cached']['images_per_second']:.0f} img/s",
                f"{row['ratio']:.2f}x incl. feature pass "
                f"({row['cached']['cache_seconds']:.1f} s); "
                f"{row['ratio_train_only']:.2f}x training only",
            )
        )
    return rows


def _study_rows(results):
    """Rows 7 and 8."""
    rows = []
    study = results.get("study")
    if study:
        rows.append(
            (
                "7",
                f"default study ({study['networks']} networks, {results['flagfile']})",
                f"{study['wall_seconds']:.0f} s wall",
                f"floor {study['floor_seconds']:.0f} s, {study['ratio']:.1f}x floor; "
                f"peak RSS {study['peak_rss_bytes'] / 1e9:.2f} GB; base acc. "
                f"{study['base_accuracy_mean']:.4f}; {', '.join(study['precision'])}",
            )
        )
    bfloat16 = results.get("study_bfloat16")
    if bfloat16:
        change = results["precision_change"]
        rows.append(
            (
                "7b",
                "row 7 with --mixed_precision=mixed_bfloat16",
                f"{bfloat16['wall_seconds']:.0f} s wall",
                f"{change['speedup']:.2f}x as fast as row 7; {bfloat16['ratio']:.1f}x floor; "
                f"peak RSS {bfloat16['peak_rss_bytes'] / 1e9:.2f} GB; base acc. "
                f"{bfloat16['base_accuracy_mean']:.4f}; {', '.join(bfloat16['precision'])}; "
                f"precision test: {precision_summary(change['test'])}",
            )
        )
    grid = results.get("by_hand")
    if grid:
        rows.append(
            (
                "8",
                f"split {grid['split']} ({grid['networks']} networks): kerastransfer / "
                "the same networks by hand",
                f"{grid['package_seconds']:.0f} / {grid['by_hand_seconds']:.0f} s wall",
                f"{grid['ratio']:.2f}x as fast as by hand",
            )
        )
    return rows


def markdown_table(results):
    lines = ["| row | what | measured | ratio / note |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in table_rows(results)]
    return "\n".join(lines)


def markdown_targets(results):
    lines = ["| target | measured | met |", "|---|---|---|"]
    for t in results["targets"]:
        value = "-" if t["value"] is None else f"{t['value']:.3g}"
        met = "skipped" if t["met"] is None else ("yes" if t["met"] else "**no**")
        lines.append(f"| {t['target']} | {value} | {met} |")
    return "\n".join(lines)


def print_table(results, out=print):
    rows = table_rows(results)
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        out("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    if "precision_change" in results:
        for line in precision_lines(results["precision_change"]["test"]):
            out(line)
    for t in results["targets"]:
        value = "-" if t["value"] is None else f"{t['value']:.3g}"
        met = "skipped" if t["met"] is None else ("met" if t["met"] else "NOT met")
        out(f"target: {t['target']}: {value} ({met})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="rows 1-6 only, fewer rounds")
    parser.add_argument("--flagfile", default=DEFAULT_FLAGFILE, help="the study to measure")
    parser.add_argument("--steps", type=int, help="steps per round of rows 3-5")
    parser.add_argument("--repeats", type=int, help="rounds of rows 3-5")
    parser.add_argument("--json", default="benchmark.json", help="where the results go")
    parser.add_argument("--write_md", help="rewrite this BENCHMARKS.md from the results")
    parser.add_argument(
        "--studies_only",
        action="store_true",
        help="rows 1-2, 7 and 8 only: the whole study and the hand-written grid",
    )
    parser.add_argument(
        "--grid_by_hand",
        action="store_true",
        help="(row 8's subprocess) train the first split by hand, write --json, exit",
    )
    args = parser.parse_args(argv)
    from kerastransfer.workdir import files  # noqa: PLC0415

    if args.grid_by_hand:
        workdir = tempfile.mkdtemp(prefix="kt-benchmark-hand-")
        try:
            files.write_json(args.json, grid_by_hand(os.path.abspath(args.flagfile), workdir))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return
    results = run_benchmark(
        quick=args.quick,
        flagfile=os.path.abspath(args.flagfile),
        steps=args.steps,
        repeats=args.repeats,
        study=True if args.studies_only else None,
        trainers=not args.studies_only,
        log=lambda message: print(message, flush=True),
    )
    print()
    print_table(results)
    files.write_json(args.json, results)
    print(f"\nresults: {args.json}")
    if args.write_md:
        # tools/benchmark_report.py renders the JSON just written and prints "report: PATH";
        # it imports this module, so importing it here would make an import cycle.
        sys.stdout.flush()  # our lines first when stdout is a file or a pipe
        subprocess.run(
            [
                sys.executable,
                os.path.join(REPO, "tools", "benchmark_report.py"),
                args.json,
                args.write_md,
            ],
            check=True,
        )


if __name__ == "__main__":
    main()
