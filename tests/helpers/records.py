"""A workdir's run records, read the way the package reads them (kerastransfer.workdir.results)."""

from kerastransfer.workdir.results import ResultStore


def records(workdir):
    """Every record of workdir/results.jsonl in file order, a redone run's older records
    included ([] before the first record is written); a line that is not JSON fails, except a
    torn unterminated last line, which the package ignores too."""
    return ResultStore(str(workdir)).records()


def by_run(workdir):
    """{run id: its newest record}, in the order the runs were first recorded."""
    return ResultStore(str(workdir)).latest()
