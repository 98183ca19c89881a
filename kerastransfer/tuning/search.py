"""Hyperparameter tuning with keras-tuner (`--mode=tune`), on one machine or many.

Two searches, each a keras-tuner project in `workdir/tuning/`:

- `base`: learning rate, weight decay, batch size and epochs of the base network, trained on
  half A of the first `--splits` entry and scored on half A's validation split;
- `transfer_ft`: the fine-tuning learning-rate scale of AnB+ at n = `--tune_n`, copied from the
  best base network, trained on half B and scored on half B's validation split.

A trial's score is the paper's metric, the mean of the `--best_k` best validation evaluations;
trials never see test data (their halves carry no test examples). The best values go to
`workdir/tuned.flags`, a flagfile the grid takes after the config it was tuned with.

Search ranges are centred on the configured values: learning rate and weight decay from /10 to
x10 (log scale), batch size /2, x1 or x2, epochs /2 to x2 (Bayesian) or, for Hyperband, 1/9,
1/3 and the whole of twice `--epochs` (Hyperband's budget, factor 3). Every trial trains from
scratch with the grid's solver, so its score is what the grid would get with its values.

Distributed: keras-tuner's chief/worker mode. Every process runs the same command with
KERASTUNER_TUNER_ID (`chief`, or a unique worker id), KERASTUNER_ORACLE_IP and
KERASTUNER_ORACLE_PORT set; the chief serves the base search on that port and the AnB+ search
on the next one, and writes tuned.flags; workers run the trials. All of them need the workdir
on a shared file system (the AnB+ trials load the best base network from it).
"""

import contextlib
import dataclasses
import glob
import json
import os
import shutil
import socket
import sys
import time
import zlib

import keras
import keras_tuner
import tensorflow as tf

from kerastransfer import surgery, training
from kerastransfer.console import log
from kerastransfer.errors import StudyStopped, UsageError
from kerastransfer.study.study import Study
from kerastransfer.workdir import files, provenance
from kerastransfer.workdir.lock import workdir_lock

OBJECTIVE = "best_k_val_accuracy"
RECORD = "kerastransfer.json"  # our record of a trial, beside keras-tuner's trial.json
WEIGHTS = "final.weights.h5"
BEST = "best.json"  # a search's best trial, written once the search is over
TRIAL_COPY = "trial.copy.json"  # our atomic copy of keras-tuner's trial.json
# Hyperband's budget: twice --epochs in 9 units, trials of 1, 3 or 9 units (factor 3); one
# Hyperband iteration of that size is 23 trials.
HYPERBAND_UNITS, HYPERBAND_FACTOR, HYPERBAND_TRIALS = 9, 3, 23
WAIT_SECONDS = 3600  # how long a worker waits for the chief's base result (keras-tuner's own)


def run(experiment):
    """Runs both searches and, unless this process is a worker, writes tuned.flags."""
    tf.get_logger().setLevel("ERROR")
    e = experiment
    if e.own_model:
        raise UsageError(
            "--mode=tune tunes the paper's grid; drop --source_model and --source_weights"
        )
    if e.solver.train_steps:
        raise UsageError(
            f"--train_steps={e.solver.train_steps} fixes the training length that "
            "--mode=tune searches as --epochs; drop --train_steps"
        )
    role = distributed_role()
    study = Study.load(e, log=log)
    split = next(iter(study.splits))
    n = tune_n(study)
    tuning_dir = os.path.join(e.workdir, "tuning")
    if role == "worker":
        search(study, split, n, tuning_dir, role)
        log(f"worker {os.environ['KERASTUNER_TUNER_ID']} done; the chief writes tuned.flags")
        return None
    fingerprint = {
        **e.result_fingerprint(),
        "tuner": e.tuning.tuner,
        "tune_n": n,
        "splits": e.data.splits[0],
    }  # the search uses the first split
    start_over = _check_config(e, fingerprint, tuning_dir)
    with workdir_lock(e.workdir):
        if start_over:
            _start_over(e.workdir, tuning_dir)
        files.write_json(
            os.path.join(tuning_dir, "config.json"),
            {
                "tuning": fingerprint,
                "command": provenance.command_line(sys.argv),
                "source_commit": provenance.source_commit(),
            },
        )
        base, fine = search(study, split, n, tuning_dir, role)
        path = os.path.join(e.workdir, "tuned.flags")
        files.write_text(path, flagfile_text(e, n, base, fine, path))
        files.write_json(
            os.path.join(tuning_dir, "summary.json"),
            {"base": base, "transfer_ft": fine, "tuned_flags": path},
        )
        log(f"tuned flags: {path}")
        return path


