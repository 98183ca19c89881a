"""The resolved experiment: nested sections, each setting declared once, validated once.

`Experiment` holds the study's whole configuration in sections (data, model, solver, grid,
scale_out, tuning, export, analysis, scoring). Every command-line flag is one field of one
section (or of `Experiment` itself) and has the same name; the field is the flag's only
declaration: `setting` puts its default, help, kind, allowed values, per-field checks and
whether it changes a finished run's meaning in one place, and flags.py defines the absl flags
from it. The resolved experiment is stored as workdir/config.json and read back by
`Experiment.from_json`.

Every check here raises `UsageError` with a one-line message naming the flag, the bad value
and the fix, before anything is written to the workdir. This module imports no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from kerastransfer import registry, treatments
from kerastransfer.errors import UsageError
from kerastransfer.estimators import registry as estimator_registry

if TYPE_CHECKING:
    from absl import flags

# A setting's kind: which absl flag flags.py defines for it (INTS and STRINGS are both
# comma-separated lists; from_flags turns INTS into integers).
BOOL, INT, FLOAT, STRING, INTS, STRINGS, ENUM = (
    "bool",
    "int",
    "float",
    "string",
    "ints",
    "strings",
    "enum",
)
_SCALAR_KINDS = {bool: BOOL, int: INT, float: FLOAT, str: STRING, type(None): STRING}

# A setting's check: check(flag name, its value, its default); raises UsageError. The value
# is of the setting's kind (a number, a string, a tuple of them): Any, as checks are shared.
Check = Callable[[str, Any, Any], None]
Value = TypeVar("Value")


def setting(
    default: Value,
    help: str,
    *,
    kind: str | None = None,
    choices: Iterable[str] | None = None,
    result: bool = False,
    check: Check | tuple[Check, ...] = (),
) -> Value:
    """A flag's one declaration: a dataclass field with its default and, in its metadata, the
    help text, kind (from `choices` or the default's type; lists must name INTS or STRINGS),
    allowed values, checks (`check(flag, value, default)`, one or a tuple, raise UsageError)
    and `result`: whether the flag changes what a finished run computed (RESULT_FLAGS)."""
    if choices is not None:
        kind = ENUM
    elif kind is None:
        if type(default) not in _SCALAR_KINDS:
            raise TypeError(f"setting({default!r}, ...) is a list: pass kind=INTS or STRINGS")
        kind = _SCALAR_KINDS[type(default)]
    return dataclasses.field(
        default=default,
        metadata={
            "help": help,
            "kind": kind,
            "choices": tuple(choices) if choices is not None else None,
            "result": result,
            "checks": check if isinstance(check, tuple) else (check,),
        },
    )


def settings(cls: type) -> list[dataclasses.Field[Any]]:
    """The setting fields of a dataclass, in declaration order (Experiment's sections are
    fields too, but not settings)."""
    return [field for field in dataclasses.fields(cls) if "kind" in field.metadata]


def result_flags(*classes: type) -> tuple[str, ...]:
    """The names of the settings of `classes` declared with result=True."""
    return tuple(
        field.name for cls in classes for field in settings(cls) if field.metadata["result"]
    )


def check_settings(section: object) -> None:
    """Runs every setting's own checks on a section (or Experiment) instance: its allowed
    values (in absl's words, as the command line never gets here with another) and `check`."""
    for field in settings(type(section)):
        value = getattr(section, field.name)
        choices = field.metadata["choices"]
        if choices is not None and value not in choices:
            raise UsageError(
                f"flag --{field.name}={value}: value should be one of <{'|'.join(choices)}>"
            )
        for check in field.metadata["checks"]:
            check(field.name, value, field.default)


# Per-field checks for `setting(check=...)`.


def positive(flag: str, value: Any, default: Any) -> None:
    if not value > 0:
        raise UsageError(f"--{flag}={value} must be positive, e.g. --{flag}={default}")


def non_negative(flag: str, value: Any, default: Any) -> None:
    if value < 0:
        raise UsageError(f"--{flag}={value} must be 0 or more")


def below_one(*, zero: bool) -> Check:
    """In [0, 1) when `zero` is allowed, else in (0, 1)."""

    def check(flag: str, value: Any, default: Any) -> None:
        above_low = value >= 0 if zero else value > 0
        if not (above_low and value < 1):
            raise UsageError(f"--{flag}={value} must be in {'[' if zero else '('}0, 1)")

    return check


def at_most(limit: float) -> Check:
    def check(flag: str, value: Any, default: Any) -> None:
        if value > limit:
            raise UsageError(
                f"--{flag}={value} is over {limit}; use a smaller limit, e.g. the default {default}"
            )

    return check


def all_positive(flag: str, values: Sequence[Any], default: Any) -> None:
    if values and min(values) < 1:
        raise UsageError(f"--{flag}={','.join(map(str, values))} must all be positive")


def non_empty(example: str) -> Check:
    def check(flag: str, values: Sequence[Any], default: Any) -> None:
        if not values:
            raise UsageError(f"--{flag} is empty; pass e.g. --{flag}={example}")

    return check


def distinct(what: str) -> Check:
    def check(flag: str, values: Sequence[Any], default: Any) -> None:
        if len(set(values)) != len(values):
            raise UsageError(f"--{flag}={','.join(map(str, values))} repeats {what}")

    return check


def each_in(names: Sequence[str]) -> Check:
    def check(flag: str, values: Sequence[Any], default: Any) -> None:
        for name in values:
            if name not in names:
                raise UsageError(f"unknown --{flag} value {name!r}; use any of {', '.join(names)}")

    return check


# --treatments=none: only the base networks (the reduced-volume ImageNet bases, for one).
BASES_ONLY = "none"


def _treatment_names(flag: str, values: Sequence[Any], default: Any) -> None:
    each_in((*treatments.NAMES, BASES_ONLY))(flag, values, default)
    if BASES_ONLY in values and len(values) > 1:
        raise UsageError(
            f"--{flag}={','.join(values)} mixes {BASES_ONLY} (base networks only) with "
            f"treatments; give {BASES_ONLY} alone or leave it out"
        )


def _blocks_from_one(flag: str, values: Sequence[Any], default: Any) -> None:
    for n in values:
        if n < 1:
            raise UsageError(
                f"--{flag} value n={n} is out of range: layers start at 1 "
                "(n=0 is the base network, trained anyway)"
            )


def _keeps_every_cut_at_one(flag: str, value: Any, default: Any) -> None:
    if value < 1:
        raise UsageError(f"--{flag}={value} must be 1 or more (1 keeps every cut)")


def _known_estimators(flag: str, value: Any, default: Any) -> None:
    """The registry's estimators (kerastransfer/estimators/) are the allowed values."""
    for name in (value,) if isinstance(value, str) else value:
        if name not in estimator_registry.names():
            raise UsageError(
                f"unknown estimator {name!r} in --estimators or --prune_estimator; use any of "
                f"{','.join(estimator_registry.names())}"
            )


# The largest --export_max_image_pixels: width times height stays far from int64's limit.
MAX_IMAGE_PIXELS_LIMIT = 2**31 - 1
# --directions: the halves the grid's networks target.
DIRECTIONS = {"AB": ("B",), "BA": ("A",), "both": ("B", "A")}
# --design: every cell for every base network, or only the cells the findings read.
DESIGNS = ("grid", "findings")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Which images, which class splits, and what is held out for validation."""

    dataset: str = setting(
        "fashion_mnist",
        registry.DATASETS.help(),
        result=True,
        check=registry.DATASETS.check,
    )
    manual_dir: str | None = setting(
        None,
        "TFDS manual dir: the Fashion-MNIST IDX files "
        "(default /usr/share/datasets/fashion-mnist) or the ImageNet tars.",
    )
    data_dir: str | None = setting(None, "TFDS data dir where prepared datasets are cached.")
    image_dir: str | None = setting(None, "For --dataset=image_folder: one folder per class.")
    splits: tuple[str, ...] = setting(
        ("random:0",),
        "Class splits: random:SEED, dissimilar, "
        "file:PATH (A's class ids; B the complement), file:PATH_A+PATH_B, or all "
        "(every class is the target: the paper's random-features networks).",
        kind=STRINGS,
        check=non_empty("random:0,dissimilar"),
    )
    validation_fraction: float = setting(
        0.1,
        "Share of each class's training examples "
        "held out for validation (the best-k metric and model selection).",
        result=True,
        check=below_one(zero=False),
    )
    examples_per_class: int = setting(
        0,
        "Reduced-volume study: keep the first k training examples of each class (0 = all).",
        result=True,
        check=non_negative,
    )
    max_examples_per_class: int = setting(
        0,
        "Cap train/validation/test examples per class (0 = no cap); for smoke runs.",
        result=True,
        check=non_negative,
    )
    eval_split: str = setting(
        "validation",
        "Data of the evaluation "
        "every --eval_every steps (the best-k metric, model selection): validation = "
        "the held-out --validation_fraction of the training images; test = the "
        "source's test split (imagenet2012: the official validation set, where the "
        "paper measured).",
        choices=("validation", "test"),
        result=True,
    )


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The network: an architecture of models/, or a user's own source model."""

    arch: str = setting(
        "caffenet_small",
        registry.ARCHITECTURES.help(),
        result=True,
        check=registry.ARCHITECTURES.check,
    )
    widths: tuple[int, ...] = setting(
        (),
        "caffenet_small: conv1..conv5 filters, fc6, fc7 units (7 ints; empty = defaults).",
        kind=INTS,
        result=True,
        check=all_positive,
    )
    image_size: int = setting(
        0,
        "Model input height and width (0 = the dataset's own size; caffenet uses 227).",
        result=True,
    )
    dropout: float = setting(
        0.5, "Dropout after fc6 and fc7.", result=True, check=below_one(zero=True)
    )
    source_model: str | None = setting(
        None,
        "A trained functional Keras model (.keras), or keras_hub:PATH for a keras-hub preset "
        "directory (the hub extra), to transfer from; turns the study into: for each n, frozen "
        "and fine-tuned transfer to --dataset/--image_dir, plus a from-scratch baseline.",
        result=True,
    )
    source_weights: str | None = setting(
        None,
        "With --arch=<a keras.applications backbone, e.g. resnet50>: a local weights file of "
        "the backbone without its top, to transfer from (same study as --source_model).",
        result=True,
    )
    cut_layers: tuple[str, ...] = setting(
        (),
        "Layer names that end blocks 1, 2, ... of the source model (default: the ends of its "
        "stages, or its transformer blocks; one block per weight layer below the head for a "
        "plain chain of layers).",
        kind=STRINGS,
        result=True,
    )
    cut_every: int = setting(
        1,
        "Own-model study: keep every K-th of the source model's default cut points (e.g. 3: a "
        "12-block ViT's blocks 3, 6, 9, 12); the last is always kept. 1 keeps them all.",
        result=True,
        check=_keeps_every_cut_at_one,
    )


@dataclasses.dataclass(frozen=True)
class SolverConfig:
    """How every network trains: the paper's SGD solver, scaled by these values."""

    epochs: float = setting(
        2.0,
        "Training length of every network, in epochs of its half's training set.",
        result=True,
        check=positive,
    )
    train_steps: int = setting(
        0, "Training length in steps; overrides --epochs.", result=True, check=non_negative
    )
    batch_size: int = setting(
        128, "Global batch size (split across replicas).", result=True, check=positive
    )
    learning_rate: float = setting(
        0.01, "Initial learning rate for the global batch.", result=True, check=positive
    )
    momentum: float = setting(0.9, "SGD momentum.", result=True, check=below_one(zero=True))
    weight_decay: float = setting(
        5e-4, "Caffe-style weight decay on kernels.", result=True, check=non_negative
    )
    lr_decay_steps: int = setting(
        0,
        "Divide the learning rate by 10 every this many "
        "steps (0 = the paper's ratio: every 100/450 of training).",
        result=True,
        check=non_negative,
    )
    bias_lr_multiplier: float = setting(
        1.0, "Learning-rate multiplier for biases (Caffe used 2).", result=True
    )
    eval_every: int = setting(
        0,
        "Evaluate validation accuracy every this many steps (0 = 8 evaluations per run).",
        result=True,
        check=non_negative,
    )
    best_k: int = setting(
        5,
        "The paper's metric: mean of the k best validation evaluations (paper: 10).",
        check=positive,
    )
    fine_tune_lr_scale: float = setting(
        1.0,
        "Fine-tuned runs (BnB+, AnB+) train with "
        "--learning_rate times this (1 = the paper: one solver for all).",
        result=True,
        check=positive,
    )
    layer_decay: float = setting(
        0.75,
        "The layer_decay recipe (AnB+decay): copied block i of 1..n trains at this to the "
        "power n + 1 - i times the fine-tuning rate (0.75: the usual value).",
        result=True,
        check=below_one(zero=False),
    )


@dataclasses.dataclass(frozen=True)
class GridConfig:
    """Which networks the study trains, and what a failed run or damaged file does."""

    layers: tuple[int, ...] = setting(
        (1, 2, 3, 4, 5, 6, 7),
        "Values of n: transfer the first n blocks.",
        kind=INTS,
        check=_blocks_from_one,
    )
    treatments: tuple[str, ...] = setting(
        (),
        "Which transferred networks to train: " + ", ".join(treatments.NAMES) + " (base_long: "
        "the compute-matched base, the base trained on for as many more steps as a transferred "
        "network trains). Default: the paper's " + ",".join(treatments.PAPER_NAMES) + " for the "
        "grid; for your own model (--source_model, --source_weights) every transfer mode and "
        "recipe, " + ",".join(treatments.TRANSFER_MODES) + ". " + BASES_ONLY + ": only the "
        "base networks.",
        kind=STRINGS,
        check=_treatment_names,
    )
    design: str = setting(
        "grid",
        "Which cells each base network (split x target half x seed) trains: grid = every "
        "treatment at every n of --layers; findings = only the cells the five findings read "
        "(kerastransfer/designs.py), plus the whole grid for the first base network (Figure 2).",
        choices=DESIGNS,
    )
    directions: str = setting(
        "AB",
        "Which way the grid transfers: AB = every network targets half B (AnB "
        "copies base A); BA = every network targets half A (BnA copies base B); "
        "both = the paper's design (both ways, pooled in the analysis).",
        choices=DIRECTIONS,
    )
    seeds: tuple[int, ...] = setting(
        (0,), "Initialization seeds; every run is repeated per seed.", kind=INTS
    )
    seed_offset: int = setting(0, "Added to every initialization seed.", result=True)
    cache_frozen: bool = setting(True, "Train frozen runs on cached prefix outputs.")
    cache_budget_mb: int = setting(
        2048,
        "Memory for cached frozen-prefix features; "
        "beyond it they go to a tf.data file cache in the workdir.",
        check=non_negative,
    )
    on_failure: str = setting(
        "continue",
        "When a run fails (its loss "
        "became NaN or infinite): continue with the runs that do not depend on it, "
        "or stop the grid (exit status 1).",
        choices=("continue", "stop"),
    )
    on_corrupt_weights: str = setting(
        "redo",
        "When a finished run's "
        "weights file is missing, truncated or fails its checksum: train the run "
        "again, or stop with an error naming the file.",
        choices=("redo", "error"),
    )
    deterministic: bool = setting(
        False,
        "TensorFlow op determinism and fixed seeds: the same "
        "command on the same machine gives the same metrics (slower on GPUs).",
    )


@dataclasses.dataclass(frozen=True)
class ScaleOutConfig:
    """Devices, machines, precision, and the grid split between processes."""

    strategy: str = setting(
        "auto",
        "tf.distribute strategy; auto = mirrored when several GPUs are visible; "
        "multi_worker = MultiWorkerMirroredStrategy over the machines in TF_CONFIG.",
        choices=("auto", "one_device", "mirrored", "multi_worker"),
    )
    mixed_precision: str = setting(
        "none",
        "Keras mixed-precision policy: compute in 16 bits, keep variables and the "
        "softmax head in float32 (mixed_float16 adds loss scaling). auto: "
        "mixed_bfloat16 on a machine without GPUs whose kind of CPU (AMX or AVX512_BF16) "
        "passed the precision test (BENCHMARKS.md; training/strategies.py "
        "BFLOAT16_VERDICTS), else none; config.json and the records store the policy it "
        "stood for.",
        choices=("none", "auto", "mixed_bfloat16", "mixed_float16"),
        result=True,
    )
    runs_in_flight: int = setting(
        1,
        "Runs trained at once in this process, each in its own thread (with the default "
        "strategy; 1 under mirrored and multi_worker). Each run ends exactly as trained alone; "
        "on a 2-core CPU two at once were no faster (BENCHMARKS.md, levers).",
        check=positive,
    )
    num_shards: int = setting(
        1,
        "Split the grid's runs between this many independent "
        "processes sharing --workdir (a SLURM array, a Kubernetes Indexed Job).",
    )
    shard_index: int = setting(0, "Which shard this process is, 0..--num_shards-1.")
    runs: tuple[str, ...] = setting(
        (),
        "Train only these run ids (e.g. random0/base/A/seed0,"
        "random0/transfer/n3/seed0); with --num_shards they are split again.",
        kind=STRINGS,
        check=distinct("a run id"),
    )
    wait_timeout: int = setting(
        86400,
        "Seconds a shard waits for a base network that "
        "another process trains before it gives up (exit status 1).",
    )
    poll_seconds: int = setting(30, "How often a waiting shard rereads results.jsonl.")


@dataclasses.dataclass(frozen=True)
class TuningConfig:
    """--mode=tune: the keras-tuner searches."""

    tuner: str = setting(
        "bayesian",
        "keras-tuner search of "
        "--mode=tune: Bayesian optimization, or Hyperband (training length is its "
        "budget).",
        choices=("bayesian", "hyperband"),
    )
    max_trials: int = setting(
        10,
        "--mode=tune: at most this many trials in each of the "
        "two searches (base network, then AnB+ fine-tuning).",
        check=positive,
    )
    tune_seconds: int = setting(
        0,
        "--mode=tune: wall-clock budget of each search in "
        "seconds; no new trial starts once it is spent (0 = no limit).",
        check=non_negative,
    )
    tune_n: int = setting(
        0,
        "--mode=tune: the n of the AnB+ fine-tuning search (0 = the middle block of the network).",
        check=non_negative,
    )


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """Which run is exported for TF-Serving, where, and what its signatures accept."""

    export_run: str | None = setting(None, "Export this run id instead of the best one.")
    export_dir: str | None = setting(None, "Export base directory (default workdir/export).")
    export_treatments: tuple[str, ...] = setting(
        treatments.TRANSFER_MODES,
        "Treatments the best exported model is chosen from (those the study trained).",
        kind=STRINGS,
        check=each_in(treatments.NAMES),
    )
    model_name: str = setting("kerastransfer", "Model name in the TF-Serving layout.")
    # A 24-megapixel camera photo fits; decoded, one such RGB file takes 75 MB.
    export_max_image_pixels: int = setting(
        25_000_000,
        "Largest image (width x height) the exported predict_image_bytes signature decodes; "
        "larger files are refused from their header. Recorded in metadata.json.",
        check=(positive, at_most(MAX_IMAGE_PIXELS_LIMIT)),
    )
    export_max_batch: int = setting(
        64,
        "Most images one request to the exported model may carry; also max_batch_size in the "
        "export's batching_parameters.txt.",
        check=positive,
    )


@dataclasses.dataclass(frozen=True)
class AnalysisConfig:
    """--mode=analyze on other results, and the paper's numbers on the figures."""

    results: str | None = setting(
        None,
        "For --mode=analyze: a CSV in the paper's columns instead of the workdir's results.jsonl.",
    )
    reference: str = setting(
        "none", "Overlay the paper's numbers on the figures.", choices=("none", "yosinski2014")
    )


@dataclasses.dataclass(frozen=True)
class ScoringConfig:
    """Transferability estimators on every cut point (--mode=score), and --prune."""

    estimators: tuple[str, ...] = setting(
        estimator_registry.names(),
        "Estimators that score every cut point without training: "
        f"{estimator_registry.help_list()}. Empty: --mode=all scores nothing.",
        kind=STRINGS,
        check=_known_estimators,
    )
    score_examples: int = setting(
        2000,
        "Target training images the estimators see (drawn once with seed 0).",
        check=positive,
    )
    score_reduction: str = setting(
        "pca",
        "How a cut point's feature maps become one vector per image: pca = the flattened maps "
        "on their first 64 principal components; gap = the mean of each channel over the "
        "spatial positions (cheaper, but on the default study it lost the ranking: README).",
        choices=("gap", "pca"),
    )
    prune: int = setting(
        0,
        "Own-model study: score every n of --layers first, then train only the K best-scoring "
        "cut points (frozen and fine-tuned, all seeds) and the scratch baseline. 0 = train all.",
        check=non_negative,
    )
    prune_estimator: str = setting(
        "logme", "The estimator whose ranking --prune follows.", check=_known_estimators
    )


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
    """One study: where it runs, what it trains and how. Built by `from_flags`, `replace` or
    `from_json`, which all validate it."""

    workdir: str | None = setting(
        None,
        "Directory for results, weights, TensorBoard logs, "
        "analysis, report and export. Re-running resumes it.",
    )
    mode: str = setting(
        "all",
        "all = train grid, score, analyze, export; or one stage on an existing workdir "
        "(score: transferability estimators on every cut point, no training).",
        choices=("all", "train", "analyze", "export", "tune", "score"),
    )
    overwrite: bool = setting(
        False,
        "Start the workdir over when its config changed "
        "(results.jsonl is kept as a timestamped backup).",
    )
    verbose: bool = setting(False, "Keras progress bar inside each run (terminals only).")
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
    def sharded(self) -> bool:
        """True when this process trains only part of the grid (--num_shards, --runs)."""
        return self.scale_out.num_shards > 1 or bool(self.scale_out.runs)

    @property
    def own_model(self) -> bool:
        """True when the source network is the user's own model, not a base trained on A."""
        return bool(self.model.source_model or self.model.source_weights)

    @property
    def treatments(self) -> tuple[str, ...]:
        """--treatments, or its default when empty: the paper's five for the grid, every
        transfer mode and recipe of the table for an own-model study; none for
        --treatments=none (base networks only)."""
        if self.grid.treatments == (BASES_ONLY,):
            return ()
        if self.grid.treatments:
            return self.grid.treatments
        return treatments.TRANSFER_MODES if self.own_model else treatments.PAPER_NAMES

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, stored: Mapping[str, Any]) -> Experiment:
        """The validated Experiment of a stored config.json's "experiment" object.

        Reads the nested form this version writes and the flat form of earlier versions
        (one key per flag); a key unknown to this version is ignored, a missing one takes
        its default. The stored workdir is not checked: it names where the study first ran,
        which need not be where it lies now.
        """
        values = flat_values(stored)
        experiment = build(
            {name: value for name, value in values.items() if name in SETTINGS},
            workdir=values.get("workdir", ""),
        )
        validate(experiment, workdir=False)
        return experiment

    def replace(self, **values: Any) -> Experiment:
        """A validated copy with some flags changed, each named by its flag (e.g.
        batch_size=64); the workdir is not checked (library code and tests copy experiments
        whose workdir no command named, e.g. Experiment() with none)."""
        experiment = build({**self.flat(), **values}, workdir=values.get("workdir", self.workdir))
        validate(experiment, workdir=False)
        return experiment

    def flat(self) -> dict[str, Any]:
        """{flag name: value} for every flag."""
        return flat_values(self.to_json())

    def result_fingerprint(self) -> dict[str, Any]:
        """The values of RESULT_FLAGS, as stored in config.json."""
        flat = self.flat()
        return {name: flat[name] for name in RESULT_FLAGS}


# Every setting by flag name; top-level ones are fields of Experiment, not of a section.
SETTINGS = {
    field.name: field for cls in (Experiment, *SECTIONS.values()) for field in settings(cls)
}
TOP_LEVEL = tuple(field.name for field in settings(Experiment))
# Flag name -> the section that holds it.
FLAG_SECTIONS = {
    field.name: section for section, cls in SECTIONS.items() for field in settings(cls)
}
# Flags that change what a finished run computed: resuming a workdir with other values of
# these would mix incomparable runs, so the runner refuses unless --overwrite.
RESULT_FLAGS = result_flags(Experiment, *SECTIONS.values())
# Flags that are lists of integers.
INT_LISTS = tuple(name for name, field in SETTINGS.items() if field.metadata["kind"] == INTS)


def default(name: str) -> Any:
    """The default value of flag `name`, from its one declaration above."""
    return SETTINGS[name].default


def flat_values(stored: Mapping[str, Any]) -> dict[str, Any]:
    """{flag name: value} of a nested or flat experiment dict."""
    flat: dict[str, Any] = {}
    for key, value in stored.items():
        if key in SECTIONS and isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    return flat


def build(values: Mapping[str, Any], workdir: str | None) -> Experiment:
    """An Experiment from {flag name: value}; lists become tuples, absent flags defaults."""
    sections: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    top: dict[str, Any] = {}
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


def _ints(flag: str, values: Sequence[str]) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in values)
    except ValueError:
        raise UsageError(
            f"--{flag}={','.join(values)} must be a comma-separated list of "
            f"integers, e.g. --{flag}=1,2,3"
        ) from None


