"""The stages a run goes through: accept the workdir, train the grid, analyze, export.

Each stage reads what the stage before wrote to the workdir, so `--mode=analyze` and
`--mode=export` work on any finished (or partly finished) workdir.
"""

import contextlib
import fcntl
import json
import os
import shutil
import socket
import subprocess
import time

import numpy as np

from kerastransfer import __version__, config, distributed, fileio, own_model, sharding, training
from kerastransfer.errors import StudyStopped, UsageError
from kerastransfer.results import ResultStore, display_name


def log(message):
    print(message, flush=True)


def run(experiment, argv):
    """Runs the stages `experiment.mode` asks for."""
    if experiment.mode == "analyze":
        return analyze(experiment, argv)
    if experiment.mode == "export":
        return export(experiment)
    if experiment.deterministic:
        _make_deterministic(experiment.seed_offset)
    if experiment.mode == "tune":
        from kerastransfer import tuning  # noqa: PLC0415
        return tuning.run(experiment)
    import tensorflow as tf  # noqa: PLC0415

    tf.get_logger().setLevel("ERROR")  # per-run retracing notices are expected, not news
    strategy = training.make_strategy(experiment.strategy)  # multi-worker: before any op
    distributed.set_precision(experiment.mixed_precision)
    study = own_model.make_study(experiment, log=log).prepare()
    differing = config.check_workdir(experiment, _config_path(experiment))
    study.strategy = strategy
    if not distributed.is_chief(strategy):  # a multi-worker follower: the chief writes
        with distributed.following_chief(study, log):
            study.run_grid()
        log(f"results: {study.store.path} (written by the chief)")
        return
    with workdir_lock(experiment.workdir, shared=experiment.sharded):
        if differing:
            _start_over(experiment, differing)
        write_config(experiment, argv)
        study.save_splits()
        trained_before = len(study.store.records())
        if experiment.sharded:
            sharding.run_shard(study, log)
        else:
            study.run_grid()
        latest = study.store.latest()
        print_table(latest.values(), log)
        if study.stopped_by:
            failed = study.stopped_by
            untrained = sum(spec.run not in latest for spec in study.runs)
            raise StudyStopped(f"run {failed['run']} failed ({failed['reason']}) and "
                               f"--on_failure=stop ended the study with {untrained} runs "
                               "untrained; fix the cause (e.g. a lower --learning_rate) or "
                               "pass --on_failure=continue")
        if experiment.sharded:
            log("analysis and export: once every shard is done, run the same command without "
                "--num_shards, --shard_index and --runs")
        elif experiment.mode == "all":
            export_base = experiment.export_dir or os.path.join(experiment.workdir, "export")
            exportable = [r for r in latest.values() if r["status"] == "ok"
                          and r["treatment"] in experiment.export_treatments]
            if len(study.store.records()) == trained_before and os.path.isdir(export_base):
                log("nothing new: analysis and export are up to date")
            else:
                analyze(experiment, argv)
                if exportable or experiment.export_run:
                    export(experiment)
                else:
                    log("export: skipped, no run of --export_treatments="
                        f"{','.join(experiment.export_treatments)} finished ok")
        log(f"results: {study.store.path}")


def _make_deterministic(seed):
    """--deterministic: TensorFlow's deterministic kernels and fixed Python, NumPy and TF seeds
    (every run also reseeds from its run id before it builds its network)."""
    import tensorflow as tf  # noqa: PLC0415

    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def _config_path(experiment):
    return os.path.join(experiment.workdir, "config.json")