def distributed_role():
    """`local`, or `chief`/`worker` of keras-tuner's distributed mode (from its env vars)."""
    env = os.environ
    if "KERASTUNER_ORACLE_IP" not in env:
        return "local"
    port = env.get("KERASTUNER_ORACLE_PORT", "")
    if not port.isdigit() or not 0 < int(port) < 65535:
        raise UsageError(
            f"KERASTUNER_ORACLE_PORT={port!r} must be a free port number "
            "below 65535 (the AnB+ search uses the next one)"
        )
    if not env.get("KERASTUNER_TUNER_ID"):
        raise UsageError(
            "KERASTUNER_ORACLE_IP is set but KERASTUNER_TUNER_ID is not: set it "
            "to 'chief' on one process and a unique id on each worker"
        )
    return "chief" if "chief" in env["KERASTUNER_TUNER_ID"] else "worker"


def tune_n(study):
    """--tune_n, checked against the network (0 = its middle block)."""
    e = study.experiment
    model = study.build_model(num_classes=2)
    blocks = surgery.num_blocks(model, study.cut_names(model))
    n = e.tuning.tune_n or (blocks + 1) // 2
    if n > blocks:
        raise UsageError(
            f"--tune_n={n} is past the last block of {e.model.arch} "
            f"(use 1..{blocks}, or 0 for the middle block)"
        )
    return n


def _check_config(experiment, fingerprint, tuning_dir):
    """True when tuning/ was made with another config and --overwrite starts it over."""
    path = os.path.join(tuning_dir, "config.json")
    if not os.path.exists(path):
        return False
    try:
        with open(path) as f:
            stored = json.load(f)["tuning"]
    except (OSError, ValueError, KeyError) as error:
        raise UsageError(
            f"{path} is unreadable ({error}); remove it or pass --overwrite "
            "to start the search over"
        ) from None
    ours = json.loads(json.dumps(fingerprint))
    differing = [name for name in ours if stored.get(name) != ours[name]]
    if differing and not experiment.overwrite:
        changes = ", ".join(
            f"--{name} {stored.get(name)!r} -> {ours[name]!r}" for name in differing
        )
        raise UsageError(
            f"{tuning_dir} holds a search with another config ({changes}); use "
            "a new --workdir, restore those flags, or pass --overwrite"
        )
    return bool(differing)


def _start_over(workdir, tuning_dir):
    """--overwrite with a changed config: drop the searches, keep old tuned.flags as .bak."""
    log(f"--overwrite: config changed; starting the search in {tuning_dir} over")
    shutil.rmtree(tuning_dir, ignore_errors=True)
    flags_path = os.path.join(workdir, "tuned.flags")
    if os.path.exists(flags_path):
        os.replace(flags_path, f"{flags_path}.{time.strftime('%Y%m%d-%H%M%S')}.bak")


