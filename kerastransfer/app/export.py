"""--mode=export (and the last stage of --mode=all): the best transferred run, or
--export_run, as a SavedModel in TF-Serving's layout (serving/)."""

from kerastransfer.console import log
from kerastransfer.serving import best
from kerastransfer.study.own_model import load_study
from kerastransfer.workdir import provenance
from kerastransfer.workdir.results import ResultStore


def run(experiment, study=None):
    """Exports the best transferred model (or --export_run) for TF-Serving; `study`: the
    trained study when this process has it (--mode=all), else loaded from config.json."""
    trained_with, stored = provenance.stored_experiment(experiment)
    x = experiment.export
    records = list(ResultStore(experiment.workdir).latest().values())
    record = best.choose_run(records, x.export_treatments, x.export_run)
    if study is None:
        study = load_study(trained_with)
    version_dir = best.export_run(study, record, stored)
    log(f"export: {version_dir}")
