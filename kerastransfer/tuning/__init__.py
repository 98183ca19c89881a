"""Hyperparameter tuning with keras-tuner (`--mode=tune`, driven by app/tune.py): the base
network's solver, then the fine-tuning rate of AnB+; the best values go to workdir/tuned.flags
(tuning/search.py).

May import: study.study (the data and networks of the grid), training, surgery, workdir,
errors, console; study/ never imports this package.
"""

from kerastransfer.tuning.search import run

__all__ = ["run"]
