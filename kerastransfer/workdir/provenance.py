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

from kerastransfer import __version__, config
from kerastransfer.errors import UsageError
from kerastransfer.workdir import files
from kerastransfer.workdir.results import ResultStore

CONFIG_FILE = "config.json"


def config_path(workdir):
    return os.path.join(workdir, CONFIG_FILE)


def read_config(workdir):
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


def stored_experiment(experiment):
    """The workdir's own Experiment (what its runs were trained with), with LOCAL_FLAGS taken
    from `experiment`; returns (Experiment, stored config.json dict)."""
    stored = read_config(experiment.workdir)
    ours = experiment.flat()
    values = {
        **config.flat_values(stored["experiment"]),
        **{name: ours[name] for name in LOCAL_FLAGS},
    }
    return config.Experiment.from_json({**values, "workdir": experiment.workdir}), stored


def check_workdir(experiment):
    """Refuses a workdir whose config.json differs in a RESULT_FLAGS value, or whose
    results.jsonl is damaged, before anything in it is written.

    Returns the names of the differing flags (empty when the config matches or is new).
    Raises UsageError unless --overwrite (which starts a changed workdir over, its
    results.jsonl kept aside as it is).
    """
    if not os.path.exists(config_path(experiment.workdir)):
        return []
    stored = config.Experiment.from_json(read_config(experiment.workdir)["experiment"])
    # A flag newer than the workdir's config.json counts as having had its default there.
    ours = json.loads(json.dumps(experiment.result_fingerprint()))
    theirs = json.loads(json.dumps(stored.result_fingerprint()))
    differing = [name for name in config.RESULT_FLAGS if theirs[name] != ours[name]]
    if differing and not experiment.overwrite:
        changes = ", ".join(f"--{name} {theirs[name]!r} -> {ours[name]!r}" for name in differing)
        raise UsageError(
            f"workdir {experiment.workdir} was run with another config ({changes});"
            " use a new --workdir, restore those flags, or pass --overwrite"
        )
    if not differing:
        ResultStore(experiment.workdir).records()  # raises on a damaged line
    return differing


def start_over(workdir, differing, log):
    """--overwrite with a changed config: back up results.jsonl, drop runs and logs."""
    log(f"--overwrite: config changed ({', '.join(differing)}); starting {workdir} over")
    results = os.path.join(workdir, "results.jsonl")
    if os.path.exists(results):
        os.replace(results, f"{results}.{time.strftime('%Y%m%d-%H%M%S')}.bak")
    for name in ("runs", "tensorboard", "claims"):
        shutil.rmtree(os.path.join(workdir, name), ignore_errors=True)


def source_commit():
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


def command_line(argv):
    return " ".join(["python -m kerastransfer.run", *argv[1:]])


def write_config(experiment, argv):
    """workdir/config.json: the resolved config and how it was run, next to the results."""
    files.write_json(
        config_path(experiment.workdir),
        {
            "experiment": experiment.to_json(),
            "command": command_line(argv),
            "kerastransfer_version": __version__,
            "source_commit": source_commit(),
        },
    )


def file_digest(path):
    """sha256 of a file, to detect a truncated or corrupt weights file later."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