# ----- the two searches ------------------------------------------------------------------
def search(study, split, n, tuning_dir, role):
    """Both searches; returns the best (base, AnB+) trials (None for AnB+ if none finished).

    Workers return nothing: the chief's oracle knows the results.
    """
    e = study.experiment
    strategy = training.make_strategy(e.scale_out.strategy)
    hyperband = e.tuning.tuner == "hyperband"
    if hyperband and e.tuning.max_trials < HYPERBAND_TRIALS:
        log(
            f"note: --max_trials={e.tuning.max_trials} is less than one Hyperband iteration "
            f"({HYPERBAND_TRIALS} trials): only its first, shortest trials run"
        )
    base_best = os.path.join(tuning_dir, "base", BEST)
    if role != "worker" and os.path.exists(base_best):
        os.remove(base_best)  # written again when this base search is over
    half_a = _without_test(study.halves.half(split, "A"))
    with _oracle_port(0):
        tuner = make_tuner(
            e, BaseSearch(study, half_a, hyperband), "base", strategy, tuning_dir, role
        )
        _search(tuner, "base", role)
    if role == "worker":
        base = _wait_for(base_best)
    else:
        base = best_trial(tuner, "base")
        files.write_json(base_best, base)
    if "error" in base:
        raise StudyStopped(base["error"])
    half_b = _without_test(study.halves.half(split, "B"))
    with _oracle_port(1):
        tuner = make_tuner(
            e,
            FineTuneSearch(study, half_b, hyperband, base, n, tuning_dir),
            "transfer_ft",
            strategy,
            tuning_dir,
            role,
        )
        _search(tuner, "transfer_ft", role)
    if role == "worker":
        return None
    fine = best_trial(tuner, "transfer_ft")
    files.write_json(os.path.join(tuning_dir, "transfer_ft", BEST), fine)
    return base, None if "error" in fine else fine


def _without_test(half):
    """The half without its test examples: what a trial may see."""
    return dataclasses.replace(half, test_x=half.test_x[:0], test_y=half.test_y[:0])


@contextlib.contextmanager
def _oracle_port(offset):
    """Distributed mode: the base search on KERASTUNER_ORACLE_PORT, the AnB+ one on the next."""
    port = os.environ.get("KERASTUNER_ORACLE_PORT")
    if port is None:
        yield
        return
    os.environ["KERASTUNER_ORACLE_PORT"] = str(int(port) + offset)
    try:
        yield
    finally:
        os.environ["KERASTUNER_ORACLE_PORT"] = port


def _search(tuner, stage, role):
    """One search; the chief serves it to the workers until every trial is over."""
    if role == "chief":
        log(
            f"[tune {stage}] chief: serving trials on {os.environ['KERASTUNER_ORACLE_IP']}:"
            f"{os.environ['KERASTUNER_ORACLE_PORT']} until the workers finish them"
        )
    else:
        log(f"[tune {stage}] searching in {tuner.project_dir}")
    board = keras.callbacks.TensorBoard(
        os.path.join(os.path.dirname(tuner.project_dir), "tensorboard", stage)
    )
    tuner.search(callbacks=[board])


def _wait_for(path):
    """A worker waits for the chief to write the base search's best trial."""
    log(f"waiting for the chief to finish the base search ({path})")
    deadline = time.monotonic() + WAIT_SECONDS
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise StudyStopped(
                f"no base result from the chief after {WAIT_SECONDS}s "
                f"({path}); is the chief running on the same workdir?"
            )
        time.sleep(1)
    with open(path) as f:
        return json.load(f)


def best_trial(tuner, stage):
    """The best completed trial of a finished search, or {"error": why there is none}."""
    trials = list(tuner.oracle.trials.values())
    done = [t for t in trials if t.status == "COMPLETED"]
    log(
        f"[tune {stage}] {len(done)} of {len(trials)} trials finished"
        + "".join(
            f"; trial {t.trial_id} {t.status}: {_reason(tuner, t)}"
            for t in trials
            if t.status != "COMPLETED"
        )
    )
    if not done:
        return {
            "error": f"no {stage} trial finished in {tuner.project_dir} "
            f"({len(trials)} started); see the lines above"
        }
    best = max(done, key=lambda t: t.score)
    with open(os.path.join(tuner.get_trial_dir(best.trial_id), RECORD)) as f:
        record = json.load(f)
    return {
        "trial_id": best.trial_id,
        "score": best.score,
        "values": record["values"],
        "k": record["k"],
        "epochs_trained": record["values"]["epochs"],
        "tuner_id": record["tuner_id"],
        "num_classes": record["num_classes"],
        "weights": os.path.relpath(
            os.path.join(tuner.get_trial_dir(best.trial_id), WEIGHTS),
            os.path.dirname(tuner.project_dir),
        ),
        "finished_trials": len(done),
        "trials": len(trials),
    }


