"""How fast kerastransfer trains, against plain Keras, PyTorch and the machine's own limit.

Rows (all but row 7 measured in this one process, on the same model and data, so the ratios
hold on a noisy machine):
  1. the machine's float32 peak: a large TensorFlow matmul, GFLOP/s (best of several);
  2. training FLOPs per image of the default model, from its layer shapes (formula below);
  3. plain `model.fit` on the half's numpy arrays, batch 128, default Keras settings;
  4. the same model trained with PyTorch on the CPU (skipped with a note without torch);
  5. kerastransfer's training path (`training.train` on the study's data and solver, with its
     validation every `eval_every` steps), and its ratios to rows 3 and 4;
  6. frozen runs at n = 3, 5, 7 of the study (`Study.train_run`), with and without
     frozen-prefix caching; the cached images/s pays for computing the features;
  7. (full run only) the whole default study in a subprocess: wall time, its floor (the sum
     over runs of training FLOPs / row 1), their ratio, and the child's peak resident memory.
Rows 3-5 time `steps` training steps after a warm-up call (tracing excluded), repeated
`repeats` times in turn; each keeps its best repetition (the least disturbed by other load).

FLOPs: a multiply-add counts 2. Conv2D: 2 * H_out * W_out * kh * kw * C_in/groups * C_out;
Dense: 2 * N_in * N_out; bias adds, activations, pooling and the optimizer update are left
out (under 1% here). Training one image costs the forward pass of every layer, plus, in the
backward pass, a weight gradient for every trainable weight layer and an input gradient for
every weight layer above the lowest trainable one (each as much as its forward pass): 3x the
forward FLOPs minus conv1's input gradient for a network trained from scratch.

Usage:
    python tools/benchmark.py --quick            # rows 1-6, a few minutes
    python tools/benchmark.py --write_md=BENCHMARKS.md   # all rows; rewrites BENCHMARKS.md
"""

import argparse
import contextlib
import dataclasses
import datetime
import json
import math
import os
import platform
import resource
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


def other_load():
    """Load averages and the busiest processes not started by this benchmark."""
    mine = {os.getpid()}
    try:
        out = subprocess.run(["ps", "-eo", "pid,ppid,pcpu,args", "--sort=-pcpu"],
                             capture_output=True, text=True, timeout=10).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        out = []
    busy = []
    for line in out[1:]:
        pid, ppid, cpu, args = line.split(None, 3)
        if int(pid) in mine or int(ppid) in mine or float(cpu) < 5:
            continue
        busy.append({"cpu_percent": float(cpu), "command": args[:110]})
    return {"load_average": [round(v, 2) for v in os.getloadavg()], "busy": busy[:6]}


def peak_gflops(size=2048, repeats=5, seconds=1.0):
    """Float32 matmul throughput in GFLOP/s (2 * size**3 per product), best of `repeats`."""
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


# ----- FLOPs ---------------------------------------------------------------------------------
def layer_flops(layer):
    """Forward FLOPs per image of one layer (Conv2D and Dense; 0 for the others)."""
    import keras  # noqa: PLC0415

    if isinstance(layer, keras.layers.Conv2D):
        height, width = layer.output.shape[1:3]
        return 2 * height * width * math.prod(layer.kernel.shape)
    if isinstance(layer, keras.layers.Dense):
        return 2 * math.prod(layer.kernel.shape)
    return 0


def training_flops(model, after=None):
    """Training FLOPs per image of `model`'s layers after layer `after` (all when None).

    Forward of every layer, a weight gradient per trainable weight layer, an input gradient
    per weight layer above the lowest trainable one (see the module docstring).
    """
    layers = model.layers
    if after is not None:
        layers = layers[layers.index(after) + 1:]
    flops = [(layer_flops(layer), layer.trainable and bool(layer.trainable_weights))
             for layer in layers]
    forward = sum(f for f, _ in flops)
    weight_grads = sum(f for f, trainable in flops if trainable)
    lowest = next((i for i, (_, trainable) in enumerate(flops) if trainable), len(flops))
    input_grads = sum(f for f, _ in flops[lowest + 1:])
    return forward + weight_grads + input_grads


