"""Transferability estimators on a study's cut points: every n scored in seconds, untrained.

A source network (each trained base of the grid, scored on the other half: base A on half B,
base B on half A, per split and seed; or the own-model study's source model, scored on the
target images) runs once over a sample of the target's training images (--score_examples,
drawn with seed 0, no augmentation). Its output at the cut of every n of --layers is the
frozen prefix's features, reduced to one vector per image (--score_reduction):

    gap  the mean of each channel over the spatial positions (a dense layer's output as is);
    pca  the flattened maps projected on their first PCA_COMPONENTS principal components.

Each of --estimators (kerastransfer/estimators/) scores the vectors against the target labels;
one that reads the source head (LEEP) reads its class probabilities on the same images. The
results go to workdir/scores.json (one entry per source, target and n), TensorBoard scalars
(tensorboard/scores/<split>/<source>n<target>/seed<s>, one step per n), figures/estimators.png
and one console line per cut. Entries already in scores.json for the same source weights and
settings are kept, not computed again.

An estimator that cannot score a cut (its error, a NaN, or features that are not finite)
costs that one number: None in the entry's "scores", the reason under its "unscored", no
TensorBoard point, last in --prune's ranking; every other score and stage goes on.
"""

import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from kerastransfer import estimators, surgery, treatments
from kerastransfer.analysis import json_safe
from kerastransfer.config import DIRECTIONS, Experiment
from kerastransfer.data.splits import ALL_SPLIT
from kerastransfer.errors import UsageError
from kerastransfer.study import pruning
from kerastransfer.study.own_model import OwnModelStudy
from kerastransfer.study.plan import base_id
from kerastransfer.study.study import Study
from kerastransfer.workdir.records import RunLine
from kerastransfer.workdir.scores import (
    ScoreEntry,
    Scores,
    ScoreSettings,
    read_scores,
    write_scores,
)

# Principal components kept by --score_reduction=pca.
PCA_COMPONENTS = 64
# The own-model study's source: the given model, not a run of the study.
SOURCE_MODEL = "source model"
# {source run: (its features at each cut, the labels)}, as score_study hands them out.
Features = dict[str, tuple[list[np.ndarray], np.ndarray]]


@dataclasses.dataclass(frozen=True)
class Source:
    """A network whose cut points are scored, and the half whose images score them."""

    split: str
    source: str  # the half the network was trained on ("A" stands for a given model)
    target: str
    seed: int | None
    run: str  # the network's run id, or SOURCE_MODEL
    weights_sha256: str
    record: RunLine | None = None  # the base's run record; None for a given source model

    @property
    def label(self) -> str:
        seed = "" if self.seed is None else f" seed {self.seed}"
        return f"{self.split} {self.source}->{self.target}{seed}"


def settings_of(experiment: Experiment) -> ScoreSettings:
    """What every score depends on besides the source weights: a changed value scores again."""
    s = experiment.scoring
    return {
        "estimators": list(s.estimators),
        "reduction": s.score_reduction,
        "examples": s.score_examples,
        "pca_components": PCA_COMPONENTS if s.score_reduction == "pca" else None,
    }


def sources(study: Study, latest: Mapping[str, RunLine]) -> list[Source]:
    """The networks to score: the grid's trained bases (from `latest`, {run id: record}),
    each on the other half of its split; or the own-model study's source model."""
    e = study.experiment
    if e.own_model:
        (split,) = study.splits
        return [Source(split, "A", "B", None, SOURCE_MODEL, _own_model(study).source_digest)]
    found = []
    for split in study.splits:
        if split == ALL_SPLIT:  # one half: nothing to transfer from
            continue
        for target in DIRECTIONS[e.grid.directions]:
            for seed in e.grid.seeds:
                source = treatments.other_half(target)
                record = latest.get(base_id(split, source, seed))
                if record is not None and record["status"] == "ok":
                    found.append(
                        Source(
                            split,
                            source,
                            target,
                            seed,
                            record["run"],
                            record["weights_sha256"],
                            record,
                        )
                    )
    return found


