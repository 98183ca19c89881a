"""--mode=tune: keras-tuner searches the base network's solver, then AnB+'s fine-tuning rate,
and writes workdir/tuned.flags (tuning/search.py does the searching)."""

from kerastransfer import tuning


def run(experiment):
    """Runs both searches on the workdir's study."""
    return tuning.run(experiment)
