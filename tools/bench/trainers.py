"""Rows 3-5: three ways to train the same network (plain Keras, PyTorch, kerastransfer's
training path), and the levers: row 5b's trainer changed in one way each."""

import os
import shutil
import time

from tools.bench import names


def best_of(rates):
    """The best rate of the rounds, None with none."""
    return max(rates) if rates else None


# Each `run(steps)` trains `steps` batches, then measures accuracy on the half's validation
# images once (as `fit(..., validation_data=...)` does after an epoch), and returns the
# trained images per second of the whole call.
class PlainKeras:
    """Row 3: what a user writes: compile, then `fit` on numpy arrays with defaults."""

    name = names.PLAIN_KERAS

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

    name = names.TORCH_PEER

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
    """Row 5: `training.fit_run` on the study's datasets and solver, as `Study.train_run` calls
    it (compile_model, checkpoints, TensorBoard), validating once at the end like rows 3-4;
    with `study_schedule`, every eval_every steps as the study's runs do."""

    name = names.KERAS_TRANSFER

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
        outcome = self.training.fit_run(
            self.model,
            self.train_data,
            self.val_data,
            solver=solver,
            batch_size=self.e.solver.batch_size,
            best_k=self.e.solver.best_k,
            run_dir=run_dir,
            weights_path=os.path.join(run_dir, "final.weights.h5"),
            tensorboard_dir=run_dir,
            evaluator=self.evaluator,
        )
        shutil.rmtree(run_dir, ignore_errors=True)
        if not outcome.ok:
            raise RuntimeError(f"{self.name}: {outcome.reason}")
        return outcome.images_per_second


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


PACKED = 4  # networks trained side by side in one graph by the packing lever


def packing_lever(setup, repeats, log, packed=PACKED):
    """Milliseconds per step of networks trained alone against `packed` of them trained side
    by side in one compiled model on the same batches (one graph call a step, each network
    its own variables, loss and output; HFTA's idea without its operator fusion): the n=5
    suffix on cached features (a frozen run), and the whole network (a base or fine-tuned
    run). Images/s per network is packed * alone / side-by-side."""
    import keras  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from kerastransfer import data, surgery, training  # noqa: PLC0415
    from kerastransfer.training import caching  # noqa: PLC0415

    e, labels = setup.experiment, setup.half.train_y
    every = training.plan_steps(len(labels), e.solver.batch_size, 1, 0, e.solver.eval_every)[1]

    def suffix():
        model = surgery.transfer(setup.build(), 5, "frozen")
        return caching.split_model(model, caching.cache_layer(model, 5))[1]

    found = {}
    for name, build in (("n=5 suffix (cached features)", suffix), ("whole network", setup.build)):
        first = build()
        shape = first.input.shape[1:]
        images = np.random.RandomState(0).rand(len(labels), *shape).astype("float32")
        per_step = {}
        for count in (1, packed):
            networks = [first] + [build() for _ in range(count - 1)]
            inputs = keras.Input(shape)
            outputs = [
                keras.Model(network.inputs, network.outputs, name=f"network{i}")(inputs)
                for i, network in enumerate(networks)
            ]
            model = keras.Model(inputs, outputs)
            batches = data.gathered_batches(images, labels, e.solver.batch_size, shuffle_seed=0)
            batches = batches.map(lambda x, y, count=count: (x, (y,) * count)).repeat()
            solver = training.Solver(e.solver.learning_rate, e.solver.momentum, every, every)
            model.compile(
                optimizer=keras.optimizers.SGD(solver.schedule(), momentum=solver.momentum),
                loss=["sparse_categorical_crossentropy"] * count,
                steps_per_execution=every,
            )
            model.fit(batches, epochs=1, steps_per_epoch=every, verbose=0)  # traces
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                model.fit(batches, epochs=3, steps_per_epoch=every, verbose=0)
                times.append((time.perf_counter() - start) / (3 * every) * 1e3)
            per_step[count] = min(times)
            log(f"  {name}: {count} network(s) in one graph: {per_step[count]:.2f} ms/step")
        found[name] = {
            "ms_per_step": per_step,
            "per_network_speedup": packed * per_step[1] / per_step[packed],
        }
    return {"packed": packed, "networks": found}
