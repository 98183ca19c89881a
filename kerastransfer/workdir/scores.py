"""workdir/scores.json: the transferability estimators' scores of a study's cut points.

Written by study/scoring.py (--mode=score, and --mode=all before it analyzes); read by the
analysis, which sets the scores against the measured accuracies, and by --prune.

An entry's score is null (n/a) where the estimator could not score that cut point; the entry's
"unscored" holds the reason. No NaN is written, so the file stays valid JSON.
"""

import os

from kerastransfer.workdir import files

SCORES_FILE = "scores.json"


def scores_path(workdir):
    return os.path.join(workdir, SCORES_FILE)


def read_scores(workdir):
    """The workdir's scores.json as a dict, or None when there is none."""
    path = scores_path(workdir)
    if not os.path.exists(path):
        return None
    return files.read_json(path, "entries", "remove it and score again with --mode=score")


def write_scores(workdir, scores):
    """Writes scores.json atomically; returns its path."""
    path = scores_path(workdir)
    files.write_json(path, scores)
    return path
