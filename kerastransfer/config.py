"""The resolved experiment: nested sections, one source of defaults, validated once.

`Experiment` holds the study's whole configuration in sections (data, model, solver, grid,
scale_out, tuning, export, analysis). Every command-line flag is one field of one section and
has the same name; flags.py takes each flag's default from here, so every default is written
once. The resolved experiment is stored as workdir/config.json and read back by
`Experiment.from_json`.

Every check here raises `UsageError` with a one-line message naming the flag, the bad value
and the fix, before anything is written to the workdir. This module imports no TensorFlow.
"""

import dataclasses
import os

from kerastransfer import treatments
from kerastransfer.errors import UsageError


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Which images, which class splits, and what is held out for validation."""

    dataset: str = "fashion_mnist"
    manual_dir: str | None = None
    data_dir: str | None = None
    image_dir: str | None = None
    splits: tuple = ("random:0",)
    validation_fraction: float = 0.1
    examples_per_class: int = 0
    max_examples_per_class: int = 0
    eval_split: str = "validation"


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The network: an architecture of models/, or a user's own source model."""

    arch: str = "caffenet_small"
    widths: tuple = ()
    image_size: int = 0
    dropout: float = 0.5
    source_model: str | None = None
    source_weights: str | None = None
    cut_layers: tuple = ()
    cut_every: int = 1


@dataclasses.dataclass(frozen=True)
class SolverConfig:
    """How every network trains: the paper's SGD solver, scaled by these values."""

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
    fine_tune_lr_scale: float = 1.0


@dataclasses.dataclass(frozen=True)
class GridConfig:
    """Which networks the study trains, and what a failed run or damaged file does."""

    layers: tuple = (1, 2, 3, 4, 5, 6, 7)
    treatments: tuple = treatments.PAPER_NAMES
    design: str = "grid"
    directions: str = "AB"
    seeds: tuple = (0,)
    seed_offset: int = 0
    cache_frozen: bool = True
    cache_budget_mb: int = 2048
    on_failure: str = "continue"
    on_corrupt_weights: str = "redo"
    deterministic: bool = False


@dataclasses.dataclass(frozen=True)
class ScaleOutConfig:
    """Devices, machines, precision, and the grid split between processes."""

    strategy: str = "auto"
    mixed_precision: str = "none"
    runs_in_flight: int = 1
    num_shards: int = 1
    shard_index: int = 0
    runs: tuple = ()
    wait_timeout: int = 86400
    poll_seconds: int = 30


@dataclasses.dataclass(frozen=True)
class TuningConfig:
    """--mode=tune: the keras-tuner searches."""

    tuner: str = "bayesian"
    max_trials: int = 10
    tune_seconds: int = 0
    tune_n: int = 0


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """Which run is exported for TF-Serving, where, and what its signatures accept."""

    export_run: str | None = None
    export_dir: str | None = None
    export_treatments: tuple = treatments.FROM_OTHER_HALF
    model_name: str = "kerastransfer"
    # A 24-megapixel camera photo fits; decoded, one such RGB file takes 75 MB.
    export_max_image_pixels: int = 25_000_000
    export_max_batch: int = 64


@dataclasses.dataclass(frozen=True)
class AnalysisConfig:
    """--mode=analyze on other results, and the paper's numbers on the figures."""

    results: str | None = None
    reference: str = "none"


# The transferability estimators of analysis/estimators.py, by their flag names.
ESTIMATORS = ("logme", "hscore", "transrate", "linear_probe", "knn", "leep")


@dataclasses.dataclass(frozen=True)
class ScoringConfig:
    """Transferability estimators on every cut point (--mode=score), and --prune."""

    estimators: tuple = ESTIMATORS
    score_examples: int = 2000
    score_reduction: str = "pca"
    prune: int = 0
    prune_estimator: str = "logme"