def _reason(tuner, trial):
    """Why a trial did not complete: our record's reason, else keras-tuner's last line."""
    path = os.path.join(tuner.get_trial_dir(trial.trial_id), RECORD)
    if os.path.exists(path):
        with open(path) as f:
            reason = json.load(f).get("reason")
        if reason:
            return reason
    lines = [line for line in (trial.message or "").splitlines() if line.strip()]
    return lines[-1] if lines else f"see {tuner.get_trial_dir(trial.trial_id)}/trial.json"


# ----- keras-tuner pieces ----------------------------------------------------------------
# keras-tuner rewrites its state files (oracle.json, tuner0.json, trial.json) in place, so a
# search killed while writing one left it torn and the resumed search could not read it.
# Through its public API: the oracle and the tuner save their own state atomically
# (workdir.files writes a temporary file and renames it), and every trial's state is copied
# atomically after each change, so mend_torn_trials() can restore a torn trial.json before
# a search resumes. A diverged trial is keras-tuner's FailedTrialError: keras-tuner prints
# its traceback, and the trial's own line says why it failed.


def _copy_trial(trial_dir, trial):
    files.write_json(os.path.join(trial_dir, TRIAL_COPY), trial.get_state())


def mend_torn_trials(project_dir):
    """Before a search resumes: every trial.json that does not parse is restored from our
    copy of it, or removed when the kill came before its first copy (a trial created at
    that moment, which the oracle's saved state does not name yet)."""
    for trial_dir in sorted(glob.glob(os.path.join(project_dir, "trial_*"))):
        path = os.path.join(trial_dir, "trial.json")
        if not os.path.exists(path):
            continue
        try:
            with open(path) as f:
                json.load(f)
        except ValueError:
            copy = os.path.join(trial_dir, TRIAL_COPY)
            if os.path.exists(copy):
                log(f"{path} was torn by a kill; restored from {TRIAL_COPY}")
                with open(copy) as f:
                    files.write_text(path, f.read())
            else:
                log(f"{path} was torn by a kill before the trial began; removed")
                os.remove(path)


class _Oracle:
    """Oracle mixin: the configured values first, the --tune_seconds budget, and state
    written atomically (`project_dir` is set by make_tuner).

    The oracle lives in the local process or the chief, so the chief's clock decides.
    """

    deadline = None  # time.time() after which no new trial starts
    project_dir = None

    def populate_space(self, trial_id):
        if self.deadline is not None and time.time() > self.deadline:
            log("--tune_seconds spent: no new trials")
            return {"status": "STOPPED"}
        return super().populate_space(trial_id)

    def _random_values(self):
        """The first trial runs the configured values (the defaults): the one to beat."""
        if not self._tried_so_far:
            return dict(self.hyperparameters.values)
        return super()._random_values()

    def save(self):
        files.write_json(os.path.join(self.project_dir, "oracle.json"), self.get_state())

    @keras_tuner.synchronized
    def create_trial(self, tuner_id):
        trial = super().create_trial(tuner_id)
        if trial.trial_id in self.trials:  # not a STOPPED placeholder
            _copy_trial(self._trial_dir(trial.trial_id), trial)
        return trial

    @keras_tuner.synchronized
    def update_trial(self, trial_id, metrics, step=0):
        status = super().update_trial(trial_id, metrics, step=step)
        _copy_trial(self._trial_dir(trial_id), self.trials[trial_id])
        return status

    @keras_tuner.synchronized
    def end_trial(self, trial):
        super().end_trial(trial)
        _copy_trial(self._trial_dir(trial.trial_id), self.trials[trial.trial_id])

    def _trial_dir(self, trial_id):
        return os.path.join(self.project_dir, f"trial_{trial_id}")