def score_study(
    study: Study,
    latest: Mapping[str, RunLine],
    log: Callable[[str], None],
    features: Features | None = None,
) -> Scores:
    """Scores every source's cut points (see module doc) and writes scores.json and the
    TensorBoard scalars; returns the scores dict.

    Entries of scores.json with the same settings and source weights are kept; the other
    keys of the file (the --prune choice) are kept with them. `features`, a dict, receives
    {source run: (the features of each cut, labels)} of the sources scored here.
    """
    e = study.experiment
    settings = settings_of(e)
    stored = read_scores(study.workdir)
    if not stored or stored.get("settings") != settings:
        stored = {"settings": settings, "seconds": 0.0, "entries": []}  # each set below
    todo = sources(study, latest)
    if not todo:
        raise UsageError(
            f"nothing to score in --workdir={study.workdir}: no base network has finished; "
            "train first (--mode=train), or pass --source_model with --image_dir"
        )
    entries: list[ScoreEntry] = []
    computed: list[ScoreEntry] = []
    started = time.perf_counter()
    for source in todo:
        done = [
            entry
            for entry in stored["entries"]
            if (entry["source_run"], entry["weights_sha256"], entry["split"], entry["target"])
            == (source.run, source.weights_sha256, source.split, source.target)
        ]
        if {entry["n"] for entry in done} >= set(e.grid.layers):
            entries += done
        else:
            scored = _score_source(study, source, settings, log, features)
            computed += scored
            entries += scored
    scores: Scores = {
        **stored,
        "settings": settings,
        "seconds": time.perf_counter() - started,
        "entries": entries,
    }
    os.makedirs(study.workdir, exist_ok=True)
    path = write_scores(study.workdir, json_safe(scores))
    _log_scalars(study.workdir, computed)  # kept entries have their events already
    log(f"scores: {path} ({scores['seconds']:.1f} s)")
    return scores


def prune(study: Study, log: Callable[[str], None]) -> None:
    """--prune=K: scores the source model's cut points, resamples them where the decision
    asks for it, and lets study/pruning.py decide which n of --layers to train (the K best by
    --prune_estimator, one more when those are not separable); writes that decision into
    scores.json under "prune", which the recommendation reports, and drops the other n's runs
    from the plan.
    """
    s = study.experiment.scoring
    layers = study.experiment.grid.layers
    features: Features = {}
    scores = score_study(study, {}, log, features)
    mine = [entry for entry in scores["entries"] if entry["source_run"] == SOURCE_MODEL]
    stability = None
    if pruning.resamples(s.prune_estimator, s.prune, layers):
        if SOURCE_MODEL not in features:  # its scores were kept from scores.json: a rerun
            (source,) = sources(study, {})
            settings = settings_of(study.experiment)
            _, maps_by_cut, _, labels = _source_features(study, source, settings)
            features[SOURCE_MODEL] = ([_reduced(maps, settings) for maps in maps_by_cut], labels)
        cut_vectors, labels = features[SOURCE_MODEL]
        started = time.perf_counter()
        found = estimators.top_k_stability(cut_vectors, labels, s.prune_estimator, s.prune)
        stability = pruning.TimedStability(**found, seconds=time.perf_counter() - started)
    pruned = pruning.decide(
        mine, study.runs, layers, s.prune_estimator, s.prune, scores["seconds"], stability
    )
    scores["prune"] = pruned.record
    write_scores(study.workdir, json_safe(scores))
    log(pruning.describe(pruned.record))
    study.runs = pruned.runs


def forget_prune(workdir: str) -> None:
    """Drops an earlier --prune choice from scores.json: this study trains every n."""
    scores = read_scores(workdir)
    if scores and scores.pop("prune", None):
        write_scores(workdir, scores)


