"""Run records: `workdir/results.jsonl`, one JSON line per finished run, and the paper's metric.

This module is the one reader and writer of results.jsonl. Appends are whole lines written
under an exclusive lock and fsynced, so concurrent writers never interleave; a crash leaves at
most an unterminated last line, which readers ignore unless it parses and the next append cuts
off. Any other bad line (not JSON, or a record without the keys the runner writes) is a
UsageError naming the file, the line and the fix: mend the line, or drop it with `sed` and
let the runner train that run again. An append that finds no room (full disk) leaves the file
as it was and raises errors.DiskFull.
"""

import fcntl
import json
import os
import shlex
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from kerastransfer.errors import UsageError
from kerastransfer.workdir import files
from kerastransfer.workdir.records import AnyRecord, RunLine, RunRecord

RESULTS_FILE = "results.jsonl"
# Keys of every record the runner appends (its RunSpec and status), and the keys by status.
RECORD_KEYS = ("run", "treatment", "split", "source", "target", "n", "seed", "status")
STATUS_KEYS = {
    "ok": (
        "best_k",
        "k",
        "final_val",
        "test_accuracy",
        "weights",
        "weights_bytes",
        "weights_sha256",
    ),
    "failed": ("reason",),
    "skipped": ("reason",),
}


def best_k_mean(history: Iterable[Sequence[float]], k: int) -> float:
    """The paper's metric: the mean of the k best evaluations (all of them if fewer)."""
    accuracies = sorted((acc for _, acc in history), reverse=True)
    return float(np.mean(accuracies[:k])) if accuracies else float("nan")


def repair_hint(path: str, number: int) -> str:
    """The fix a damaged line `number` of `path` names: mend it, or drop it with sed."""
    return (
        f"mend that line, or drop it with `sed -i '{number}d' {shlex.quote(path)}` "
        "(its run is then trained again)"
    )


def _parse(path: str) -> list[tuple[int, Any]]:
    """[(line number, raw record: any JSON value)] of a results file, in file order.

    An unterminated last line that does not parse is a write torn by a crash and is ignored;
    any other line that is not JSON raises UsageError naming file, line and fix.
    """
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    parsed = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            parsed.append((number, json.loads(line)))
        except ValueError as error:
            if number == len(lines):  # no newline after it: a torn append
                break
            raise UsageError(
                f"{path}:{number}: not valid JSON ({error}); {repair_hint(path, number)}"
            ) from None
    return parsed


def read_results(path: str) -> list[RunRecord]:
    """The checked records of a results file, the last one of each run id (a redone run's
    newer record wins), each moved to its newest position; UsageError on any bad line."""
    if not os.path.isfile(path):
        raise UsageError(
            f"results file {path} does not exist; run the study first or pass the "
            "workdir that holds results.jsonl"
        )
    latest: dict[str, RunRecord] = {}
    for number, raw in _parse(path):
        record = normalize_record(raw, f"{path}:{number}")
        latest.pop(record.run, None)
        latest[record.run] = record
    return list(latest.values())


class ResultStore:
    """Reads and appends `results.jsonl` in a workdir."""

    def __init__(self, workdir: str) -> None:
        self.path = os.path.join(workdir, RESULTS_FILE)

    def records(self) -> list[RunLine]:
        """All complete records as written, in file order; UsageError naming the line and the
        fix for a line that is not a whole record as the runner writes it."""
        if not os.path.exists(self.path):
            return []
        parsed = _parse(self.path)
        for number, raw in parsed:
            _check_stored(raw, self.path, number)
        return [raw for _, raw in parsed]

    def latest(self) -> dict[str, RunLine]:
        """The last record of each run id (a redone run's newer record wins)."""
        return {record["run"]: record for record in self.records()}

    def append(self, record: Mapping[str, Any]) -> None:
        """Appends one record as one line, atomically with respect to crashes and writers;
        errors.DiskFull, with the file as it was, when the line finds no room."""
        line = (json.dumps(record, sort_keys=True, default=_plain) + "\n").encode()
        with files.no_room_is_disk_full(self.path):
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                size = os.fstat(fd).st_size
                if size:
                    os.lseek(fd, size - 1, os.SEEK_SET)
                    if os.read(fd, 1) != b"\n":
                        with open(self.path, "rb") as f:
                            data = f.read()
                        keep = data.rfind(b"\n") + 1
                        if _parses(data[keep:]):  # a whole record without its newline: keep it
                            line = b"\n" + line
                        else:  # a torn line from a crash: cut it off
                            os.ftruncate(fd, keep)
                            size = keep
                try:
                    rest = memoryview(line)
                    while rest:  # a short write (the disk filled up) raises on the next one
                        rest = rest[os.write(fd, rest) :]
                    os.fsync(fd)
                except OSError:
                    os.ftruncate(fd, size)  # no partial record stays behind
                    raise
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)


def _check_stored(raw: Any, path: str, number: int) -> None:
    """Raises UsageError unless line `number` holds a record with every key the runner
    writes, each of the right type (`raw`: the line's JSON value, whatever it is)."""
    where = f"{path}:{number}"
    hint = repair_hint(path, number)
    if not isinstance(raw, dict):
        normalize_record(raw, where, fix=hint)  # raises: not a JSON object
    status = raw.get("status")
    missing = [key for key in (*RECORD_KEYS, *STATUS_KEYS.get(status, ())) if key not in raw]
    if missing:
        raise UsageError(f"{where}: the record lacks {', '.join(missing)}; {hint}")
    normalize_record(raw, where, fix=hint)
    if not isinstance(raw["run"], str) or not raw["run"]:
        raise UsageError(f"{where}: run={raw['run']!r} must be a non-empty run id; {hint}")
    if status == "ok":
        weights, size, digest = raw["weights"], raw["weights_bytes"], raw["weights_sha256"]
        if not (
            isinstance(weights, str)
            and isinstance(size, int)
            and not isinstance(size, bool)
            and isinstance(digest, str)
        ):
            raise UsageError(
                f"{where}: weights={weights!r}, weights_bytes={size!r}, "
                f"weights_sha256={digest!r} are not a path, a size and a digest; {hint}"
            )


def _parses(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _plain(value: object) -> object:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def normalize_record(raw: object, where: str, fix: str = "fix or remove that record") -> RunRecord:
    """Checks one run record and returns it as a RunRecord (workdir/records.py); raises
    UsageError naming `where` and `fix`. A RunRecord is returned as it is."""
    return RunRecord.from_json(raw, where, fix)


def normalize_records(records: Iterable[AnyRecord], what: str = "record") -> list[RunRecord]:
    """normalize_record() for every record of a list (dicts or RunRecords), each named by its
    position and run."""
    return [
        normalize_record(r, f"{what} {i} ({r.get('run') if isinstance(r, dict) else r.run})")
        for i, r in enumerate(records)
    ]