SECTIONS = {
    "data": DataConfig,
    "model": ModelConfig,
    "solver": SolverConfig,
    "grid": GridConfig,
    "scale_out": ScaleOutConfig,
    "tuning": TuningConfig,
    "export": ExportConfig,
    "analysis": AnalysisConfig,
    "scoring": ScoringConfig,
}


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One study: where it runs, what it trains and how. Built by `from_flags` or `from_json`."""

    workdir: str | None = None
    mode: str = "all"
    overwrite: bool = False
    verbose: bool = False
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    solver: SolverConfig = SolverConfig()
    grid: GridConfig = GridConfig()
    scale_out: ScaleOutConfig = ScaleOutConfig()
    tuning: TuningConfig = TuningConfig()
    export: ExportConfig = ExportConfig()
    analysis: AnalysisConfig = AnalysisConfig()
    scoring: ScoringConfig = ScoringConfig()

    @property
    def sharded(self):
        """True when this process trains only part of the grid (--num_shards, --runs)."""
        return self.scale_out.num_shards > 1 or bool(self.scale_out.runs)

    @property
    def own_model(self):
        """True when the source network is the user's own model, not a base trained on A."""
        return bool(self.model.source_model or self.model.source_weights)

    def to_json(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, stored):
        """The Experiment of a stored config.json's "experiment" object.

        Reads the nested form this version writes and the flat form of earlier versions
        (one key per flag); a key unknown to this version is ignored, a missing one takes
        its default.
        """
        values = flat_values(stored)
        return build(
            {
                name: value
                for name, value in values.items()
                if name in FLAG_SECTIONS or name in TOP_LEVEL
            },
            workdir=values.get("workdir", ""),
        )

    def replace(self, **values):
        """A copy with some flags changed, each named by its flag (e.g. batch_size=64)."""
        return build({**self.flat(), **values}, workdir=values.get("workdir", self.workdir))

    def flat(self):
        """{flag name: value} for every flag."""
        return flat_values(self.to_json())

    def result_fingerprint(self):
        """The values of RESULT_FLAGS, as stored in config.json."""
        flat = self.flat()
        return {name: flat[name] for name in RESULT_FLAGS}


# Flag name -> the section that holds it; top-level fields are not in a section.
FLAG_SECTIONS = {
    field.name: section for section, cls in SECTIONS.items() for field in dataclasses.fields(cls)
}
TOP_LEVEL = ("workdir", "mode", "overwrite", "verbose")

# Flags that change what a finished run computed: resuming a workdir with other values of
# these would mix incomparable runs, so the runner refuses unless --overwrite.
RESULT_FLAGS = (
    "dataset",
    "arch",
    "widths",
    "image_size",
    "dropout",
    "validation_fraction",
    "examples_per_class",
    "max_examples_per_class",
    "epochs",
    "train_steps",
    "batch_size",
    "learning_rate",
    "momentum",
    "weight_decay",
    "lr_decay_steps",
    "bias_lr_multiplier",
    "eval_every",
    "seed_offset",
    "source_model",
    "source_weights",
    "cut_layers",
    "cut_every",
    "fine_tune_lr_scale",
    "eval_split",
    "mixed_precision",
)
# The largest --export_max_image_pixels: width times height stays far from int64's limit.
MAX_IMAGE_PIXELS_LIMIT = 2**31 - 1
# --directions: the halves the grid's networks target.
DIRECTIONS = {"AB": ("B",), "BA": ("A",), "both": ("B", "A")}
# --design: every cell for every base network, or only the cells the findings read.
DESIGNS = ("grid", "findings")
# Flags that are lists of integers.
INT_LISTS = ("layers", "seeds", "widths")


def default(name):
    """The default value of flag `name`: the one place defaults are written is above."""
    if name in TOP_LEVEL:
        return Experiment.__dataclass_fields__[name].default
    return SECTIONS[FLAG_SECTIONS[name]].__dataclass_fields__[name].default


def flat_values(stored):
    """{flag name: value} of a nested or flat experiment dict."""
    flat = {}
    for key, value in stored.items():
        if key in SECTIONS and isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    return flat


def build(values, workdir):
    """An Experiment from {flag name: value}; lists become tuples, absent flags defaults."""
    sections = {section: {} for section in SECTIONS}
    top = {}
    for name, value in values.items():
        value = tuple(value) if isinstance(value, list) else value
        if name in TOP_LEVEL:
            top[name] = value
        else:
            sections[FLAG_SECTIONS[name]][name] = value
    top["workdir"] = workdir
    return Experiment(
        **top, **{section: SECTIONS[section](**fields) for section, fields in sections.items()}
    )