def _score_source(
    study: Study,
    source: Source,
    settings: ScoreSettings,
    log: Callable[[str], None],
    features: Features | None = None,
) -> list[ScoreEntry]:
    """The entries of one source network: one per n of --layers (its features and labels go
    into `features` when given)."""
    started = time.perf_counter()
    layers = study.experiment.grid.layers
    names, maps_by_cut, probabilities, labels = _source_features(study, source, settings)
    entries: list[ScoreEntry] = []
    cut_vectors: list[np.ndarray] = []
    for n, name, maps in zip(layers, names, maps_by_cut):
        began = time.perf_counter()
        vectors = _reduced(maps, settings)
        cut_vectors.append(vectors)
        values, why = estimators.score_or_why(
            vectors,
            labels,
            source_probabilities=probabilities,
            estimators=settings["estimators"],
        )
        entries.append(
            {
                "split": source.split,
                "source": source.source,
                "target": source.target,
                "seed": source.seed,
                "source_run": source.run,
                "weights_sha256": source.weights_sha256,
                "n": n,
                "cut": name,
                "dims": int(vectors.shape[1]),
                "examples": len(labels),
                "scores": values,
                "unscored": why,
                "seconds": time.perf_counter() - began,
            }
        )
        text = _scores_text(values, why)
        log(f"score {source.label} n={n} ({name}, {vectors.shape[1]} dims): {text}")
    # The set estimators (NCTI) rank the network's cut points against each other: scored over
    # all of them at once.
    ranked = estimators.score_set_or_why(cut_vectors, labels, estimators=settings["estimators"])
    for entry, (values, why) in zip(entries, ranked):
        entry["scores"].update(values)
        entry["unscored"].update(why)
        if values:
            log(
                f"score {source.label} n={entry['n']} among its cut points: "
                f"{_scores_text(values, why)}"
            )
    log(
        f"scored {source.label}: {len(layers)} cut points on {len(labels)} images in "
        f"{time.perf_counter() - started:.1f} s"
    )
    if features is not None:
        features[source.run] = (cut_vectors, labels)
    return entries


def _source_features(
    study: Study, source: Source, settings: ScoreSettings
) -> tuple[list[str], list[np.ndarray], np.ndarray, np.ndarray]:
    """(the cut layer of each n of --layers, its features, the source head's probabilities,
    the labels) of one source network: one forward pass over the sampled target images."""
    model = _network(study, source)
    cuts = surgery.cut_layers(model, study.cut_names(model))
    names = [cuts[n - 1] for n in study.experiment.grid.layers]
    half = study.halves.half(source.split, source.target)
    batches = study.halves.sample_batches(half, settings["examples"])
    maps_by_cut, probabilities, labels = cut_features(
        model,
        names,
        batches,
        settings["reduction"],
        budget_bytes=study.experiment.grid.cache_budget_mb * 2**20,
        examples=settings["examples"],
    )
    return names, maps_by_cut, probabilities, labels


def _reduced(maps: np.ndarray, settings: ScoreSettings) -> np.ndarray:
    """One cut's features as the estimators score them: PCA_COMPONENTS principal components
    of the flattened maps for --score_reduction=pca, the channel means (already) for gap.
    Non-finite maps skip PCA (which would raise): each estimator then names them."""
    if settings["reduction"] == "pca" and np.all(np.isfinite(maps)):
        return estimators.reduce_features(maps, "pca", size=PCA_COMPONENTS)
    return maps


def _scores_text(values: Mapping[str, float | None], why: Mapping[str, str]) -> str:
    """A console line's scores, e.g. "logme -0.61  knn n/a; knn n/a: <reason>"."""
    text = "  ".join(
        f"{key} {'n/a' if value is None else format(value, '.4g')}" for key, value in values.items()
    )
    reasons: dict[str, list[str]] = {}
    for key, reason in why.items():
        reasons.setdefault(reason, []).append(key)
    return text + "".join(f"; {', '.join(keys)} n/a: {reason}" for reason, keys in reasons.items())


