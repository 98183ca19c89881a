"""A study's outputs in one call: analysis.json, the figures and report.md of its analysis.

The numbers come from kerastransfer.analysis.analyze; this module adds what only the written
outputs know (the figure paths, the report's name, the reproducing command) and writes them.
"""

import os

from kerastransfer import analysis
from kerastransfer.reporting import estimators, plots, report
from kerastransfer.workdir import files


def write_analysis(
    workdir,
    records,
    *,
    config=None,
    reference=None,
    source_label="results.jsonl",
    command=None,
    scores=None,
):
    """Analyzes `records` and writes workdir/analysis.json, workdir/figures/* and workdir/report.md.

    `scores`: the workdir's scores.json (or None); adds the estimators against the measured
    accuracies (analysis.agreement) under "estimators", with figures/estimators.png.

    `reference`: records to compare with and draw faintly (analysis.load_paper_csv()), or None.
    `command`: the exact command that reproduces the study, quoted in the report.
    Returns the paths written: analysis.json, report.md, then the figures.
    """
    records = analysis.normalize_records(records)
    if reference is not None:
        reference = analysis.normalize_records(reference, "reference record")
    result = analysis.analyze(
        records, config=config, reference_records=reference, source_label=source_label
    )
    figures = plots.plot_figures(
        os.path.join(workdir, "figures"), records, reference_records=reference
    )
    if scores is not None:
        result["estimators"] = analysis.estimator_agreement(scores, records)
        if result["estimators"]["groups"]:
            figures += estimators.plot(result["estimators"], os.path.join(workdir, "figures"))
    result["figures"] = [os.path.relpath(p, workdir) for p in figures]
    result["report"] = "report.md"
    result["command"] = command
    paths = [os.path.join(workdir, "analysis.json"), os.path.join(workdir, "report.md")]
    files.write_json(paths[0], result)
    report.write_report(paths[1], result)
    return paths + figures
