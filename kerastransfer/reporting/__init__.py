"""What a study shows: figures (matplotlib), report.md and the files that hold them, rendered
from the dicts the drivers of app/ computed (Figures 2 and 3 take their cells from
analysis's functions).

    outputs         write_analysis: analysis.json, figures and report.md of a transfer study
    recommendation  write_recommendation: the own-model study's recommendation.json, report.md
                    and figure
    plots           the paper's Figures 2 and 3 and CKA heatmaps
    estimators      the transferability estimators beside the measured grid (figure, section)
    cka             write_cka: the CKA heatmaps and cka.json
    report          report.md rendered from the analysis dict
May import kerastransfer.analysis (which computes every number shown here, and never imports
this package), kerastransfer.treatments, kerastransfer.workdir and matplotlib; never
TensorFlow, study/ or app/.
"""

from kerastransfer.reporting.cka import write_cka
from kerastransfer.reporting.estimators import write_figure as write_estimator_figure
from kerastransfer.reporting.outputs import write_analysis
from kerastransfer.reporting.recommendation import write_recommendation

__all__ = ["write_analysis", "write_cka", "write_estimator_figure", "write_recommendation"]
