"""The stages a run goes through: accept the workdir, train the grid, analyze, export.

Each stage reads what the stage before wrote to the workdir, so `--mode=analyze` and
`--mode=export` work on any finished (or partly finished) workdir. `--mode=all` loads the
dataset once and hands the same study to every stage.
"""

import os

import numpy as np

from kerastransfer import analysis, reporting, treatments
from kerastransfer.console import log
from kerastransfer.errors import StudyStopped, UsageError
from kerastransfer.study import following, scoring, sharding
from kerastransfer.study.own_model import load_study
from kerastransfer.study.runner import Runner
from kerastransfer.training import strategies
from kerastransfer.workdir import provenance
from kerastransfer.workdir.lock import workdir_lock
from kerastransfer.workdir.results import ResultStore, read_results
from kerastransfer.workdir.scores import read_scores


def run(experiment, argv):
    """Runs the stages `experiment.mode` asks for."""
    if experiment.mode == "analyze":
        return analyze(experiment)
    if experiment.mode == "export":
        return export(experiment)
    if experiment.mode == "score":
        return score(experiment)
    if experiment.grid.deterministic:
        _make_deterministic(experiment.grid.seed_offset)
    if experiment.mode == "tune":
        from kerastransfer import tuning  # noqa: PLC0415  (keras-tuner loads only here)

        return tuning.run(experiment)
    return train(experiment, argv)


def train(experiment, argv):
    """Trains the grid (or this process's share of it); in --mode=all then analyzes and
    exports with the same study."""
    import tensorflow as tf  # noqa: PLC0415

    tf.get_logger().setLevel("ERROR")  # per-run retracing notices are expected, not news
    scale_out = experiment.scale_out
    strategy = strategies.make_strategy(scale_out.strategy)  # multi-worker: before any op
    if scale_out.mixed_precision == "auto":
        # config.json and every record hold the policy auto stood for, never "auto": a shard
        # on a machine that resolves it otherwise is refused (mixed_precision is a result flag)
        policy, why = strategies.auto_precision()
        log(f"--mixed_precision=auto: {why}")
        experiment = experiment.replace(mixed_precision=policy)
    strategies.set_precision(experiment.scale_out.mixed_precision)
    if not strategies.is_chief(strategy):  # a multi-worker follower: the chief writes
        return _follow_chief(experiment, strategy)
    study = load_study(experiment, log=log, strategy=strategy)
    differing = provenance.check_workdir(experiment)
    store = ResultStore(experiment.workdir)
    with workdir_lock(experiment.workdir, shared=experiment.sharded):
        if differing:
            provenance.start_over(experiment.workdir, differing, log)
        provenance.write_config(experiment, argv)
        study.save_splits()
        trained_before = len(store.records())
        if experiment.own_model and not experiment.sharded:
            if experiment.scoring.prune:
                scoring.prune(study, log)
            else:
                scoring.forget_prune(experiment.workdir)
        runner = Runner(study, store, log)
        if experiment.sharded:
            sharding.run_shard(runner)
        else:
            runner.run_all()
        latest = store.latest()
        print_table(latest.values(), log)
        if runner.stopped_by:
            failed = runner.stopped_by
            untrained = sum(spec.run not in latest for spec in study.runs)
            raise StudyStopped(
                f"run {failed['run']} failed ({failed['reason']}) and "
                f"--on_failure=stop ended the study with {untrained} runs "
                "untrained; fix the cause (e.g. a lower --learning_rate) or "
                "pass --on_failure=continue"
            )
        if experiment.sharded:
            log(
                "analysis and export: once every shard is done, run the same command without "
                "--num_shards, --shard_index and --runs"
            )
        elif experiment.mode == "all":
            x = experiment.export
            export_base = x.export_dir or os.path.join(experiment.workdir, "export")
            exportable = [
                r
                for r in latest.values()
                if r["status"] == "ok" and r["treatment"] in x.export_treatments
            ]
            if len(store.records()) == trained_before and os.path.isdir(export_base):
                log("nothing new: analysis and export are up to date")
            else:
                # Nothing to score where no base finished or the only split is `all`.
                if experiment.scoring.estimators and scoring.sources(study, latest):
                    score(experiment, study)
                analyze(experiment, study)
                if exportable or x.export_run:
                    export(experiment, study)
                else:
                    log(
                        "export: skipped, no run of --export_treatments="
                        f"{','.join(x.export_treatments)} finished ok"
                    )
        log(f"results: {store.path}")


def _follow_chief(experiment, strategy):
    """A multi-worker follower trains the grid in step with the chief, writing nothing."""
    chief_store = ResultStore(experiment.workdir)
    with following.follower_outdir(strategy, log) as (outdir, name):
        study = load_study(experiment, log=log, strategy=strategy, outdir=outdir)
        provenance.check_workdir(experiment)
        store = following.FollowerStore(
            chief_store, experiment.workdir, outdir, name, experiment.scale_out.wait_timeout, log
        )
        Runner(study, store, log).run_all()
    log(f"results: {chief_store.path} (written by the chief)")


