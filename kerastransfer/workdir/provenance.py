"""How a workdir's results were made: config.json, the source commit, file digests.

config.json holds the resolved Experiment and the command that ran it, next to the results;
a workdir is resumed only with the same values of config.RESULT_FLAGS.
"""

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

from kerastransfer import __version__, config
from kerastransfer.errors import UsageError
from kerastransfer.workdir import files
from kerastransfer.workdir.results import ResultStore

CONFIG_FILE = "config.json"


def workdir_of(experiment: config.Experiment) -> str:
    """The experiment's --workdir; UsageError when it has none (every command line has one:
    config.validate requires it)."""
    if not experiment.workdir:
        raise UsageError("--workdir is required: pass a directory for the study's results")
    return experiment.workdir


def config_path(workdir: str) -> str:
    return os.path.join(workdir, CONFIG_FILE)


def read_config(workdir: str) -> dict[str, Any]:
    """The stored config.json of a workdir as a dict; UsageError when missing or unreadable."""
    path = config_path(workdir)
    if not os.path.exists(path):
        raise UsageError(
            f"--workdir={workdir} has no {CONFIG_FILE}; run the grid there first "
            "(--mode=all or --mode=train)"
        )
    return files.read_json(path, "experiment", "fix or remove it, or pass --overwrite")


# Flags a later command on a finished workdir may change: where the data lives on this
# machine, what to export where, and how the cut points are scored.
LOCAL_FLAGS = (
    "data_dir",
    "manual_dir",
    "image_dir",
    "export_run",
    "export_dir",
    "export_treatments",
    "model_name",
    "estimators",
    "score_examples",
    "score_reduction",
    "prune",
    "prune_estimator",
)


def stored_experiment(
    experiment: config.Experiment,
) -> tuple[config.Experiment, dict[str, Any]]:
    """The workdir's own Experiment (what its runs were trained with), with LOCAL_FLAGS taken
    from `experiment`; returns (Experiment, stored config.json dict)."""
    stored = read_config(workdir_of(experiment))
    ours = experiment.flat()
    values = {
        **config.flat_values(stored["experiment"]),
        **{name: ours[name] for name in LOCAL_FLAGS},
    }
    return config.Experiment.from_json({**values, "workdir": experiment.workdir}), stored


def check_workdir(experiment: config.Experiment) -> list[str]:
    """Refuses a workdir whose config.json differs in a RESULT_FLAGS value, or whose
    results.jsonl is damaged, before anything in it is written.

    Returns the names of the differing flags (empty when the config matches or is new).
    Raises UsageError unless --overwrite (which starts a changed workdir over, its
    results.jsonl kept aside as it is).
    """
    workdir = workdir_of(experiment)
    if not os.path.exists(config_path(workdir)):
        return []
    stored = config.Experiment.from_json(read_config(workdir)["experiment"])
    # A flag newer than the workdir's config.json counts as having had its default there.
    ours = json.loads(json.dumps(experiment.result_fingerprint()))
    theirs = json.loads(json.dumps(stored.result_fingerprint()))
    differing = [name for name in config.RESULT_FLAGS if theirs[name] != ours[name]]
    if differing and not experiment.overwrite:
        changes = ", ".join(f"--{name} {theirs[name]!r} -> {ours[name]!r}" for name in differing)
        raise UsageError(
            f"workdir {workdir} was run with another config ({changes});"
            " use a new --workdir, restore those flags, or pass --overwrite"
        )
    if not differing:
        ResultStore(workdir).records()  # raises on a damaged line
    return differing


def start_over(workdir: str, differing: Sequence[str], log: Callable[[str], None]) -> None:
    """--overwrite with a changed config: back up results.jsonl, drop runs and logs."""
    log(f"--overwrite: config changed ({', '.join(differing)}); starting {workdir} over")
    results = os.path.join(workdir, "results.jsonl")
    if os.path.exists(results):
        os.replace(results, f"{results}.{time.strftime('%Y%m%d-%H%M%S')}.bak")
    for name in ("runs", "tensorboard", "claims"):
        shutil.rmtree(os.path.join(workdir, name), ignore_errors=True)


def source_commit() -> str | None:
    """The git commit of the package source, when it runs from a checkout."""
    try:
        return (
            subprocess.run(
                ["git", "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                cwd=os.path.dirname(__file__),
                timeout=10,
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        return None


def command_line(argv: Sequence[str]) -> str:
    return " ".join(["python -m kerastransfer.run", *argv[1:]])


def write_config(experiment: config.Experiment, argv: Sequence[str]) -> None:
    """workdir/config.json: the resolved config and how it was run, next to the results."""
    files.write_json(
        config_path(workdir_of(experiment)),
        {
            "experiment": experiment.to_json(),
            "command": command_line(argv),
            "kerastransfer_version": __version__,
            "source_commit": source_commit(),
        },
    )


def file_digest(path: str) -> str:
    """sha256 of a file, to detect a truncated or corrupt weights file later."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