def _network(study: Study, source: Source) -> keras.Model:
    if source.record is None:
        return _own_model(study).source_net
    return study.trained_network(source.record)


def _own_model(study: Study) -> OwnModelStudy:
    """The own-model study that a given source model (SOURCE_MODEL) comes from."""
    if not isinstance(study, OwnModelStudy):
        raise TypeError(f"a {type(study).__name__} has no given source model")
    return study


def cut_features(
    model: keras.Model,
    names: Sequence[str],
    batches: Iterable[tuple[tf.Tensor, tf.Tensor]],
    reduction: str,
    *,
    budget_bytes: int,
    examples: int,
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """([features at each named layer], source class probabilities, labels) for `batches`
    of (images, labels), at most `examples` of them, in one forward pass.

    Features are float32 (N, channels) spatial means for reduction "gap", the flattened
    maps for "pca" (UsageError when they would take more than `budget_bytes`). The
    probabilities are the model's output, put through a softmax when they are not already
    a distribution.
    """
    outputs = [model.get_layer(name).output for name in names]
    if reduction == "pca":
        need = sum(int(np.prod(o.shape[1:])) for o in outputs) * 4 * examples
        if need > budget_bytes:
            raise UsageError(
                f"--score_reduction=pca holds the flattened maps of every cut point: "
                f"{need / 2**20:.0f} MB for --score_examples={examples}, over "
                f"--cache_budget_mb={budget_bytes // 2**20}; use --score_reduction=gap or "
                "fewer --score_examples"
            )
    probe = keras.Model(model.input, [*outputs, model.output])
    spec = tf.TensorSpec([None, *model.input.shape[1:]], model.input.dtype)

    @tf.function(input_signature=[spec])
    def call(images: tf.Tensor) -> tuple[list[tf.Tensor], tf.Tensor]:
        *maps, head = probe(images, training=False)
        return [_vectors(m, reduction) for m in maps], tf.cast(head, tf.float32)

    parts: list[list[np.ndarray]] = []
    heads: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for images, targets in batches:
        maps, head = call(images)
        parts.append([m.numpy() for m in maps])
        heads.append(head.numpy())
        labels.append(np.asarray(targets))
    features = [np.concatenate([part[i] for part in parts]) for i in range(len(names))]
    return features, _distribution(np.concatenate(heads)), np.concatenate(labels)


def _vectors(maps: tf.Tensor, reduction: str) -> tf.Tensor:
    """One float32 vector per image: spatial means (gap) or the flattened maps (pca)."""
    maps = tf.cast(maps, tf.float32)
    if reduction == "gap" and maps.shape.rank > 2:
        return tf.reduce_mean(maps, axis=list(range(1, maps.shape.rank - 1)))
    return tf.reshape(maps, [tf.shape(maps)[0], -1])


def _distribution(head: np.ndarray) -> np.ndarray:
    """Rows that are probability distributions: `head` itself when it is one (a softmax
    head), else its softmax (a head that outputs logits)."""
    if head.min() >= 0 and np.allclose(head.sum(axis=1), 1, atol=1e-3):
        return head
    shifted = np.exp(head - head.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _log_scalars(workdir: str, entries: Iterable[ScoreEntry]) -> None:
    """The entries' scores as TensorBoard scalars, one step per n of each source; an n/a
    score (None) has no point."""
    groups: dict[str, list[ScoreEntry]] = {}
    for entry in entries:
        seed = "source_model" if entry["seed"] is None else f"seed{entry['seed']}"
        folder = os.path.join(
            workdir,
            "tensorboard",
            "scores",
            entry["split"],
            f"{entry['source']}n{entry['target']}",
            seed,
        )
        groups.setdefault(folder, []).append(entry)
    for folder, entries in groups.items():
        writer = tf.summary.create_file_writer(folder)
        with writer.as_default():
            for entry in entries:
                for name, value in entry["scores"].items():
                    if value is not None:
                        tf.summary.scalar(f"score/{name}", value, step=entry["n"])
        writer.close()
