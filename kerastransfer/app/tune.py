"""--mode=tune end to end: loads the study's data, runs the two keras-tuner searches of
tuning/ on it (the base network's solver, then AnB+'s fine-tuning rate), and writes
workdir/tuned.flags and tuning/summary.json.

tuning/ is handed what its trials need (the data halves, the study's model builder, the
solver config) and loads no study itself. Distributed: keras-tuner's chief and workers
(tuning/distributed.py); every process runs the same command, the chief writes tuned.flags,
and all of them need the workdir on a shared file system (the AnB+ trials load the best base
network from it).
"""

import json
import os
import shutil
import time
from collections.abc import Sequence
from typing import Any, cast

import tensorflow as tf

from kerastransfer import surgery, training
from kerastransfer.config import Experiment
from kerastransfer.console import log
from kerastransfer.data.halves import InMemoryHalves
from kerastransfer.errors import UsageError
from kerastransfer.study.own_model import load_study
from kerastransfer.study.study import Study
from kerastransfer.tuning import distributed
from kerastransfer.tuning.flagfile import flagfile_text
from kerastransfer.tuning.hypermodels import BaseSearch, FineTuneSearch, TrialSetup
from kerastransfer.tuning.searches import run_searches
from kerastransfer.workdir import files, provenance
from kerastransfer.workdir.lock import workdir_lock


def run(experiment: Experiment, argv: Sequence[str]) -> str | None:
    """Runs both searches; unless this process is a worker, writes tuned.flags and
    tuning/summary.json and returns tuned.flags' path. `argv`: the command line."""
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
    role = distributed.distributed_role()
    study = load_study(e, log=log)
    split = next(iter(study.splits))  # the search uses the first split
    n = tune_n(study)
    workdir = provenance.workdir_of(e)
    tuning_dir = os.path.join(workdir, "tuning")
    setup = TrialSetup(
        # in memory: Study.load streams a dataset only with --train_steps, refused above
        halves=cast(InMemoryHalves, study.halves),
        build_model=study.build_model,
        cut_names=study.cut_names,
        solver=e.solver,
        seed_offset=e.grid.seed_offset,
        verbose=e.verbose,
    )

    def search() -> tuple[dict[str, Any], dict[str, Any] | None] | None:
        return run_searches(
            setup,
            study.halves.half(split, "A"),
            study.halves.half(split, "B"),
            tuning=e.tuning,
            n=n,
            tuning_dir=tuning_dir,
            role=role,
            strategy=training.make_strategy(e.scale_out.strategy),
        )

    if role == "worker":
        search()
        log(f"worker {distributed.tuner_id()} done; the chief writes tuned.flags")
        return None
    fingerprint = {
        **e.result_fingerprint(),
        "tuner": e.tuning.tuner,
        "tune_n": n,
        "splits": e.data.splits[0],
    }
    start_over = _check_config(e, fingerprint, tuning_dir)
    with workdir_lock(workdir):
        if start_over:
            _start_over(workdir, tuning_dir)
        files.write_json(
            os.path.join(tuning_dir, "config.json"),
            {
                "tuning": fingerprint,
                "command": provenance.command_line(argv),
                "source_commit": provenance.source_commit(),
            },
        )
        found = search()
        if found is None:  # run_searches returns nothing to a worker only
            raise RuntimeError("the chief's searches returned no trials")
        base, fine = found
        path = os.path.join(workdir, "tuned.flags")
        files.write_text(path, flagfile_text(e, argv, n, base, fine, path))
        searches = (BaseSearch.stage, FineTuneSearch.stage)
        files.write_json(
            os.path.join(tuning_dir, "summary.json"),
            {**dict(zip(searches, (base, fine))), "tuned_flags": path},
        )
        log(f"tuned flags: {path}")
        return path


def tune_n(study: Study) -> int:
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


def _check_config(experiment: Experiment, fingerprint: dict[str, Any], tuning_dir: str) -> bool:
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


def _start_over(workdir: str, tuning_dir: str) -> None:
    """--overwrite with a changed config: drop the searches, keep old tuned.flags as .bak."""
    log(f"--overwrite: config changed; starting the search in {tuning_dir} over")
    shutil.rmtree(tuning_dir, ignore_errors=True)
    flags_path = os.path.join(workdir, "tuned.flags")
    if os.path.exists(flags_path):
        os.replace(flags_path, f"{flags_path}.{time.strftime('%Y%m%d-%H%M%S')}.bak")
