"""--mode=analyze (and a stage of --mode=all): every number of a workdir's analysis computed
here, from its results, its scores.json and its trained networks, then handed to reporting,
which renders it. `python -m kerastransfer.analysis` launches this same driver.

A transfer study gets analysis.json, report.md and figures (with the estimators' agreement
when the workdir was scored), the CKA heatmaps and cka.json when its study can be loaded, and
every figure in TensorBoard; an own-model study gets recommendation.json and its report.md.
"""

import os
import shlex
from collections.abc import Iterable, Sequence
from typing import Any

import tensorflow as tf

from kerastransfer import analysis, reporting
from kerastransfer.analysis import similarity
from kerastransfer.config import Experiment
from kerastransfer.console import log
from kerastransfer.errors import UsageError
from kerastransfer.study import probing
from kerastransfer.study.own_model import load_study
from kerastransfer.study.study import Study
from kerastransfer.workdir import provenance
from kerastransfer.workdir.records import AnyRecord
from kerastransfer.workdir.results import ResultStore, read_results
from kerastransfer.workdir.scores import Scores, read_scores


def run(experiment: Experiment, study: Study | None = None) -> None:
    """Rebuilds analysis.json, figures and report.md from results (ours or a paper CSV).

    `study`: the trained study when this process has it (--mode=all), for the CKA figures;
    otherwise it is loaded from the workdir's config.json.
    """
    workdir = provenance.workdir_of(experiment)
    os.makedirs(workdir, exist_ok=True)
    paper_csv = experiment.analysis.results
    scores: Scores | None
    config_data: dict[str, Any] | None
    command: str | None
    if paper_csv:
        records, scores = analysis.load_paper_csv(paper_csv), None
        command = shlex.join(
            [
                "python",
                "-m",
                "kerastransfer.run",
                "--mode=analyze",
                f"--results={paper_csv}",
                f"--workdir={workdir}",
            ]
        )
        config_data, label = None, f"paper-format CSV {paper_csv}"
    else:
        store = ResultStore(workdir)
        if not os.path.exists(store.path):
            raise UsageError(
                f"no results in --workdir={workdir} (results.jsonl is "
                "missing); train first or pass --results=PATH.csv"
            )
        records, label = read_results(store.path), "results.jsonl"
        scores = read_scores(workdir)
        try:
            config_data = provenance.read_config(workdir)
            command = config_data.get("command")
        except UsageError:
            config_data, command = None, None
    if experiment.own_model and not paper_csv:
        paths = reporting.write_own_model_report(
            workdir, analysis.json_safe(recommendation(records, scores)), command
        )
        log(f"analysis: {paths}")
        return
    reference = (
        analysis.load_paper_csv(analysis.PAPER_CSV)
        if experiment.analysis.reference == "yosinski2014"
        else None
    )
    records = analysis.normalize_records(records)
    if reference is not None:
        reference = analysis.normalize_records(reference, "reference record")
    result = analysis.analyze(
        records,
        config=config_data,
        reference_records=reference,
        source_label=label,
        scores=scores,
        command=command,
    )
    paths = reporting.write_analysis(workdir, result, records)
    if not paper_csv:
        paths += _representations(experiment, paths, study)
    log(f"analysis: {paths}")


def recommendation(records: Sequence[AnyRecord], scores: Scores | None = None) -> dict[str, Any]:
    """recommendation.json's numbers for an own-model study: analysis.recommend's dict, and
    with `scores` the estimators against the measured cut points and --prune's record."""
    result = analysis.recommend(records)
    agreement = estimators(scores, records)
    if agreement is not None:
        result["estimators"] = agreement
        result["pruning"] = analysis.pruning(scores, records)
    return result


def estimators(scores: Scores | None, records: Sequence[AnyRecord]) -> dict[str, Any] | None:
    """Each estimator's scores (scores.json's dict) against the measured accuracies of
    `records` (analysis.agreement), or None without scores: the one place it is computed, for
    analysis.json, recommendation.json and --mode=score's figure."""
    return None if scores is None else analysis.estimator_agreement(scores, records)


def cka_heatmaps(study: Study, records: Sequence[AnyRecord]) -> dict[str, similarity.CkaHeatmap]:
    """{split: cka_heatmap's dict} for every split of the study with copied-layer runs whose
    bases finished: their weight layers' CKA with their source bases, on the trained networks'
    activations."""
    heatmaps: dict[str, similarity.CkaHeatmap] = {}
    for split in study.splits:
        chosen = similarity.cka_runs(records, split)
        if chosen:
            heatmaps[split] = similarity.cka_heatmap(
                *chosen, probing.Prober(study, split).activations
            )
    return heatmaps


def _representations(
    experiment: Experiment, figure_paths: list[str], study: Study | None
) -> list[str]:
    """The CKA heatmaps from the trained networks, and every figure logged to TensorBoard."""
    workdir = provenance.workdir_of(experiment)
    if study is None:
        if not os.path.exists(provenance.config_path(workdir)):
            return []
        study = load_study(provenance.stored_experiment(experiment)[0])
    records = list(ResultStore(workdir).latest().values())
    cka_paths = reporting.write_cka(workdir, cka_heatmaps(study, records))
    _log_figures(workdir, figure_paths + cka_paths)
    return cka_paths


def _log_figures(workdir: str, paths: Iterable[str]) -> None:
    """Puts the PNG figures into TensorBoard (workdir/tensorboard/analysis, Images tab)."""
    writer = tf.summary.create_file_writer(os.path.join(workdir, "tensorboard", "analysis"))
    with writer.as_default():
        for path in paths:
            if path.endswith(".png") and os.path.exists(path):
                image = tf.io.decode_png(tf.io.read_file(path), channels=4)
                tf.summary.image(os.path.splitext(os.path.basename(path))[0], image[None], step=0)
    writer.close()