class BayesianOracle(_Oracle, keras_tuner.oracles.BayesianOptimizationOracle):
    """Bayesian optimization with the --tune_seconds budget."""


class HyperbandOracle(_Oracle, keras_tuner.oracles.HyperbandOracle):
    """Hyperband with the --tune_seconds budget and a --max_trials cap."""

    def __init__(self, max_trials, **kwargs):
        super().__init__(**kwargs)
        self.max_trials = max_trials  # Hyperband sizes itself; the base Oracle honours this


class Tuner(keras_tuner.Tuner):
    """keras-tuner's Tuner, telling the hypermodel which trial it trains and where, and
    saving its state atomically; `role` is distributed_role()'s."""

    def __init__(self, *, role, **kwargs):
        self.role = role
        super().__init__(**kwargs)

    def run_trial(self, trial, *args, **kwargs):
        return super().run_trial(
            trial,
            *args,
            trial_id=trial.trial_id,
            trial_dir=self.get_trial_dir(trial.trial_id),
            **kwargs,
        )

    def save(self):
        if self.role != "worker":  # a worker's oracle is the chief's
            self.oracle.save()
        files.write_json(os.path.join(self.project_dir, f"{self.tuner_id}.json"), self.get_state())


def make_tuner(experiment, hypermodel, stage, strategy, tuning_dir, role):
    """The tuner of one search; resumes its project when one exists (overwrite=False)."""
    e = experiment
    common = {
        "objective": keras_tuner.Objective(OBJECTIVE, direction="max"),
        "seed": 1 + e.grid.seed_offset,
        # a diverged trial is a result, not a reason to stop the search
        "max_consecutive_failed_trials": 10**6,
    }
    if e.tuning.tuner == "hyperband":
        oracle = HyperbandOracle(
            e.tuning.max_trials, max_epochs=HYPERBAND_UNITS, factor=HYPERBAND_FACTOR, **common
        )
    else:
        oracle = BayesianOracle(max_trials=e.tuning.max_trials, **common)
    oracle.verbose = 0  # each trial logs one line where it trains
    oracle.deadline = time.time() + e.tuning.tune_seconds if e.tuning.tune_seconds else None
    oracle.project_dir = os.path.join(tuning_dir, stage)
    if role != "worker":
        mend_torn_trials(oracle.project_dir)
    return Tuner(
        role=role,
        oracle=oracle,
        hypermodel=hypermodel,
        distribution_strategy=strategy,
        directory=tuning_dir,
        project_name=stage,
        overwrite=False,
    )


