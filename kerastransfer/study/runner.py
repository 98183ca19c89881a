"""The one loop over a study's runs, shared by the grid, its shards and own-model studies.

A run is done once its record is in results.jsonl and its weights file is on disk, so a
killed grid resumes where it stopped; an interrupted run continues from its checkpoint. A run
whose base failed is recorded as skipped; with --on_failure=stop the first failed run ends
the loop (`stopped_by`). The grid trains --runs_in_flight runs at once, each in a thread of
its own: on a small network one run leaves cores idle between its operations, and a second
run fills them (BENCHMARKS.md). Each run's result is the one it gets alone.
"""

from __future__ import annotations

import ctypes
import gc
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent import futures
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from kerastransfer.errors import UsageError
from kerastransfer.study.plan import RunSpec
from kerastransfer.training import strategies
from kerastransfer.workdir.provenance import file_digest
from kerastransfer.workdir.records import RunLine, skipped_line

if TYPE_CHECKING:
    from kerastransfer.study.study import Study

_Result = TypeVar("_Result")


class Store(Protocol):
    """Where a runner's records go: a workdir.results.ResultStore, or a multi-worker
    follower's stand-in (study/following.py)."""

    @property
    def path(self) -> str: ...

    def records(self) -> list[RunLine]: ...

    def latest(self) -> dict[str, RunLine]: ...

    def append(self, record: Mapping[str, Any]) -> None: ...


class Runner:
    """Trains a study's runs and appends their records to `store`.

    Args:
        study: the Study (data and the training of one run).
        store: where records go: a workdir.results.ResultStore, or a multi-worker follower's
            stand-in (study/following.py).
        log: where progress lines go.
    """

    def __init__(self, study: Study, store: Store, log: Callable[[str], None]) -> None:
        self.study, self.store, self.log = study, store, log
        # the failed record that ended the loop (--on_failure=stop)
        self.stopped_by: RunLine | None = None

    def finished(self) -> dict[str, RunLine]:
        """Records of runs that need no (re)training: ok with intact weights, failed, or
        skipped because their base failed; plus the runs the study is given (an own model)."""
        latest = self.store.latest()
        done = {}
        for run_id, record in latest.items():
            if record["status"] == "failed":
                done[run_id] = record
            elif record["status"] == "ok" and self._weights_intact(record):
                done[run_id] = record
            elif record["status"] == "skipped":
                base_run = RunSpec.of(record).base_run  # a skipped run has a base
                base = latest.get(base_run, {}) if base_run else {}
                if base.get("status") == "failed":
                    done[run_id] = record
        done.update(self.study.given_records())
        return done

    def _weights_intact(self, record: RunLine) -> bool:
        """Checks a finished run's weights file against the size and sha256 in its record.

        A damaged file means the run is trained again, or with --on_corrupt_weights=error
        a UsageError naming the file.
        """
        path = os.path.join(self.study.workdir, record["weights"])
        if not os.path.exists(path):
            problem = "is missing"
        elif os.path.getsize(path) != record["weights_bytes"]:
            problem = (
                f"is truncated or damaged ({os.path.getsize(path)} bytes, its record in "
                f"results.jsonl says {record['weights_bytes']})"
            )
        elif file_digest(path) != record["weights_sha256"]:
            problem = "is corrupt (its sha256 differs from the one in results.jsonl)"
        else:
            return True
        if self.study.experiment.grid.on_corrupt_weights == "error":
            raise UsageError(
                f"weights file {path} of finished run {record['run']} {problem}; "
                "restore it, or pass --on_corrupt_weights=redo to train the run "
                "again"
            )
        self.log(f"weights file {path} of {record['run']} {problem}: training it again")
        return False

    def run_one(
        self,
        spec: RunSpec,
        done: dict[str, RunLine],
        position: str = "",
        progress: Callable[[RunLine], str] | None = None,
    ) -> RunLine:
        """Trains `spec` (or records it skipped when its base did not finish ok), appends
        the record, logs it and puts it into `done`; returns it.

        `position` prefixes the log lines (e.g. "[3/37] "); `progress()` adds text to the
        line of a finished run (e.g. elapsed time and ETA).
        """
        base = self._base_or_skip(spec, done, position)
        if base is False:
            return done[spec.run]
        self.log(f"{position}start {spec.run} ({spec.label})")
        return self._finish(spec, self.study.train_run(spec, base), done, position, progress)

    def _base_or_skip(
        self, spec: RunSpec, done: dict[str, RunLine], position: str
    ) -> RunLine | None | Literal[False]:
        """The base record `spec` trains from (None for a base or random features), or
        False after recording `spec` skipped because its base did not finish ok."""
        if not spec.base_run:
            return None
        base = done.get(spec.base_run)
        if base is not None and base["status"] == "ok":
            return base
        why = base["status"] if base else "did not finish"
        record = skipped_line(spec, f"base {spec.base_run} {why}")
        self.store.append(record)
        self.log(f"{position}SKIPPED {spec.run}: {record['reason']}")
        done[spec.run] = record
        return False

    def _finish(
        self,
        spec: RunSpec,
        record: RunLine,
        done: dict[str, RunLine],
        position: str,
        progress: Callable[[RunLine], str] | None,
    ) -> RunLine:
        """Appends a trained run's record, logs it and puts it into `done`."""
        return_freed_memory()
        self.store.append(record)  # before "done": a line on screen means a record
        if record["status"] == "ok":
            extra = f"; {progress(record)}" if progress else ""
            self.log(
                f"{position}done  {spec.run} ({spec.label}): best-{record['k']} "
                f"val {record['best_k']:.4f}, test {record['test_accuracy']:.4f}, "
                f"{record['train_seconds']:.1f}s, "
                f"{record['images_per_second']:.0f} img/s{extra}"
            )
        else:
            self.log(f"{position}FAILED {spec.run}: {record['reason']}")
        done[spec.run] = record
        if record["status"] == "failed" and self.study.experiment.grid.on_failure == "stop":
            self.stopped_by = record
        return record

    def run_all(self) -> dict[str, RunLine]:
        """Trains every planned run that is not finished, in plan order, up to the study's
        `runs_in_flight` at once (each in its own thread); returns the final records.

        A run starts once its base is finished; records are appended and logged by this
        thread as runs finish. After a failure under --on_failure=stop, no new run starts
        and the runs in flight finish.
        """
        runs = self.study.runs
        done = self.finished()
        todo = [spec for spec in runs if spec.run not in done]
        total = len(runs)
        if not todo:
            self.log(f"all {total} runs already done in {self.study.workdir}")
            return done
        width = self.study.runs_in_flight
        at_once = f", {width} at a time" if width > 1 else ""
        self.log(
            f"{len(todo)} of {total} runs to train ({total - len(todo)} already done{at_once})"
        )
        started = time.perf_counter()
        finished: list[RunLine] = []

        def progress(record: RunLine) -> str:
            finished.append(record)
            elapsed = time.perf_counter() - started
            eta = elapsed / len(finished) * (len(todo) - len(finished))
            return f"elapsed {_clock(elapsed)}, ETA {_clock(eta)}"

        waiting = list(todo)
        # future -> (spec, position)
        in_flight: dict[futures.Future[RunLine], tuple[RunSpec, str]] = {}
        numbered = total - len(todo)
        with _executor(width, self.study.experiment.scale_out.mixed_precision) as pool:
            while waiting or in_flight:
                while waiting and len(in_flight) < width and not self.stopped_by:
                    spec = _next_ready(waiting, in_flight)
                    if spec is None:
                        break
                    waiting.remove(spec)
                    numbered += 1
                    position = f"[{numbered}/{total}] "
                    base = self._base_or_skip(spec, done, position)
                    if base is not False:
                        self.log(f"{position}start {spec.run} ({spec.label})")
                        future = pool.submit(self.study.train_run, spec, base)
                        in_flight[future] = (spec, position)
                if not in_flight:
                    break
                ended, _ = futures.wait(in_flight, return_when=futures.FIRST_COMPLETED)
                for future in ended:
                    spec, position = in_flight.pop(future)
                    self._finish(spec, future.result(), done, position, progress)
        return done


