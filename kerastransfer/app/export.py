"""--mode=export (and the last stage of --mode=all): the best transferred run, or
--export_run, as a SavedModel in TF-Serving's layout (serving/)."""

import json
import os

from kerastransfer.config import Experiment
from kerastransfer.console import log
from kerastransfer.serving import best
from kerastransfer.study.own_model import load_study
from kerastransfer.study.study import Study
from kerastransfer.workdir import provenance
from kerastransfer.workdir.results import ResultStore


def run(experiment: Experiment, study: Study | None = None) -> None:
    """Exports the best transferred model (or --export_run) for TF-Serving; `study`: the
    trained study when this process has it (--mode=all), else loaded from config.json."""
    trained_with, stored = provenance.stored_experiment(experiment)
    x = experiment.export
    records = list(ResultStore(provenance.workdir_of(experiment)).latest().values())
    record = best.choose_run(
        records, x.export_treatments, x.export_run, cell=_recommended_cell(experiment)
    )
    if study is None:
        study = load_study(trained_with)
    version_dir = best.export_run(study, record, stored)
    log(f"export: {version_dir}")


def _recommended_cell(experiment: Experiment) -> tuple[str, int] | None:
    """(treatment, n) an own-model study's recommendation.json chose, so that its best seed
    is exported; None for the grid or before the analysis wrote one."""
    path = os.path.join(provenance.workdir_of(experiment), "recommendation.json")
    if not experiment.own_model or not os.path.exists(path):
        return None
    with open(path) as f:
        choice = json.load(f).get("choice")
    return (choice["treatment"], choice["n"]) if choice else None