def forward_flops(model, upto=None):
    """Forward FLOPs per image of `model` up to and including layer `upto` (all when None)."""
    layers = model.layers
    if upto is not None:
        layers = layers[: layers.index(upto) + 1]
    return sum(layer_flops(layer) for layer in layers)


# ----- the study's pieces --------------------------------------------------------------------
def load_experiment(flagfile, workdir, **overrides):
    """The Experiment a flagfile describes, as the runner would build it."""
    from kerastransfer import config  # noqa: PLC0415
    from kerastransfer import flags as kt_flags  # noqa: PLC0415

    kt_flags.FLAGS.unparse_flags()
    kt_flags.FLAGS(["benchmark", f"--flagfile={flagfile}", f"--workdir={workdir}"])
    return dataclasses.replace(config.from_flags(kt_flags.FLAGS), **overrides)


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

    def build(self):
        return self.study.build_model(self.half.num_classes)


def make_setup(flagfile, workdir):
    from kerastransfer import grid  # noqa: PLC0415

    experiment = load_experiment(flagfile, workdir, splits=load_experiment(
        flagfile, workdir).splits[:1])
    study = grid.Study(experiment, log=lambda message: None).prepare()
    split = next(iter(study.splits))
    return Setup(experiment, study, study.half(split, "A"), workdir)


def best_of(rates):
    return max(rates) if rates else None


