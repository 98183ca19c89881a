"""A workdir's run records, read the way the package reads them (kerastransfer.workdir.results)."""

from kerastransfer import treatments
from kerastransfer.workdir.results import ResultStore


def records(workdir):
    """Every record of workdir/results.jsonl in file order, a redone run's older records
    included ([] before the first record is written); a line that is not JSON fails, except a
    torn unterminated last line, which the package ignores too."""
    return ResultStore(str(workdir)).records()


def by_run(workdir):
    """{run id: its newest record}, in the order the runs were first recorded."""
    return ResultStore(str(workdir)).latest()


def run_record(split, treatment, target, n, seed, accuracy, **fields):
    """A hand-made results.jsonl record of one network (status ok unless `fields` say so):
    its source half follows the treatments table, `accuracy` is its best-k metric."""
    source = "" if treatment == treatments.BASE else treatments.get(treatment).source_half(target)
    return {
        "run": f"{split}/{treatment}/{target}/n{n}/seed{seed}",
        "treatment": treatment,
        "split": split,
        "source": source,
        "target": target,
        "n": n,
        "seed": seed,
        "best_k": accuracy,
        "status": "ok",
        **fields,
    }