class _TrialModel(keras_tuner.HyperModel):
    """A trial: a network of the study trained like a grid run, scored on validation data.

    Subclasses give `settings(hp)` (the flag values the trial uses) and `network(settings)`.
    """

    stage = None
    half_name = None

    def __init__(self, study, half, hyperband):
        super().__init__(name=self.stage)
        self.study, self.half, self.hyperband = study, half, hyperband

    def _epochs(self, hp, longest):
        """Hyperband's budget: the trial's units of longest/9 (all 9 while declaring)."""
        units = hp.values.get("tuner/epochs", HYPERBAND_UNITS)
        return longest * units / HYPERBAND_UNITS

    def _solver(self, settings):
        """The grid's solver with the trial's values (its length always in epochs)."""
        return training.Solver.from_config(
            self.study.experiment.solver,
            len(self.half.train_y),
            fine_tuned=True,
            learning_rate=settings["learning_rate"],
            batch_size=settings["batch_size"],
            epochs=settings["epochs"],
            train_steps=0,
            fine_tune_lr_scale=settings.get("fine_tune_lr_scale", 1.0),
        )

    def _seed(self, hp):
        text = json.dumps({"stage": self.stage, **hp.values}, sort_keys=True)
        return (zlib.crc32(text.encode()) + self.study.experiment.grid.seed_offset) % 2**31

    def build(self, hp):
        """The compiled network; the tuner calls it inside its distribution strategy."""
        settings = self.settings(hp)
        keras.utils.set_random_seed(self._seed(hp))
        model = self.network(settings)
        training.compile_model(model, self._solver(settings))
        return model

    def fit(self, hp, model, *, callbacks, trial_id, trial_dir):
        """Trains like a grid run (resuming a killed trial); returns the trial's score."""
        e = self.study.experiment
        settings = self.settings(hp)
        solver = self._solver(settings)
        half, seed = self.half, self._seed(hp)

        def train_data(skip):
            return self.study.halves.train_batches(half, seed, skip, settings["batch_size"])

        val_data = self.study.halves.eval_batches(half, "val")
        # keras-tuner gave the TensorBoard callback a per-trial log dir and added HParams.
        board = next(c for c in callbacks if isinstance(c, keras.callbacks.TensorBoard))
        others = [c for c in callbacks if c is not board]
        record = {  # the trial's part of its record; fit_run's outcome gives the rest
            "stage": self.stage,
            "trial_id": trial_id,
            "tuner_id": os.environ.get("KERASTUNER_TUNER_ID", "tuner0"),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "values": settings,
            "half": self.half_name,
            "num_classes": half.num_classes,
            "learning_rate_trained": solver.learning_rate,
            "strategy": type(model.distribute_strategy).__name__,
            "replicas": model.distribute_strategy.num_replicas_in_sync,
        }
        where = f"[tune {self.stage}] trial {trial_id} on {record['tuner_id']}"
        outcome = training.fit_run(
            model,
            train_data,
            val_data,
            solver=solver,
            batch_size=settings["batch_size"],
            best_k=e.solver.best_k,
            run_dir=os.path.join(trial_dir, "run"),
            weights_path=os.path.join(trial_dir, WEIGHTS),
            tensorboard_dir=board.log_dir,
            verbose=e.verbose,
            extra_callbacks=others,
        )
        files.write_json(os.path.join(trial_dir, RECORD), {**record, **outcome.record()})
        if not outcome.ok:
            log(f"{where}: {_show(settings)} -> FAILED ({outcome.reason})")
            raise keras_tuner.errors.FailedTrialError(outcome.reason)
        writer = tf.summary.create_file_writer(os.path.join(board.log_dir, "validation"))
        with writer.as_default():
            tf.summary.scalar(OBJECTIVE, outcome.best_k, step=solver.total_steps)
        writer.close()
        resumed = outcome.resumed_from_step
        log(
            f"{where}: {_show(settings)} -> best-{e.solver.best_k} val {outcome.best_k:.4f}, "
            f"{outcome.train_seconds:.1f}s" + (f" (resumed at step {resumed})" if resumed else "")
        )
        return {OBJECTIVE: outcome.best_k, "val_accuracy": outcome.final_val}


