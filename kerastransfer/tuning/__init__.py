"""Hyperparameter tuning with keras-tuner (`--mode=tune`): the base network's solver, then the
fine-tuning rate of AnB+; the best values go to workdir/tuned.flags (tuning/search.py).

May import: study.study (the data and networks of the grid), training, workdir, errors.
"""

from kerastransfer.tuning.search import run

__all__ = ["run"]