def from_flags(flag_values: flags.FlagValues) -> Experiment:
    """Builds and validates an Experiment from parsed absl flags, its workdir included."""
    values: dict[str, Any] = {name: flag_values[name].value for name in SETTINGS}
    for name in INT_LISTS:
        values[name] = _ints(name, values[name])
    experiment = build(values, workdir=values.pop("workdir"))
    validate(experiment)
    return experiment


def validate(experiment: Experiment, *, workdir: bool = True) -> None:
    """Checks values absl cannot check by itself; raises UsageError naming the flag.

    Each setting's own checks come from its declaration; the checks below involve several
    flags. `workdir=False` skips the checks of the workdir path, a fact about this machine
    when a command names it (from_flags), not about the configuration.
    """
    e = experiment
    if workdir:
        _validate_workdir(e.workdir)
    for section in (e, *(getattr(e, name) for name in SECTIONS)):
        check_settings(section)
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
    _validate_scale_out(e)
    _validate_scoring(e)
    _validate_cuts(e)


def _validate_workdir(workdir: str | None) -> None:
    """--workdir is given, not a file, and not a URL."""
    if not workdir:
        raise UsageError("--workdir is required: pass a directory for the study's results")
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise UsageError(f"--workdir={workdir} is a file, not a directory; pass a directory path")
    if "://" in workdir:
        raise UsageError(
            f"--workdir={workdir} is a URL; the workdir must be a local or "
            "NFS directory (results.jsonl is appended under a file lock)"
        )


def _validate_cuts(e: Experiment) -> None:
    """--cut_every thins a given model's own cut points; it has no meaning elsewhere."""
    m = e.model
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


def _validate_scoring(e: Experiment) -> None:
    """--mode=score needs estimators; --prune is an own-model study's choice among --layers."""
    s = e.scoring
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


def _validate_scale_out(e: Experiment) -> None:
    """Sharding, multi-worker and the `all` split: combinations that cannot work."""
    s = e.scale_out
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
    not_transfers = [t for t in e.treatments if t not in treatments.TRANSFER_MODES]
    if e.own_model and not_transfers:
        raise UsageError(
            f"--treatments={','.join(not_transfers)} cannot transfer your own model (they "
            f"need a base trained on a half); use any of {','.join(treatments.TRANSFER_MODES)}, "
            "or leave --treatments out for all of them"
        )
    from_other = sorted(t for t in e.treatments if treatments.get(t).copies_other_half)
    if "all" in e.data.splits and from_other:
        raise UsageError(
            f"--splits=all has a single half (every class), so --treatments="
            f"{','.join(from_other)} would copy it to itself; use random, selffer "
            "or selffer_ft with it"
        )
