"""A study's outputs in one call: analysis.json, the figures and report.md of its analysis.

The analyze driver (app/analyze.py) has analysis.analyze compute the whole dict, which names
the figures and the report too; this module draws and writes them, and changes nothing.
"""

import os
from collections.abc import Mapping, Sequence
from typing import Any

from kerastransfer.reporting import estimator_agreement, plots, report
from kerastransfer.workdir import files
from kerastransfer.workdir.records import AnyRecord


def write_analysis(
    workdir: str, result: Mapping[str, Any], records: Sequence[AnyRecord]
) -> list[str]:
    """Writes workdir/analysis.json, workdir/figures/* and workdir/report.md.

    `result`: the finished analysis dict (analysis.analyze's; its "reference" is drawn
    faintly in the figures, its "figures" and "report" name what is written); `records` the
    normalized records it was computed from, the figures' dots.
    Returns the paths written: analysis.json, report.md, then the figures.
    """
    figures_dir = os.path.join(workdir, "figures")
    figures = plots.plot_figures(figures_dir, result, records)
    figures += estimator_agreement.write_figure(figures_dir, result.get("estimators"))
    drawn = [os.path.relpath(p, workdir) for p in figures]
    if drawn != result["figures"]:
        raise RuntimeError(f"drew {drawn}, but the analysis names {result['figures']}")
    paths = [os.path.join(workdir, "analysis.json"), os.path.join(workdir, result["report"])]
    files.write_json(paths[0], result)
    report.write_report(paths[1], result)
    return paths + figures
