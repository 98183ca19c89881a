"""Run records as the analysis sees them: the paper's networks read into the runner's schema,
and the groupings and labels every table shares.

A reproduction's records come from `workdir/results.jsonl` (kerastransfer.workdir.results);
`load_paper_csv` reads Yosinski et al.'s 136 published networks into the same schema, so a
reproduction and the paper go through identical code.
"""

import csv
import os
from collections.abc import Collection, Iterable

from kerastransfer import treatments
from kerastransfer.errors import UsageError
from kerastransfer.workdir.records import AnyRecord, RunRecord
from kerastransfer.workdir.results import normalize_record, normalize_records

# The shipped copy of the paper's per-network results (see reference/README.md).
PAPER_CSV = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "reference",
    "yosinski2014_networks.csv",
)

# The paper's 1000-class network ("netbase"): top-1 .5763, 42.5% error (docs/paper.md, "Results
# to reproduce"). It is the baseline of the random-features networks, which trained on all 1000
# classes (split "full"). The shipped CSV holds it as a row; this constant stands in when a
# record set has split-"full" runs but not that base row (a filtered or hand-made subset).
PAPER_FULL_SPLIT = "full"
PAPER_FULL_BASE_TOP1 = 0.5763
PAPER_K = 10  # the paper reports the mean of each network's 10 best evaluations

# How the paper's CSV names splits.
_CSV_SPLITS = {
    "0": "random0",
    "1": "random1",
    "2": "random2",
    "3": "random3",
    "natman": "dissimilar",
    "full": PAPER_FULL_SPLIT,
}
_CSV_COLUMNS = (
    "network",
    "treatment",
    "split",
    "source",
    "target",
    "n",
    "best10",
    "final",
    "evaluations",
)


def load_paper_csv(path: str | None = None) -> list[RunRecord]:
    """Reads the paper's per-network CSV (default: the shipped copy) as run records.

    best10 -> best_k (k = 10), final -> final_val, splits 0..3 -> random0..random3,
    natman -> dissimilar, full stays full; test_accuracy is None (the paper has none).
    """
    path = path or PAPER_CSV
    if not os.path.isfile(path):
        raise UsageError(
            f"paper CSV {path} does not exist; pass the path of yosinski2014_networks.csv"
        )
    records: list[RunRecord] = []
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in _CSV_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise UsageError(
                f"{path}:1: header lacks column(s) {', '.join(missing)}; expected "
                f"{','.join(_CSV_COLUMNS)}"
            )
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if row["split"] not in _CSV_SPLITS:
                raise UsageError(
                    f"{where}: split={row['split']!r} is not one of "
                    f"{', '.join(_CSV_SPLITS)}; fix that row"
                )
            try:
                n, evaluations = int(row["n"]), int(row["evaluations"])
                best, final = float(row["best10"]), float(row["final"])
            except (TypeError, ValueError):
                raise UsageError(
                    f"{where}: n, evaluations, best10 and final must be numbers, "
                    f"got {row['n']!r}, {row['evaluations']!r}, {row['best10']!r}, "
                    f"{row['final']!r}; fix that row"
                ) from None
            records.append(
                normalize_record(
                    {
                        "run": row["network"],
                        "treatment": row["treatment"],
                        "split": _CSV_SPLITS[row["split"]],
                        "source": row["source"],
                        "target": row["target"],
                        "n": n,
                        "seed": None,
                        "best_k": best,
                        "k": PAPER_K,
                        "final_val": final,
                        "test_accuracy": None,
                        "evaluations": evaluations,
                        "status": "ok",
                        "reason": None,
                    },
                    where,
                )
            )
    return records


def group_order(group: str) -> tuple[int, str]:
    """Sort key: random splits first, then the dissimilar split, then the rest by name."""
    return ({"random": 0, "dissimilar": 1}.get(group, 2), group)


def paper_label(treatment: str, targets: Collection[str]) -> str:
    """The paper's name for a treatment whose networks target `targets` (a set of halves).

    Every half plays the role of B for its own networks, so base networks pooled over halves are
    "baseB", as the paper's eight are; base networks of a single target X are "baseX".
    """
    return treatments.display_name(treatment, next(iter(targets)) if len(targets) == 1 else "B")


def is_base(record: RunRecord) -> bool:
    """Whether a record is a base network's (its treatment says so)."""
    return treatments.get(record.treatment).is_base


def ok_records(records: Iterable[AnyRecord]) -> list[RunRecord]:
    """The records that enter statistics (status "ok"), as RunRecords (dicts are checked
    and read by normalize_records)."""
    return [r for r in normalize_records(records) if r.ok]


def best_k(record: RunRecord) -> float:
    """The best_k of an ok record, the accuracy every statistic reads (RunRecord.from_json
    refuses an ok record without one)."""
    if record.best_k is None:
        raise ValueError(f"{record.run} has no best_k: only ok records enter statistics")
    return record.best_k


def metric_description(records: Iterable[AnyRecord]) -> str:
    """Human name of best_k for these records, e.g. "mean of the 10 best validation evaluations"."""
    ks = sorted({r.k for r in ok_records(records) if r.k is not None})
    if len(ks) == 1:
        return f"mean of the {ks[0]} best validation evaluations"
    if ks:
        return f"mean of the k best validation evaluations, k in {{{', '.join(map(str, ks))}}}"
    return "mean of the k best validation evaluations"
