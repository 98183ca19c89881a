"""Row "epochs": how far the default study's base networks are from the end of their learning.

Split random:0's four base networks (halves A and B, seeds 0 and 1) trained alone for 1, 2,
4, 8 and 16 epochs, each with the rate divided by 10 at the paper's proportions (every 100/450
of its run: --lr_decay_steps=0), everything else as the default flagfile sets it; their test
accuracy per epoch count, and what each doubling adds (docs/paper.md's table comes from it).
"""

import shutil
import tempfile

from tools.bench.experiment import load_experiment

EPOCHS = (1, 2, 4, 8, 16)


def epochs_row(flagfile, log, epochs=EPOCHS):
    """{"epochs", "bases": [{"run", "by_epochs": {"E": {...}}}], "mean_test": {"E": mean},
    "gain"}: the first split's bases trained for each of `epochs`, in this process (keys
    are strings, as in the JSON)."""
    from kerastransfer import treatments  # noqa: PLC0415
    from kerastransfer.study.study import Study  # noqa: PLC0415

    bases, means = {}, {}
    for count in epochs:
        workdir = tempfile.mkdtemp(prefix=f"kt-benchmark-epochs{count}-")
        try:
            experiment = load_experiment(flagfile, workdir)
            experiment = experiment.replace(
                splits=experiment.data.splits[:1], epochs=count, lr_decay_steps=0
            )
            study = Study.load(experiment, log=lambda message: None)
            tested = []
            for spec in study.runs:
                if not treatments.get(spec.treatment).is_base:
                    continue
                record = study.train_run(spec, None)
                log(
                    f"  {count} epochs {spec.run}: test {record['test_accuracy']:.4f}, "
                    f"{record['steps']} steps, {record['train_seconds']:.0f} s"
                )
                bases.setdefault(spec.run, {})[str(count)] = {
                    "test_accuracy": record["test_accuracy"],
                    "best_k": record["best_k"],
                    "steps": record["steps"],
                    "train_seconds": record["train_seconds"],
                }
                tested.append(record["test_accuracy"])
            means[str(count)] = sum(tested) / len(tested)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    doublings = [(a, b) for a, b in zip(epochs, epochs[1:]) if b == 2 * a]
    return {
        "epochs": list(epochs),
        "bases": [{"run": run, "by_epochs": by} for run, by in bases.items()],
        "mean_test": means,
        "gain": [
            {"from": a, "to": b, "points": 100.0 * (means[str(b)] - means[str(a)])}
            for a, b in doublings
        ],
    }