def _ints(flag, values):
    try:
        return tuple(int(v) for v in values)
    except ValueError:
        raise UsageError(
            f"--{flag}={','.join(values)} must be a comma-separated list of "
            f"integers, e.g. --{flag}=1,2,3"
        ) from None


def from_flags(flag_values):
    """Builds and validates an Experiment from parsed absl flags."""
    values = {name: flag_values[name].value for name in (*TOP_LEVEL, *FLAG_SECTIONS)}
    for name in INT_LISTS:
        values[name] = _ints(name, values[name])
    experiment = build(values, workdir=values.pop("workdir"))
    validate(experiment)
    return experiment


def validate(experiment):
    """Checks values absl cannot check by itself; raises UsageError naming the flag."""
    e = experiment
    if not e.workdir:
        raise UsageError("--workdir is required: pass a directory for the study's results")
    flat = e.flat()
    for flag in (
        "epochs",
        "batch_size",
        "learning_rate",
        "best_k",
        "max_trials",
        "fine_tune_lr_scale",
        "runs_in_flight",
        "score_examples",
        "export_max_image_pixels",
        "export_max_batch",
    ):
        if not flat[flag] > 0:
            raise UsageError(
                f"--{flag}={flat[flag]} must be positive, e.g. --{flag}={default(flag)}"
            )
    for flag in (
        "train_steps",
        "eval_every",
        "lr_decay_steps",
        "weight_decay",
        "examples_per_class",
        "max_examples_per_class",
        "cache_budget_mb",
        "tune_seconds",
        "tune_n",
        "prune",
    ):
        if flat[flag] < 0:
            raise UsageError(f"--{flag}={flat[flag]} must be 0 or more")
    if not 0 <= e.model.dropout < 1:
        raise UsageError(f"--dropout={e.model.dropout} must be in [0, 1)")
    if not 0 < e.data.validation_fraction < 1:
        raise UsageError(f"--validation_fraction={e.data.validation_fraction} must be in (0, 1)")
    if not 0 <= e.solver.momentum < 1:
        raise UsageError(f"--momentum={e.solver.momentum} must be in [0, 1)")
    for flag in ("treatments", "export_treatments"):
        for name in flat[flag]:
            if name not in treatments.NAMES:
                raise UsageError(
                    f"unknown --{flag} value {name!r}; use any of {', '.join(treatments.NAMES)}"
                )
    if not e.data.splits:
        raise UsageError("--splits is empty; pass e.g. --splits=random:0,dissimilar")
    for n in e.grid.layers:
        if n < 1:
            raise UsageError(
                f"--layers value n={n} is out of range: layers start at 1 "
                "(n=0 is the base network, trained anyway)"
            )
    layers, seeds = e.grid.layers, e.grid.seeds
    if len(set(layers)) != len(layers) or len(set(seeds)) != len(seeds):
        raise UsageError(
            f"--layers={','.join(map(str, layers))} or "
            f"--seeds={','.join(map(str, seeds))} repeats a value"
        )
    widths = e.model.widths
    if e.model.arch == "caffenet_small" and widths and len(widths) != 7:
        raise UsageError(
            f"--widths={','.join(map(str, widths))} needs 7 values: conv1.."
            "conv5 filters, fc6 and fc7 units"
        )
    if widths and min(widths) < 1:
        raise UsageError(f"--widths={','.join(map(str, widths))} must all be positive")
    if os.path.exists(e.workdir) and not os.path.isdir(e.workdir):
        raise UsageError(f"--workdir={e.workdir} is a file, not a directory; pass a directory path")
    if e.export.export_max_image_pixels > MAX_IMAGE_PIXELS_LIMIT:
        raise UsageError(
            f"--export_max_image_pixels={e.export.export_max_image_pixels} is over "
            f"{MAX_IMAGE_PIXELS_LIMIT}; use a smaller limit, e.g. the default "
            f"{default('export_max_image_pixels')}"
        )
    _validate_scale_out(e)
    _validate_scoring(e)
    _validate_cuts(e)


