"""Statistics of a transfer study: per-layer tables, the paper's Table 1, matched baselines, the
relative drop of Figure 3 and a check of the paper's five findings.

Pure Python, numpy and scipy (its t and noncentral t distributions), so the analysis runs
anywhere the results file is. Modules:
    stats           summaries, t-intervals, Welch and pooled differences
    records         the paper's CSV as run records, split groups, labels
    baselines       each run against the base of its own split and target half
    intervals       intervals over base networks (the unit of replication), paired or not
    tables          per-cell statistics, Table 1, the matched table, the relative drop
    figure_lines    what the figures draw: lines that each rest on one set of base networks
    findings        the paper's five findings and the rule that decides them
    power           the t-test's power (scipy's noncentral t), units needed, smallest
                    detectable effect
    sizing          per finding, what would decide it and the command that grows the study,
                    as the report's Power rows and commands
    analysis_json   `analyze`: all of the above as the dict analysis.json holds, built once
    recommendation  the own-model study's choice of n and mode
    agreement       the transferability estimators' scores (kerastransfer.estimators computes
                    them) against the measured grid, and --prune's record
    precision_test  a precision against float32: a paired equivalence test (90% CI) per
                    treatment over base networks, and the study size it needs
    similarity      linear CKA (Kornblith et al. 2019) and the CKA heatmaps' numbers
May import numpy, scipy, kerastransfer.config, kerastransfer.designs, kerastransfer.errors,
kerastransfer.treatments and kerastransfer.workdir.*; never TensorFlow, Keras, scikit-learn,
matplotlib, kerastransfer.reporting (which draws and writes what this package computes) or
kerastransfer.app (whose analyze driver calls it).
`python -m kerastransfer.analysis` (__main__.py) launches that driver in a new process.

Units: accuracies are fractions (.6251); differences between accuracies (boosts, drops, effects)
are percentage points (+1.6), as the paper reports them. Every interval is a two-sided 95%
t-interval, None (null in JSON) with fewer than two values or with values that all agree;
matched effects and findings take theirs over base networks (docs/statistics.md).
"""

from kerastransfer.analysis.agreement import agreement as estimator_agreement
from kerastransfer.analysis.agreement import pruning
from kerastransfer.analysis.analysis_json import analyze, json_safe
from kerastransfer.analysis.recommendation import recommend
from kerastransfer.analysis.records import (
    PAPER_CSV,
    load_paper_csv,
    metric_description,
    ok_records,
    paper_label,
)
from kerastransfer.analysis.stats import difference, summarize
from kerastransfer.analysis.tables import cell_table, find_cell, pooled_bases, relative_drop
from kerastransfer.designs import split_group
from kerastransfer.workdir.results import normalize_records

__all__ = [
    "PAPER_CSV",
    "analyze",
    "cell_table",
    "difference",
    "estimator_agreement",
    "find_cell",
    "json_safe",
    "load_paper_csv",
    "metric_description",
    "normalize_records",
    "ok_records",
    "paper_label",
    "pooled_bases",
    "pruning",
    "recommend",
    "relative_drop",
    "split_group",
    "summarize",
]
