"""Run records: `workdir/results.jsonl`, one JSON line per finished run, and the paper's metric.

Appends are whole lines written under an exclusive lock and fsynced, so concurrent writers
never interleave and a crash leaves at most an unterminated tail, which readers ignore and
the next append cuts off.
"""

import fcntl
import json
import os

import numpy as np

PAPER_NAMES = {"selffer": "BnB", "selffer_ft": "BnB+", "transfer": "AnB",
               "transfer_ft": "AnB+", "random": "random"}


def display_name(treatment, target="B"):
    """The paper's name of a treatment: baseB, BnB, BnB+, AnB, AnB+, random."""
    return f"base{target}" if treatment == "base" else PAPER_NAMES[treatment]


def best_k_mean(history, k):
    """The paper's metric: the mean of the k best evaluations (all of them if fewer)."""
    accuracies = sorted((acc for _, acc in history), reverse=True)
    return float(np.mean(accuracies[:k])) if accuracies else float("nan")


class ResultStore:
    """Reads and appends `results.jsonl` in a workdir."""

    def __init__(self, workdir):
        self.path = os.path.join(workdir, "results.jsonl")

    def records(self):
        """All complete records, in file order (an unterminated last line is ignored)."""
        if not os.path.exists(self.path):
            return []
        with open(self.path, "rb") as f:
            data = f.read()
        lines = data.split(b"\n")
        complete = lines[:-1]  # the part after the last newline is empty or a torn write
        records = []
        for number, line in enumerate(complete, start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except ValueError:
                    raise ValueError(f"{self.path}:{number} is not valid JSON") from None
        return records

    def latest(self):
        """The last record of each run id (a redone run's newer record wins)."""
        return {record["run"]: record for record in self.records()}

    def append(self, record):
        """Appends one record as one line, atomically with respect to crashes and writers."""
        line = (json.dumps(record, sort_keys=True, default=_plain) + "\n").encode()
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size:
                os.lseek(fd, size - 1, os.SEEK_SET)
                if os.read(fd, 1) != b"\n":  # a torn line from a crash: cut it off
                    with open(self.path, "rb") as f:
                        keep = f.read().rfind(b"\n") + 1
                    os.ftruncate(fd, keep)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _plain(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