def _validate_cuts(e):
    """--cut_every thins a given model's own cut points; it has no meaning elsewhere."""
    m = e.model
    if m.cut_every < 1:
        raise UsageError(f"--cut_every={m.cut_every} must be 1 or more (1 keeps every cut)")
    if m.cut_every > 1 and not e.own_model:
        raise UsageError(
            f"--cut_every={m.cut_every} thins the cut points of a given source model: pass "
            "--source_model (or --arch with --source_weights), or drop --cut_every"
        )
    if m.cut_layers and m.cut_every != 1:
        raise UsageError(
            f"--cut_every={m.cut_every} thins the default cut points, but --cut_layers names "
            "them; pass one of the two"
        )


def _validate_scoring(e):
    """Estimator names, and --prune: an own-model study's choice among its --layers."""
    s = e.scoring
    for name in (*s.estimators, s.prune_estimator):
        if name not in ESTIMATORS:
            raise UsageError(
                f"unknown estimator {name!r} in --estimators or --prune_estimator; use any of "
                f"{','.join(ESTIMATORS)}"
            )
    if e.mode == "score" and not s.estimators:
        raise UsageError("--mode=score with an empty --estimators scores nothing; name some")
    if not s.prune:
        return
    if not e.own_model:
        raise UsageError(
            f"--prune={s.prune} picks cut points of a given source model: pass "
            "--source_model (or --arch with --source_weights), or drop --prune"
        )
    if s.prune > len(e.grid.layers):
        raise UsageError(
            f"--prune={s.prune} keeps more cut points than --layers="
            f"{','.join(map(str, e.grid.layers))} holds; use 1..{len(e.grid.layers)}"
        )
    if s.prune_estimator not in s.estimators:
        raise UsageError(
            f"--prune_estimator={s.prune_estimator} is not in --estimators="
            f"{','.join(s.estimators)}; add it there"
        )


def _validate_scale_out(e):
    """Sharding, multi-worker and the `all` split: combinations that cannot work."""
    s = e.scale_out
    if "://" in e.workdir:
        raise UsageError(
            f"--workdir={e.workdir} is a URL; the workdir must be a local or "
            "NFS directory (results.jsonl is appended under a file lock)"
        )
    if s.num_shards < 1 or not 0 <= s.shard_index < s.num_shards:
        raise UsageError(
            f"--shard_index={s.shard_index} --num_shards={s.num_shards}: need "
            "num_shards >= 1 and 0 <= shard_index < num_shards"
        )
    if s.wait_timeout < 0 or s.poll_seconds < 1:
        raise UsageError(
            f"--wait_timeout={s.wait_timeout} --poll_seconds={s.poll_seconds}: "
            "need wait_timeout >= 0 and poll_seconds >= 1"
        )
    if len(set(s.runs)) != len(s.runs):
        raise UsageError(f"--runs={','.join(s.runs)} repeats a run id")
    if e.sharded and e.overwrite:
        raise UsageError(
            "--overwrite cannot be combined with --num_shards or --runs: start "
            "the workdir over with one unsharded process first"
        )
    if e.overwrite and s.strategy == "multi_worker":
        raise UsageError(
            "--overwrite cannot be combined with --strategy=multi_worker: start "
            "the workdir over with one process first"
        )
    if e.sharded and s.strategy == "multi_worker":
        raise UsageError(
            "--strategy=multi_worker cannot be combined with --num_shards or "
            "--runs: spread one run over workers, or the grid over shards"
        )
    if s.mixed_precision == "mixed_float16" and e.solver.bias_lr_multiplier != 1.0:
        raise UsageError(
            f"--bias_lr_multiplier={e.solver.bias_lr_multiplier} is lost inside "
            "the loss scaling of --mixed_precision=mixed_float16; use "
            "mixed_bfloat16 (no loss scaling) or --bias_lr_multiplier=1"
        )
    from_other = sorted(t for t in e.grid.treatments if treatments.get(t).source == "other")
    if "all" in e.data.splits and from_other:
        raise UsageError(
            f"--splits=all has a single half (every class), so --treatments="
            f"{','.join(from_other)} would copy it to itself; use random, selffer "
            "or selffer_ft with it"
        )