@contextlib.contextmanager
def workdir_lock(workdir, shared=False):
    """Holds an exclusive lock on workdir/.lock; a second runner is refused at once.

    The kernel drops the lock when its process dies, so a crashed runner never blocks the
    next one; the file keeps the holder's host and pid for the error message. With
    `shared` (sharded runners, which coordinate through claims: sharding.py) the lock is
    shared: any number of shards hold it together, and an unsharded runner is refused
    while they do, and the other way round.
    """
    try:
        os.makedirs(workdir, exist_ok=True)
        fd = os.open(os.path.join(workdir, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise UsageError(f"--workdir={workdir} is not writable ({error.strerror}); pass a "
                         "directory you can write to") from None
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise UsageError(f"workdir {workdir} is in use by {holder}; wait for it to finish "
                             "or use another --workdir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"host {socket.gethostname()} pid {os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def _start_over(experiment, differing):
    """--overwrite with a changed config: back up results.jsonl, drop runs and logs."""
    workdir = experiment.workdir
    log(f"--overwrite: config changed ({', '.join(differing)}); starting {workdir} over")
    results = os.path.join(workdir, "results.jsonl")
    if os.path.exists(results):
        os.replace(results, f"{results}.{time.strftime('%Y%m%d-%H%M%S')}.bak")
    for name in ("runs", "tensorboard", "claims"):
        shutil.rmtree(os.path.join(workdir, name), ignore_errors=True)


def source_commit():
    """The git commit of the package source, when it runs from a checkout."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=os.path.dirname(__file__), timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def write_config(experiment, argv):
    """workdir/config.json: the resolved config and how it was run, next to the results."""
    fileio.write_json(_config_path(experiment), {
        "experiment": experiment.to_json(),
        "command": " ".join(["python -m kerastransfer.run", *argv[1:]]),
        "kerastransfer_version": __version__,
        "source_commit": source_commit(),
    })


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
        for treatment in ("base", "selffer", "selffer_ft", "transfer", "transfer_ft", "random"):
            for target in ("A", "B"):
                cells = [[r for r in rows if r["treatment"] == treatment and r["n"] == n
                          and r["target"] == target] for n in [0] + layers]
                if not any(cells):
                    continue
                text = "".join(f"{_cell(cell):>9}" for cell in cells)
                out(f"{display_name(treatment, target):10}{text}")
    problems = [r for r in records if r["status"] != "ok"]
    if problems:
        out(f"\n{len(problems)} of {len(records)} runs did not finish "
            "(\"!\" marks a mean over the seeds that did):")
        for record in problems:
            out(f"  {record['status'].upper():8} {record['run']}: {record['reason']}")


def _cell(runs):
    if not runs:
        return ""
    ok = [r["test_accuracy"] for r in runs if r["status"] == "ok"]
    if not ok:
        return runs[0]["status"].upper()
    return f"{np.mean(ok):.4f}" + ("!" if len(ok) < len(runs) else "")


def analyze(experiment, argv):
    """Rebuilds analysis.json, figures and report.md from results (ours or a paper CSV)."""
    from kerastransfer import analysis  # noqa: PLC0415

    os.makedirs(experiment.workdir, exist_ok=True)
    if experiment.results:
        records = analysis.load_paper_csv(experiment.results)
        command = f"python -m kerastransfer.run --mode=analyze --results={experiment.results}"
        config_data, label = None, f"paper-format CSV {experiment.results}"
    else:
        store = ResultStore(experiment.workdir)
        if not os.path.exists(store.path):
            raise UsageError(f"no results in --workdir={experiment.workdir} (results.jsonl is "
                             "missing); train first or pass --results=PATH.csv")
        records, label = analysis.load_results_jsonl(store.path), "results.jsonl"
        try:
            with open(_config_path(experiment)) as f:
                config_data = json.load(f)
            command = config_data.get("command")
        except (OSError, ValueError):
            config_data, command = None, None
    if own_model.is_own_model(experiment) and not experiment.results:
        paths = own_model.write_recommendation(experiment.workdir, records, command)
        log(f"analysis: {paths}")
        return
    reference = (analysis.load_paper_csv(analysis.PAPER_CSV)
                 if experiment.reference == "yosinski2014" else None)
    paths = analysis.write_analysis(experiment.workdir, records, config=config_data,
                                    reference=reference, command=command,
                                    source_label=label)
    if not experiment.results:
        paths += _representations(experiment, paths)
    log(f"analysis: {paths}")


def _representations(experiment, figure_paths):
    """CKA heatmaps from the trained networks, and every figure logged to TensorBoard."""
    from kerastransfer import representations  # noqa: PLC0415  (imports TensorFlow)

    stored = os.path.join(experiment.workdir, "config.json")
    if not os.path.exists(stored):
        return []
    from kerastransfer import export_best  # noqa: PLC0415

    study = own_model.make_study(export_best.stored_experiment(experiment)[0]).prepare()
    records = list(ResultStore(experiment.workdir).latest().values())
    cka_paths = representations.write_cka(study, records)
    representations.log_figures(experiment.workdir, figure_paths + cka_paths)
    return cka_paths


def export(experiment):
    """Exports the best transferred model (or --export_run) for TF-Serving."""
    from kerastransfer import export_best  # noqa: PLC0415

    version_dir = export_best.export_best(experiment)
    log(f"export: {version_dir}")