def _executor(width: int, mixed_precision: str) -> futures.ThreadPoolExecutor | _InThisThread:
    """Where runs train: this thread when one at a time; else `width` threads, each given
    the --mixed_precision policy first (Keras keeps its dtype policy per thread)."""
    if width == 1:
        return _InThisThread()
    return futures.ThreadPoolExecutor(
        width,
        thread_name_prefix="run",
        initializer=strategies.set_precision,
        initargs=(mixed_precision,),
    )


class _InThisThread:
    """An executor that runs each call at once in the calling thread."""

    def submit(self, function: Callable[..., _Result], *args: Any) -> futures.Future[_Result]:
        future: futures.Future[_Result] = futures.Future()
        try:
            future.set_result(function(*args))
        except BaseException as error:  # re-raised by future.result(), as from a thread
            future.set_exception(error)
        return future

    def __enter__(self) -> _InThisThread:
        return self

    def __exit__(self, *exc_info: object) -> Literal[False]:
        return False


def return_freed_memory() -> None:
    """Frees a finished run's networks and batches now and hands the memory back to the
    system: Keras models sit in reference cycles until Python's next full collection, and
    glibc keeps freed blocks for reuse, which a study's peak memory then counts."""
    gc.collect()
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to trim
        return
    libc.malloc_trim(0)


def _next_ready(
    waiting: Sequence[RunSpec], in_flight: Mapping[futures.Future[RunLine], tuple[RunSpec, str]]
) -> RunSpec | None:
    """The first waiting run whose base is neither waiting nor in flight."""
    pending = {spec.run for spec in waiting} | {spec.run for spec, _ in in_flight.values()}
    return next((spec for spec in waiting if spec.base_run not in pending), None)


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s"
