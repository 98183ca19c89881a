"""--mode=score (and a stage of --mode=all): the transferability estimators on every cut point
(study/scoring.py writes scores.json), and their figure beside the measured grid."""

import os

from kerastransfer import reporting
from kerastransfer.app import analyze
from kerastransfer.config import Experiment
from kerastransfer.console import log
from kerastransfer.errors import UsageError
from kerastransfer.study import scoring
from kerastransfer.study.own_model import load_study
from kerastransfer.study.study import Study
from kerastransfer.workdir import provenance
from kerastransfer.workdir.results import ResultStore
from kerastransfer.workdir.scores import read_scores


def run(experiment: Experiment, study: Study | None = None) -> None:
    """Scores every cut point with the transferability estimators: a workdir's trained bases,
    or the given source model on a fresh workdir; `study`: the trained study when this process
    has it (--mode=all)."""
    workdir = provenance.workdir_of(experiment)
    if study is None:
        if os.path.exists(provenance.config_path(workdir)):
            study = load_study(provenance.stored_experiment(experiment)[0], log=log)
        elif experiment.own_model:
            study = load_study(experiment, log=log)
        else:
            raise UsageError(
                f"--workdir={workdir} has no trained study to score; train it "
                "first (--mode=train), or pass --source_model with --image_dir"
            )
    store = ResultStore(workdir)
    latest = store.latest() if os.path.exists(store.path) else {}
    scoring.score_study(study, latest, log)
    agreement = analyze.estimators(read_scores(workdir), list(latest.values()))
    paths = reporting.write_estimator_figure(os.path.join(workdir, "figures"), agreement)
    if paths:
        log(f"figure: {paths[0]}")
