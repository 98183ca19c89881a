"""A smoke-sized study loaded in this process: 60 images per class, one epoch of batches of 32."""

from kerastransfer import config
from kerastransfer.study.study import Study

WIDTHS = (8, 8, 8, 8, 8, 16, 16)


def tiny_study(workdir, **flags):
    """Study.load of split random:0 at smoke size; `flags` (flag names) set the rest, e.g.
    layers, treatments, dropout."""
    experiment = config.Experiment(workdir=str(workdir)).replace(
        splits=("random:0",),
        widths=WIDTHS,
        max_examples_per_class=60,
        epochs=1.0,
        batch_size=32,
        learning_rate=0.05,
        eval_every=3,
        best_k=1,
        **flags,
    )
    return Study.load(experiment, log=lambda message: None)
