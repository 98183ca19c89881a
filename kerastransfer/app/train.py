"""--mode=train and --mode=all: trains the grid (or an own-model study, or this process's
shard of either) through study/runner.py; --mode=all then scores, analyzes and exports with
the same study, so the dataset is read and split once.

Each later stage reads what training wrote to the workdir, so `--mode=score`,
`--mode=analyze` and `--mode=export` work on any finished (or partly finished) workdir.
"""

import os
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import tensorflow as tf

from kerastransfer import treatments
from kerastransfer.app import analyze, export, score
from kerastransfer.config import Experiment
from kerastransfer.console import log
from kerastransfer.errors import StudyStopped
from kerastransfer.study import following, scoring, sharding
from kerastransfer.study.own_model import load_study
from kerastransfer.study.runner import Runner
from kerastransfer.training import strategies
from kerastransfer.workdir import provenance
from kerastransfer.workdir.lock import workdir_lock
from kerastransfer.workdir.records import RunLine
from kerastransfer.workdir.results import ResultStore


def run(experiment: Experiment, argv: Sequence[str]) -> None:
    """Trains the grid (or this process's share of it); in --mode=all then scores, analyzes
    and exports with the same study. `argv`: the command line, for config.json."""
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
    workdir = provenance.workdir_of(experiment)
    store = ResultStore(workdir)
    with workdir_lock(workdir, shared=experiment.sharded):
        if differing:
            provenance.start_over(workdir, differing, log)
        provenance.write_config(experiment, argv)
        study.save_splits()
        trained_before = len(store.records())
        if experiment.own_model and not experiment.sharded:
            if experiment.scoring.prune:
                scoring.prune(study, log)
            else:
                scoring.forget_prune(workdir)
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
            export_base = x.export_dir or os.path.join(workdir, "export")
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
                    score.run(experiment, study)
                analyze.run(experiment, study)
                if exportable or x.export_run:
                    export.run(experiment, study)
                else:
                    log(
                        "export: skipped, no run of --export_treatments="
                        f"{','.join(x.export_treatments)} finished ok"
                    )
        log(f"results: {store.path}")


def _follow_chief(experiment: Experiment, strategy: tf.distribute.Strategy) -> None:
    """A multi-worker follower trains the grid in step with the chief, writing nothing."""
    workdir = provenance.workdir_of(experiment)
    chief_store = ResultStore(workdir)
    with following.follower_outdir(strategy, log) as (outdir, name):
        study = load_study(experiment, log=log, strategy=strategy, outdir=outdir)
        provenance.check_workdir(experiment)
        store = following.FollowerStore(
            chief_store, workdir, outdir, name, experiment.scale_out.wait_timeout, log
        )
        Runner(study, store, log).run_all()
    log(f"results: {chief_store.path} (written by the chief)")


def print_table(records: Iterable[RunLine], out: Callable[[str], None]) -> None:
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


def _cell(runs: Sequence[RunLine]) -> str:
    if not runs:
        return ""
    ok = [r["test_accuracy"] for r in runs if r["status"] == "ok"]
    if not ok:
        return runs[0]["status"].upper()
    return f"{np.mean(ok):.4f}" + ("!" if len(ok) < len(runs) else "")
