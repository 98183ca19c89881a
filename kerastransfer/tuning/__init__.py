"""Hyperparameter tuning with keras-tuner: the searches of `--mode=tune`, which app/tune.py
drives with the study's data, networks and solver. The base network's solver, then the
fine-tuning rate of AnB+; each trial trains through training.fit_run like a grid run.

searches (the two searches in order, each one's best trial), hypermodels (what a trial trains
and its score; TrialSetup, what the driver hands over), tuners (the oracles and the tuner),
state (keras-tuner's state saved atomically, torn trial files mended), distributed (this
process's role among keras-tuner's chief and workers), flagfile (the text of tuned.flags).

May import: training, surgery, workdir, errors, console; never study/ (it is handed what it
needs), analysis/, reporting/, serving/ or app/. study/ never imports this package.
"""
