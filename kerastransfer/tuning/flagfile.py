"""tuned.flags: the searches' best values as a flagfile the grid takes after the config it was
tuned with, each value under a comment naming the trial it came from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kerastransfer.config import Experiment


def flagfile_text(
    experiment: Experiment,
    argv: Sequence[str],
    n: int,
    base: dict[str, Any],
    fine: dict[str, Any] | None,
    path: str,
) -> str:
    """The text of tuned.flags at `path`.

    `argv`: the tuning command line; `n`: AnB+'s cut; `base`, `fine`: the searches' best
    trials (searches.best_trial; `fine` None when no AnB+ trial finished).
    """
    e = experiment
    flagfiles = [arg for arg in argv[1:] if arg.startswith("--flagfile=")]
    lines = [
        "# Tuned by `python -m kerastransfer.run --mode=tune` (kerastransfer/tuning/):",
        "#   python -m kerastransfer.run " + " ".join(argv[1:]),
        f"# Tuner {e.tuning.tuner}, split {e.data.splits[0]}; scores are the mean of the best "
        f"{e.solver.best_k} validation evaluations (test data was never used).",
        "# Use it after the flags it was tuned with, with a NEW --workdir (a workdir trained "
        "with other values refuses them):",
        "#   python -m kerastransfer.run "
        + " ".join([*flagfiles, f"--flagfile={path}", "--workdir=NEW_DIR"]),
    ]
    where = (
        f"base trial {base['trial_id']} (tuning/base/trial_{base['trial_id']}) of "
        f"{base['trials']}, best-{base['k']} val accuracy {base['score']:.4f} on half A's "
        "validation split"
    )
    for name in ("learning_rate", "weight_decay", "batch_size", "epochs"):
        lines += [f"# {name}: {where}", f"--{name}={base['values'][name]}"]
    if fine is None:
        lines.append(
            "# fine_tune_lr_scale: not tuned (no AnB+ trial finished); the grid uses its default"
        )
    else:
        lines += [
            f"# fine_tune_lr_scale: AnB+ n={n} trial {fine['trial_id']} "
            f"(tuning/transfer_ft/trial_{fine['trial_id']}) of {fine['trials']}, "
            f"best-{fine['k']} val accuracy {fine['score']:.4f} on half B's validation "
            f"split, trained {fine['epochs_trained']:g} epochs",
            f"--fine_tune_lr_scale={fine['values']['fine_tune_lr_scale']}",
        ]
    return "\n".join(lines) + "\n"
