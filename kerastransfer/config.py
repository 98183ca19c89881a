"""The resolved experiment: flags validated once, written to workdir/config.json.

Every check here raises `UsageError` with a one-line message naming the flag, the bad value
and the fix, before anything is written to the workdir.
"""

import dataclasses
import json
import os

from kerastransfer.errors import UsageError
from kerastransfer.flags import TREATMENTS

# Flags that change what a finished run computed: resuming a workdir with other values of
# these would mix incomparable runs, so the runner refuses unless --overwrite.
RESULT_FLAGS = (
    "dataset", "arch", "widths", "image_size", "dropout", "validation_fraction",
    "examples_per_class", "max_examples_per_class", "epochs", "train_steps", "batch_size",
    "learning_rate", "momentum", "weight_decay", "lr_decay_steps", "bias_lr_multiplier",
    "eval_every", "seed_offset", "source_model", "source_weights", "cut_layers",
    "fine_tune_lr_scale", "eval_split", "mixed_precision",
)


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One study: what to train and how. Built by `from_flags`, never by hand in the CLI."""

    workdir: str
    mode: str = "all"
    dataset: str = "fashion_mnist"
    manual_dir: str | None = None
    data_dir: str | None = None
    image_dir: str | None = None
    splits: tuple = ("random:0",)
    validation_fraction: float = 0.1
    examples_per_class: int = 0
    max_examples_per_class: int = 0
    arch: str = "caffenet_small"
    widths: tuple = ()
    image_size: int = 0
    dropout: float = 0.5
    layers: tuple = (1, 2, 3, 4, 5, 6, 7)
    treatments: tuple = TREATMENTS
    seeds: tuple = (0,)
    epochs: float = 2.0
    train_steps: int = 0
    batch_size: int = 128
    learning_rate: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_decay_steps: int = 0
    bias_lr_multiplier: float = 1.0
    eval_every: int = 0
    best_k: int = 5
    strategy: str = "auto"
    seed_offset: int = 0
    cache_frozen: bool = True
    cache_budget_mb: int = 2048
    overwrite: bool = False
    verbose: bool = False
    results: str | None = None
    reference: str = "none"
    export_run: str | None = None
    export_dir: str | None = None
    export_treatments: tuple = ("transfer", "transfer_ft")
    model_name: str = "kerastransfer"
    on_failure: str = "continue"
    on_corrupt_weights: str = "redo"
    deterministic: bool = False
    source_model: str | None = None
    source_weights: str | None = None
    cut_layers: tuple = ()
    tuner: str = "bayesian"
    max_trials: int = 10
    tune_seconds: int = 0
    tune_n: int = 0
    fine_tune_lr_scale: float = 1.0
    eval_split: str = "validation"
    mixed_precision: str = "none"
    num_shards: int = 1
    shard_index: int = 0
    runs: tuple = ()
    wait_timeout: int = 86400
    poll_seconds: int = 30

    @property
    def sharded(self):
        """True when this process trains only part of the grid (--num_shards, --runs)."""
        return self.num_shards > 1 or bool(self.runs)

    def to_json(self):
        return dataclasses.asdict(self)

    def result_fingerprint(self):
        """The values of RESULT_FLAGS, as stored in config.json."""
        data = self.to_json()
        return {name: data[name] for name in RESULT_FLAGS}


def _ints(flag, values):
    try:
        return tuple(int(v) for v in values)
    except ValueError:
        raise UsageError(f"--{flag}={','.join(values)} must be a comma-separated list of "
                         "integers, e.g. --{flag}=1,2,3".replace("{flag}", flag)) from None


def from_flags(flag_values):
    """Builds and validates an Experiment from parsed absl flags."""
    names = {field.name for field in dataclasses.fields(Experiment)}
    values = {name: flag_values[name].value for name in names}
    values["splits"] = tuple(values["splits"])
    values["treatments"] = tuple(values["treatments"])
    values["export_treatments"] = tuple(values["export_treatments"])
    values["cut_layers"] = tuple(values["cut_layers"])
    values["runs"] = tuple(values["runs"])
    values["layers"] = _ints("layers", values["layers"])
    values["seeds"] = _ints("seeds", values["seeds"])
    values["widths"] = _ints("widths", values["widths"])
    experiment = Experiment(**values)
    validate(experiment)
    return experiment


def validate(experiment):
    """Checks values absl cannot check by itself; raises UsageError naming the flag."""
    e = experiment
    if not e.workdir:
        raise UsageError("--workdir is required: pass a directory for the study's results")
    positive = {"epochs": e.epochs, "batch_size": e.batch_size,
                "learning_rate": e.learning_rate, "best_k": e.best_k,
                "max_trials": e.max_trials, "fine_tune_lr_scale": e.fine_tune_lr_scale}
    for flag, value in positive.items():
        if not value > 0:
            default = Experiment.__dataclass_fields__[flag].default
            raise UsageError(f"--{flag}={value} must be positive, e.g. --{flag}={default}")
    non_negative = {"train_steps": e.train_steps, "eval_every": e.eval_every,
                    "lr_decay_steps": e.lr_decay_steps, "weight_decay": e.weight_decay,
                    "examples_per_class": e.examples_per_class,
                    "max_examples_per_class": e.max_examples_per_class,
                    "cache_budget_mb": e.cache_budget_mb, "tune_seconds": e.tune_seconds,
                    "tune_n": e.tune_n}
    for flag, value in non_negative.items():
        if value < 0:
            raise UsageError(f"--{flag}={value} must be 0 or more")
    if not 0 <= e.dropout < 1:
        raise UsageError(f"--dropout={e.dropout} must be in [0, 1)")
    if not 0 < e.validation_fraction < 1:
        raise UsageError(f"--validation_fraction={e.validation_fraction} must be in (0, 1)")
    if not 0 <= e.momentum < 1:
        raise UsageError(f"--momentum={e.momentum} must be in [0, 1)")
    for treatment in e.treatments:
        if treatment not in TREATMENTS:
            raise UsageError(f"unknown --treatments value {treatment!r}; use any of "
                             f"{', '.join(TREATMENTS)}")
    for treatment in e.export_treatments:
        if treatment not in TREATMENTS:
            raise UsageError(f"unknown --export_treatments value {treatment!r}; use any of "
                             f"{', '.join(TREATMENTS)}")
    if not e.splits:
        raise UsageError("--splits is empty; pass e.g. --splits=random:0,dissimilar")
    for n in e.layers:
        if n < 1:
            raise UsageError(f"--layers value n={n} is out of range: layers start at 1 "
                             "(n=0 is the base network, trained anyway)")
    if len(set(e.layers)) != len(e.layers) or len(set(e.seeds)) != len(e.seeds):
        raise UsageError(f"--layers={','.join(map(str, e.layers))} or "
                         f"--seeds={','.join(map(str, e.seeds))} repeats a value")
    if e.arch == "caffenet_small" and e.widths and len(e.widths) != 7:
        raise UsageError(f"--widths={','.join(map(str, e.widths))} needs 7 values: conv1.."
                         "conv5 filters, fc6 and fc7 units")
    if e.widths and min(e.widths) < 1:
        raise UsageError(f"--widths={','.join(map(str, e.widths))} must all be positive")
    if os.path.exists(e.workdir) and not os.path.isdir(e.workdir):
        raise UsageError(f"--workdir={e.workdir} is a file, not a directory; pass a "
                         "directory path")
    _validate_scale_out(e)


def _validate_scale_out(e):
    """Sharding, multi-worker and the `all` split: combinations that cannot work."""
    if "://" in e.workdir:
        raise UsageError(f"--workdir={e.workdir} is a URL; the workdir must be a local or "
                         "NFS directory (results.jsonl is appended under a file lock)")
    if e.num_shards < 1 or not 0 <= e.shard_index < e.num_shards:
        raise UsageError(f"--shard_index={e.shard_index} --num_shards={e.num_shards}: need "
                         "num_shards >= 1 and 0 <= shard_index < num_shards")
    if e.wait_timeout < 0 or e.poll_seconds < 1:
        raise UsageError(f"--wait_timeout={e.wait_timeout} --poll_seconds={e.poll_seconds}: "
                         "need wait_timeout >= 0 and poll_seconds >= 1")
    if len(set(e.runs)) != len(e.runs):
        raise UsageError(f"--runs={','.join(e.runs)} repeats a run id")
    if e.sharded and e.overwrite:
        raise UsageError("--overwrite cannot be combined with --num_shards or --runs: start "
                         "the workdir over with one unsharded process first")
    if e.overwrite and e.strategy == "multi_worker":
        raise UsageError("--overwrite cannot be combined with --strategy=multi_worker: start "
                         "the workdir over with one process first")
    if e.sharded and e.strategy == "multi_worker":
        raise UsageError("--strategy=multi_worker cannot be combined with --num_shards or "
                         "--runs: spread one run over workers, or the grid over shards")
    if e.mixed_precision == "mixed_float16" and e.bias_lr_multiplier != 1.0:
        raise UsageError(f"--bias_lr_multiplier={e.bias_lr_multiplier} is lost inside the loss "
                         "scaling of --mixed_precision=mixed_float16; use mixed_bfloat16 (no "
                         "loss scaling) or --bias_lr_multiplier=1")
    from_a = sorted(t for t in e.treatments if t in ("transfer", "transfer_ft"))
    if "all" in e.splits and from_a:
        raise UsageError(f"--splits=all has a single half (every class), so --treatments="
                         f"{','.join(from_a)} would copy it to itself; use random, selffer or "
                         "selffer_ft with it")


def check_workdir(experiment, stored_path):
    """Refuses a workdir whose config.json differs in a RESULT_FLAGS value.

    Returns the names of the differing flags (empty when the config matches or is new).
    Raises UsageError unless --overwrite.
    """
    if not os.path.exists(stored_path):
        return []
    try:
        with open(stored_path) as f:
            stored = json.load(f).get("experiment", {})
    except (OSError, ValueError) as error:
        raise UsageError(f"{stored_path} is unreadable ({error}); fix or remove it, or pass "
                         "--overwrite") from None
    ours = json.loads(json.dumps(experiment.result_fingerprint()))
    # A flag newer than the workdir's config.json counts as having had its default there.
    defaults = json.loads(json.dumps(Experiment(workdir="").result_fingerprint()))
    stored = {name: stored.get(name, defaults[name]) for name in RESULT_FLAGS}
    differing = [name for name in RESULT_FLAGS if stored[name] != ours[name]]
    if differing and not experiment.overwrite:
        changes = ", ".join(f"--{name} {stored.get(name)!r} -> {ours[name]!r}"
                            for name in differing)
        raise UsageError(f"workdir {experiment.workdir} was run with another config ({changes});"
                         " use a new --workdir, restore those flags, or pass --overwrite")
    return differing
