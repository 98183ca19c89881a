"""Training one network: the solver, the loop, traced-function caches, prefix caching, strategies.

solver (the paper's SGD and schedule), loop (`fit_run`, the one way to train a run:
segments, checkpoints, divergence, kept weights), compiled (traced models and forward passes
kept between runs), caching (frozen-prefix features), strategies (tf.distribute, mixed
precision).
May import: data, models, surgery, flops, workdir, errors; never study/, tuning/, serving/.
"""

from kerastransfer.training.compiled import CompiledModels, Evaluator
from kerastransfer.training.loop import (
    DivergedError,
    RunOutcome,
    TrainResult,
    fit_run,
    fit_stages,
    train,
)
from kerastransfer.training.solver import Solver, compile_model, plan_steps
from kerastransfer.training.strategies import make_strategy

__all__ = [
    "CompiledModels",
    "DivergedError",
    "Evaluator",
    "RunOutcome",
    "Solver",
    "TrainResult",
    "compile_model",
    "fit_run",
    "fit_stages",
    "make_strategy",
    "plan_steps",
    "train",
]
