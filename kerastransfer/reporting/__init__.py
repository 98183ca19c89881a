"""What a study shows: figures (matplotlib), report.md and the files that hold them.

    outputs         write_analysis: analysis.json, figures and report.md of a transfer study
    recommendation  write_recommendation: the own-model study's recommendation.json, report.md
                    and figure
    plots           the paper's Figures 2 and 3 and CKA heatmaps
    estimators      the transferability estimators beside the measured grid (figure, section)
    report          report.md rendered from the analysis dict
    similarity      linear CKA (numpy)
    cka             CKA of trained networks' layers (TensorFlow; imported on its own)
May import kerastransfer.analysis (which computes every number shown here, and never imports
this package), kerastransfer.workdir and matplotlib. Only cka, which needs the trained networks,
imports TensorFlow; nothing imports it here, so importing this package loads no TensorFlow.
"""

from kerastransfer.reporting.estimators import write_figure as write_estimator_figure
from kerastransfer.reporting.outputs import write_analysis
from kerastransfer.reporting.recommendation import write_recommendation

__all__ = ["write_analysis", "write_estimator_figure", "write_recommendation"]