# ----- rows 3-5: three ways to train the same network -------------------------------------
class PlainKeras:
    """Row 3: what a user writes: compile, then `fit` on numpy arrays with defaults."""

    name = "plain Keras model.fit"

    def __init__(self, setup, steps):
        import keras  # noqa: PLC0415

        e = setup.experiment
        keras.utils.set_random_seed(0)
        self.model = setup.build()
        self.model.compile(optimizer=keras.optimizers.SGD(e.learning_rate, momentum=e.momentum),
                           loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        self.x, self.y, self.batch = setup.x, setup.half.train_y, e.batch_size
        self.steps = steps

    def run(self, steps):
        count = steps * self.batch
        start = time.perf_counter()
        self.model.fit(self.x[:count], self.y[:count], batch_size=self.batch, epochs=1,
                       verbose=0)
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
                layers += [nn.Conv2d(channels, layer.filters, size, padding=size // 2),
                           nn.ReLU()]
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
        self.model(self.x[:2])  # materializes the lazy layers
        decay = [p for name, p in self.model.named_parameters() if name.endswith("weight")]
        rest = [p for name, p in self.model.named_parameters() if not name.endswith("weight")]
        self.optimizer = torch.optim.SGD(
            [{"params": decay, "weight_decay": e.weight_decay}, {"params": rest}],
            lr=e.learning_rate, momentum=e.momentum)
        self.batch, self.torch = e.batch_size, torch
        self.check = keras_model.count_params(), sum(p.numel() for p in self.model.parameters())

    def run(self, steps):
        torch, batch = self.torch, self.batch
        loss_fn = torch.nn.functional.cross_entropy
        order = torch.randperm(len(self.y))
        self.model.train()
        start = time.perf_counter()
        for step in range(steps):
            index = order[(step * batch) % (len(order) - batch):][:batch]
            self.optimizer.zero_grad(set_to_none=True)
            loss_fn(self.model(self.x[index]), self.y[index]).backward()
            self.optimizer.step()
        return steps * batch / (time.perf_counter() - start)


class KerasTransfer:
    """Row 5: `training.train` on the study's datasets and solver, as `Study.train_run` calls
    it (compile_model, segments of eval_every steps with validation, checkpoints,
    TensorBoard)."""

    name = "kerastransfer training.train"

    def __init__(self, setup, steps):
        import keras  # noqa: PLC0415

        from kerastransfer import data, grid, training  # noqa: PLC0415

        e, half, prep = setup.experiment, setup.half, setup.study.preprocessing
        self.every = training.plan_steps(len(half.train_y), e.batch_size, e.epochs,
                                         e.train_steps, e.eval_every)[1]
        self.e, self.training, self.workdir = e, training, setup.workdir
        keras.utils.set_random_seed(0)
        self.model = setup.build()
        training.compile_model(self.model, self._solver(self.every))
        self.train_data = lambda skip: data.make_dataset(
            half.train_x, half.train_y, prep, batch_size=e.batch_size, training=True,
            seed=0).repeat().skip(skip)
        self.val_data = data.make_dataset(half.val_x, half.val_y, prep,
                                          batch_size=grid.EVAL_BATCH, training=False)
        self.calls = 0

    def _solver(self, steps):
        e = self.e
        return self.training.Solver(e.learning_rate, e.momentum, steps, self.every,
                                    e.lr_decay_steps, e.bias_lr_multiplier)

    def run(self, steps):
        """Trains `steps` (rounded to whole segments) in a fresh run folder."""
        self.calls += 1
        run_dir = os.path.join(self.workdir, "row5", str(self.calls))
        result = self.training.train(
            self.model, self.train_data, self.val_data,
            solver=self._solver(max(1, steps // self.every) * self.every),
            batch_size=self.e.batch_size, run_dir=run_dir, tensorboard_dir=run_dir)
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
            notes[kind.name] = (f"skipped: {error.name} is not installed "
                                "(pip install -e '.[bench]')")
    for trainer in trainers:
        trainer.run(getattr(trainer, "every", 8))  # traces (Keras) / warms the kernels
    rates = {trainer.name: [] for trainer in trainers}
    for round_ in range(repeats):
        for trainer in trainers:
            rates[trainer.name].append(trainer.run(steps))
            log(f"  round {round_ + 1}: {trainer.name}: {rates[trainer.name][-1]:.0f} img/s")
    return {name: {"rates": r, "best": best_of(r)} for name, r in rates.items()}, notes


# ----- row 6: frozen runs with and without caching -----------------------------------------
def frozen_runs(setup, layers, repeats, log):
    """Random-feature runs frozen at each n (the study's solver), cached and not, in turn.

    Cached runs pay for their feature pass: images/s = trained images / (feature seconds +
    train seconds); `train_only` leaves the feature pass out.
    """
    from kerastransfer import grid  # noqa: PLC0415

    rows = {}
    studies = {}
    for cached in (False, True):
        experiment = dataclasses.replace(
            setup.experiment, cache_frozen=cached, layers=tuple(layers),
            treatments=("random",), workdir=os.path.join(setup.workdir, f"row6_{cached}"))
        studies[cached] = grid.Study(experiment, log=lambda message: None).prepare()
    for n in layers:
        results = {False: [], True: []}
        for _ in range(repeats):
            for cached, study in studies.items():
                spec = next(s for s in study.runs if s.treatment == "random" and s.n == n)
                shutil.rmtree(os.path.join(study.workdir, "runs", spec.run), ignore_errors=True)
                record = study.train_run(spec, None)
                trained = record["steps"] * setup.experiment.batch_size
                seconds = record["train_seconds"] + record.get("cache_seconds", 0.0)
                results[cached].append({"images_per_second": trained / seconds,
                                        "train_only": record["images_per_second"],
                                        "cache_seconds": record.get("cache_seconds", 0.0),
                                        "cached_prefix": record["cached_prefix"]})
                log(f"  n={n} {'cached' if cached else 'uncached'}: "
                    f"{results[cached][-1]['images_per_second']:.0f} img/s")
        best = {cached: max(r, key=lambda x: x["images_per_second"])
                for cached, r in results.items()}
        rows[n] = {"uncached": best[False], "cached": best[True],
                   "ratio": best[True]["images_per_second"] / best[False]["images_per_second"],
                   "ratio_train_only": best[True]["train_only"] / best[False]["train_only"]}
    return rows


# ----- row 7: the default study ------------------------------------------------------------
def run_study(flagfile, workdir, log):
    """Runs the whole study in a subprocess; wall seconds and the child's peak RSS (bytes)."""
    command = [sys.executable, "-m", "kerastransfer.run", f"--flagfile={flagfile}",
               f"--workdir={workdir}"]
    log(f"  {' '.join(command)}")
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"the study failed ({done.returncode}):\n{done.stderr[-3000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # KiB on Linux
    return wall, peak, done.stdout


def study_floor(flagfile, workdir, records):
    """Training FLOPs of every finished run of a study.

    Bases and fine-tuned runs train every layer each step. Frozen runs (selffer, transfer,
    random) compute their frozen prefix once per training image, as caching does, and the
    layers above it each step.
    """
    from kerastransfer import caching, grid, surgery  # noqa: PLC0415

    study = grid.Study(load_experiment(flagfile, workdir), log=lambda m: None).prepare()
    total = 0.0
    for record in records:
        if record["status"] != "ok":
            continue
        model = study.build_model(record["num_classes"])
        images = record["steps"] * study.experiment.batch_size
        if record["treatment"] in ("selffer", "transfer", "random"):
            model = surgery.transfer(model, record["n"], "frozen")
            layer = caching.cache_layer(model, record["n"])
            examples = len(study.half(record["split"], record["target"]).train_y)
            total += examples * forward_flops(model, layer)
            total += images * training_flops(model, after=layer)
        else:
            total += images * training_flops(model)
    return total


def study_row(flagfile, peak, log):
    """Row 7: the default study, timed, with its FLOP floor and the base accuracies."""
    workdir = tempfile.mkdtemp(prefix="kt-benchmark-study-")
    try:
        wall, rss, stdout = run_study(flagfile, workdir, log)
        with open(os.path.join(workdir, "results.jsonl")) as f:
            records = [json.loads(line) for line in f if line.strip()]
        floor = study_floor(flagfile, workdir, records) / (peak * 1e9)
        bases = {r["target"]: r["test_accuracy"] for r in records
                 if r["treatment"] == "base" and r["split"] == "random0"}
        return {"wall_seconds": wall, "floor_seconds": floor, "ratio": wall / floor,
                "peak_rss_bytes": rss, "networks": len(records),
                "ok": sum(r["status"] == "ok" for r in records),
                "train_seconds": sum(r.get("train_seconds", 0.0) for r in records),
                "cache_seconds": sum(r.get("cache_seconds", 0.0) for r in records),
                "base_accuracy": bases,
                "base_accuracy_mean": sum(bases.values()) / max(len(bases), 1)}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# ----- the whole benchmark -----------------------------------------------------------------
def run_benchmark(quick=False, flagfile=DEFAULT_FLAGFILE, steps=None, repeats=None,
                  study=None, log=print):
    """Measures rows 1-6 (and row 7 unless quick or study=False); returns the results dict."""
    import keras  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    steps = steps or (75 if quick else 225)
    repeats = repeats or (2 if quick else 3)
    study = (not quick) if study is None else study
    results = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(["python", "tools/benchmark.py", *sys.argv[1:]]),
        "cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
        "tensorflow": tf.__version__, "keras": keras.__version__, "torch": _torch_version(),
        "flagfile": os.path.relpath(flagfile, REPO), "steps": steps, "repeats": repeats,
        "load_before": other_load(),
    }
    workdir = tempfile.mkdtemp(prefix="kt-benchmark-")
    try:
        log("row 1: float32 matmul peak")
        results["peak_gflops"] = peak_gflops(repeats=3 if quick else 5)
        setup = make_setup(flagfile, workdir)
        e = setup.experiment
        model = setup.build()
        results["model"] = {"arch": e.arch, "widths": list(e.widths), "batch_size": e.batch_size,
                            "input": list(model.input.shape[1:]), "params": model.count_params(),
                            "half_train_images": len(setup.half.train_y),
                            "half_val_images": len(setup.half.val_y)}
        results["flops_per_image"] = {"forward": forward_flops(model),
                                      "training": training_flops(model)}
        log(f"row 2: {results['flops_per_image']['training'] / 1e6:.1f} MFLOP per training image")
        log(f"rows 3-5: {steps} steps, {repeats} rounds")
        results["trainers"], results["notes"] = compare_trainers(setup, steps, repeats, log)
        log("row 6: frozen runs with and without caching")
        results["frozen"] = frozen_runs(setup, FROZEN_N, 1 if quick else 2, log)
        results["load_after_rows_1_6"] = other_load()
        if study:
            log("row 7: the default study")
            results["study"] = study_row(flagfile, results["peak_gflops"], log)
            results["load_after_row_7"] = other_load()
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


def _rate(results, name):
    trainer = results["trainers"].get(name)
    return trainer["best"] if trainer else None


def targets(results):
    """The issue's targets, each with the measured value and whether it is met."""
    ours = _rate(results, KerasTransfer.name)
    peer = _rate(results, TorchPeer.name)
    plain = _rate(results, PlainKeras.name)
    rows = [
        ("training path >= PyTorch peer (ratio >= 1.0)",
         None if peer is None else ours / peer, 1.0),
        ("training path faster than plain model.fit (ratio > 1.0)", ours / plain, 1.0),
    ]
    if 5 in results["frozen"]:
        rows.append(("frozen n=5 with caching >= 3x without (incl. the feature pass)",
                     results["frozen"][5]["ratio"], 3.0))
    study = results.get("study")
    if study:
        rows += [
            ("default study wall time <= 600 s", study["wall_seconds"], -600),
            ("base nets on random:0 >= 0.89 (mean of A and B)", study["base_accuracy_mean"], 0.89),
            ("default study within 2x of its FLOP floor", study["ratio"], -2.0),
            ("peak resident memory < 4 GB", study["peak_rss_bytes"] / 1e9, -4.0),
        ]
    # A negative bound is an upper bound.
    return [{"target": name, "value": value, "bound": abs(bound),
             "met": None if value is None else (value <= -bound if bound < 0 else
                                                value >= bound)}
            for name, value, bound in rows]


# ----- output ------------------------------------------------------------------------------
def table_rows(results):
    """The table as (row, what, value, ratios) strings."""
    peak, flops = results["peak_gflops"], results["flops_per_image"]["training"]
    plain = _rate(results, PlainKeras.name)
    peer = _rate(results, TorchPeer.name)
    ours = _rate(results, KerasTransfer.name)

    def of_peak(rate):
        return f"{rate * flops / 1e9 / peak:.0%} of peak"

    rows = [("1", "float32 peak (2048x2048 TensorFlow matmul)", f"{peak:.0f} GFLOP/s", ""),
            ("2", "training FLOPs per image, default model",
             f"{flops / 1e6:.1f} MFLOP", f"forward {results['flops_per_image']['forward'] / 1e6:.1f}"
             " MFLOP"),
            ("3", PlainKeras.name + " (numpy arrays, defaults)", f"{plain:.0f} img/s",
             of_peak(plain))]
    if peer is None:
        rows.append(("4", TorchPeer.name, "-", results["notes"].get(TorchPeer.name, "")))
    else:
        rows.append(("4", TorchPeer.name + f" {results['torch']}", f"{peer:.0f} img/s",
                     of_peak(peer)))
    versus = f"{ours / plain:.2f}x row 3" + (f", {ours / peer:.2f}x row 4" if peer else "")
    rows.append(("5", KerasTransfer.name + " (validation every segment)", f"{ours:.0f} img/s",
                 f"{versus}; {of_peak(ours)}"))
    for n, row in results["frozen"].items():
        rows.append((f"6 (n={n})", f"frozen n={n}: uncached / cached at "
                     f"{row['cached']['cached_prefix']}",
                     f"{row['uncached']['images_per_second']:.0f} / "
                     f"{row['cached']['images_per_second']:.0f} img/s",
                     f"{row['ratio']:.2f}x incl. feature pass "
                     f"({row['cached']['cache_seconds']:.1f} s); "
                     f"{row['ratio_train_only']:.2f}x training only"))
    study = results.get("study")
    if study:
        rows.append(("7", f"default study ({study['networks']} networks, "
                     f"{results['flagfile']})",
                     f"{study['wall_seconds']:.0f} s wall",
                     f"floor {study['floor_seconds']:.0f} s, {study['ratio']:.1f}x floor; "
                     f"peak RSS {study['peak_rss_bytes'] / 2**30:.2f} GiB; base acc. "
                     f"{study['base_accuracy_mean']:.4f}"))
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
    args = parser.parse_args(argv)
    results = run_benchmark(quick=args.quick, flagfile=os.path.abspath(args.flagfile),
                            steps=args.steps, repeats=args.repeats,
                            log=lambda message: print(message, flush=True))
    print()
    print_table(results)
    from kerastransfer import fileio  # noqa: PLC0415

    fileio.write_json(args.json, results)
    print(f"\nresults: {args.json}")
    if args.write_md:
        import benchmark_report  # noqa: PLC0415  (tools/benchmark_report.py)

        fileio.write_text(args.write_md, benchmark_report.render(results))
        print(f"report: {args.write_md}")


if __name__ == "__main__":
    main()
