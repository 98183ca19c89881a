"""What a study shows: figures (matplotlib), report.md and the files that hold them, rendered
from the dicts the drivers of app/ computed.

    outputs              write_analysis: analysis.json, figures and report.md of a transfer study
    own_model_report     write_own_model_report: the own-model study's recommendation.json,
                         report.md and figure
    plots                the paper's Figures 2 and 3 (from the analysis dict's cells and
                         relative drop, with the records' networks as dots) and CKA heatmaps
    estimator_agreement  the estimators' agreement with the measured grid: figure and section
    cka                  write_cka: the CKA heatmaps and cka.json
    report               report.md rendered from the analysis dict
    formats              how a number prints: MISSING for a missing one, accuracies
May import of kerastransfer.analysis (which computes every number shown here, and never
imports this package) its constants and the selectors of the records a figure draws
(records.ok_records, tables.pooled_bases, tables.find_cell); kerastransfer.designs,
kerastransfer.treatments, kerastransfer.workdir, kerastransfer.estimators (the estimators'
titles) and matplotlib; never TensorFlow, study/ or app/.
"""

from kerastransfer.reporting.cka import write_cka
from kerastransfer.reporting.estimator_agreement import write_figure as write_estimator_figure
from kerastransfer.reporting.outputs import write_analysis
from kerastransfer.reporting.own_model_report import write_own_model_report

__all__ = ["write_analysis", "write_cka", "write_estimator_figure", "write_own_model_report"]
