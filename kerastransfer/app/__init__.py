"""The drivers of the command line's modes, one module each: what `--mode` runs.

    train    --mode=train and --mode=all: the grid (or an own-model study, or one shard of
             either), then in --mode=all score, analyze and export on the same study
    score    --mode=score: the transferability estimators on every cut point
    analyze  --mode=analyze (and `python -m kerastransfer.analysis`, which launches it): every
             number of the analysis, handed to reporting to render
    export   --mode=export: the best transferred run as a SavedModel for TF-Serving
    tune     --mode=tune: the keras-tuner searches
The only place that combines study/, tuning/, reporting/ and serving/, so each stays unaware
of the others. May import every kerastransfer package; nothing imports app/ except run.py.
"""

from collections.abc import Sequence

from kerastransfer.app import analyze, export, score, train
from kerastransfer.config import Experiment


def drive(experiment: Experiment, argv: Sequence[str]) -> None:
    """Runs the driver of `experiment.mode`; `argv`: the command line, for config.json."""
    if experiment.mode == "analyze":
        analyze.run(experiment)
    elif experiment.mode == "export":
        export.run(experiment)
    elif experiment.mode == "score":
        score.run(experiment)
    else:
        if experiment.grid.deterministic:
            _make_deterministic(experiment.grid.seed_offset)
        if experiment.mode == "tune":
            from kerastransfer.app import tune  # noqa: PLC0415  (keras-tuner loads only here)

            tune.run(experiment, argv)
        else:
            train.run(experiment, argv)


def _make_deterministic(seed: int) -> None:
    """--deterministic: TensorFlow's deterministic kernels and fixed Python, NumPy and TF seeds
    (every run also reseeds from its run id before it builds its network)."""
    import tensorflow as tf  # noqa: PLC0415

    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