def _make_deterministic(seed):
    """--deterministic: TensorFlow's deterministic kernels and fixed Python, NumPy and TF seeds
    (every run also reseeds from its run id before it builds its network)."""
    import tensorflow as tf  # noqa: PLC0415

    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def print_table(records, out):
    """Mean test accuracy, treatment by n, per split, then every failed or skipped run.

    A cell whose runs all failed reads FAILED (or SKIPPED); a mean over the seeds that
    finished, while others did not, carries a "!".
    """
    records = list(records)
    for split in sorted({r["split"] for r in records}):
        rows = [r for r in records if r["split"] == split]
        layers = sorted({r["n"] for r in rows if r["n"]})
        out(f"\nsplit {split}: mean test accuracy (seeds averaged)")
        out(f"{'':10}" + "".join(f"{'n=' + str(n):>9}" for n in [0] + layers))
        for treatment in treatments.ALL_NAMES:
            for target in ("A", "B"):
                cells = [
                    [
                        r
                        for r in rows
                        if r["treatment"] == treatment and r["n"] == n and r["target"] == target
                    ]
                    for n in [0] + layers
                ]
                if not any(cells):
                    continue
                text = "".join(f"{_cell(cell):>9}" for cell in cells)
                out(f"{treatments.display_name(treatment, target):10}{text}")
    problems = [r for r in records if r["status"] != "ok"]
    if problems:
        out(
            f"\n{len(problems)} of {len(records)} runs did not finish "
            '("!" marks a mean over the seeds that did):'
        )
        for record in problems:
            out(f"  {record['status'].upper():8} {record['run']}: {record['reason']}")


def _cell(runs):
    if not runs:
        return ""
    ok = [r["test_accuracy"] for r in runs if r["status"] == "ok"]
    if not ok:
        return runs[0]["status"].upper()
    return f"{np.mean(ok):.4f}" + ("!" if len(ok) < len(runs) else "")


def analyze(experiment, study=None):
    """Rebuilds analysis.json, figures and report.md from results (ours or a paper CSV).

    `study`: the trained study when this process has it (--mode=all), for the CKA figures;
    otherwise it is loaded from the workdir's config.json.
    """
    os.makedirs(experiment.workdir, exist_ok=True)
    paper_csv = experiment.analysis.results
    if paper_csv:
        records = analysis.load_paper_csv(paper_csv)
        command = f"python -m kerastransfer.run --mode=analyze --results={paper_csv}"
        config_data, label = None, f"paper-format CSV {paper_csv}"
    else:
        store = ResultStore(experiment.workdir)
        if not os.path.exists(store.path):
            raise UsageError(
                f"no results in --workdir={experiment.workdir} (results.jsonl is "
                "missing); train first or pass --results=PATH.csv"
            )
        records, label = read_results(store.path), "results.jsonl"
        try:
            config_data = provenance.read_config(experiment.workdir)
            command = config_data.get("command")
        except UsageError:
            config_data, command = None, None
    if experiment.own_model and not paper_csv:
        paths = reporting.write_recommendation(
            experiment.workdir, records, command, scores=read_scores(experiment.workdir)
        )
        log(f"analysis: {paths}")
        return
    reference = (
        analysis.load_paper_csv(analysis.PAPER_CSV)
        if experiment.analysis.reference == "yosinski2014"
        else None
    )
    paths = reporting.write_analysis(
        experiment.workdir,
        records,
        config=config_data,
        reference=reference,
        command=command,
        source_label=label,
        scores=None if paper_csv else read_scores(experiment.workdir),
    )
    if not paper_csv:
        paths += _representations(experiment, paths, study)
    log(f"analysis: {paths}")


def _representations(experiment, figure_paths, study):
    """CKA heatmaps from the trained networks, and every figure logged to TensorBoard."""
    from kerastransfer.reporting import cka  # noqa: PLC0415  (imports TensorFlow)

    if study is None:
        if not os.path.exists(provenance.config_path(experiment.workdir)):
            return []
        study = load_study(provenance.stored_experiment(experiment)[0])
    records = list(ResultStore(experiment.workdir).latest().values())
    cka_paths = cka.write_cka(study, records)
    cka.log_figures(experiment.workdir, figure_paths + cka_paths)
    return cka_paths


def score(experiment, study=None):
    """Scores every cut point with the transferability estimators (study/scoring.py): a
    workdir's trained bases, or the given source model on a fresh workdir."""
    if study is None:
        if os.path.exists(provenance.config_path(experiment.workdir)):
            study = load_study(provenance.stored_experiment(experiment)[0], log=log)
        elif experiment.own_model:
            study = load_study(experiment, log=log)
        else:
            raise UsageError(
                f"--workdir={experiment.workdir} has no trained study to score; train it "
                "first (--mode=train), or pass --source_model with --image_dir"
            )
    store = ResultStore(experiment.workdir)
    latest = store.latest() if os.path.exists(store.path) else {}
    scoring.score_study(study, latest, log)
    paths = reporting.write_estimator_figure(experiment.workdir, list(latest.values()))
    if paths:
        log(f"figure: {paths[0]}")


def export(experiment, study=None):
    """Exports the best transferred model (or --export_run) for TF-Serving."""
    from kerastransfer.serving import best  # noqa: PLC0415  (imports TensorFlow)

    trained_with, stored = provenance.stored_experiment(experiment)
    x = experiment.export
    records = list(ResultStore(experiment.workdir).latest().values())
    record = best.choose_run(records, x.export_treatments, x.export_run)
    if study is None:
        study = load_study(trained_with)
    version_dir = best.export_run(study, record, stored)
    log(f"export: {version_dir}")