class BaseSearch(_TrialModel):
    """Base network on half A: learning rate, weight decay, batch size, epochs."""

    stage, half_name = "base", "A"

    def settings(self, hp):
        e = self.study.experiment
        s = e.solver
        decay_low, decay_high = (
            (s.weight_decay / 10, s.weight_decay * 10) if s.weight_decay else (1e-6, 1e-2)
        )
        sizes = sorted({max(1, s.batch_size // 2), s.batch_size, 2 * s.batch_size})
        if self.hyperband:
            epochs = self._epochs(hp, 2 * e.solver.epochs)
        else:
            epochs = hp.Float(
                "epochs", s.epochs / 2, s.epochs * 2, sampling="log", default=s.epochs
            )
        return {
            "learning_rate": _round(
                hp.Float(
                    "learning_rate",
                    e.solver.learning_rate / 10,
                    e.solver.learning_rate * 10,
                    sampling="log",
                    default=e.solver.learning_rate,
                )
            ),
            "weight_decay": _round(
                hp.Float(
                    "weight_decay",
                    decay_low,
                    decay_high,
                    sampling="log",
                    default=e.solver.weight_decay or None,
                )
            ),
            "batch_size": int(hp.Choice("batch_size", sizes, default=e.solver.batch_size)),
            "epochs": _round(epochs),
        }

    def network(self, settings):
        return self.study.build_model(self.half.num_classes, weight_decay=settings["weight_decay"])


class FineTuneSearch(_TrialModel):
    """AnB+ at n on half B, from the best base network: the fine-tuning rate scale."""

    stage, half_name = "transfer_ft", "B"

    def __init__(self, study, half, hyperband, base, n, tuning_dir):
        super().__init__(study, half, hyperband)
        self.base, self.n = base, n
        self.base_weights = os.path.join(tuning_dir, base["weights"])

    def settings(self, hp):
        settings = dict(self.base["values"])
        settings["fine_tune_lr_scale"] = _round(
            hp.Float("fine_tune_lr_scale", 0.01, 1.0, sampling="log", default=1.0)
        )
        if self.hyperband:
            settings["epochs"] = _round(self._epochs(hp, settings["epochs"]))
        return settings

    def network(self, settings):
        base = self.study.build_model(
            self.base["num_classes"], weight_decay=settings["weight_decay"]
        )
        base.load_weights(self.base_weights)
        return surgery.transfer(
            base,
            self.n,
            "fine_tuned",
            num_classes=self.half.num_classes,
            cut_names=self.study.cut_names(base),
        )


def _round(value):
    """4 significant digits: the value a trial trains with is the one tuned.flags shows."""
    return float(f"{value:.4g}")


def _show(settings):
    return " ".join(f"{name}={value:g}" for name, value in settings.items())


# ----- tuned.flags -------------------------------------------------------------------------
def flagfile_text(experiment, n, base, fine, path):
    """tuned.flags: the best values, each with a comment on the trial it came from."""
    e = experiment
    flagfiles = [arg for arg in sys.argv[1:] if arg.startswith("--flagfile=")]
    lines = [
        "# Tuned by `python -m kerastransfer.run --mode=tune` (kerastransfer/tuning/):",
        "#   python -m kerastransfer.run " + " ".join(sys.argv[1:]),
        f"# Tuner {e.tuning.tuner}, split {e.data.splits[0]}; scores are the mean of the best "
        f"{e.solver.best_k} validation evaluations (test data was never used).",
        "# Use it after the flags it was tuned with, with a NEW --workdir (a workdir trained "
        "with other values refuses them):",
        "#   python -m kerastransfer.run "
        + " ".join([*flagfiles, f"--flagfile={path}", "--workdir=NEW_DIR"]),
    ]
    where = (
        f"base trial {base['trial_id']} (tuning/base/trial_{base['trial_id']}) of "
        f"{base['trials']}, best-{base['k']} val accuracy {base['score']:.4f} on half A's "
        "validation split"
    )
    for name in ("learning_rate", "weight_decay", "batch_size", "epochs"):
        lines += [f"# {name}: {where}", f"--{name}={base['values'][name]}"]
    if fine is None:
        lines.append(
            "# fine_tune_lr_scale: not tuned (no AnB+ trial finished); the grid uses its default"
        )
    else:
        lines += [
            f"# fine_tune_lr_scale: AnB+ n={n} trial {fine['trial_id']} "
            f"(tuning/transfer_ft/trial_{fine['trial_id']}) of {fine['trials']}, "
            f"best-{fine['k']} val accuracy {fine['score']:.4f} on half B's validation "
            f"split, trained {fine['epochs_trained']:g} epochs",
            f"--fine_tune_lr_scale={fine['values']['fine_tune_lr_scale']}",
        ]
    return "\n".join(lines) + "\n"
