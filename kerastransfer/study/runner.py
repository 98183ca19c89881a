"""The one loop over a study's runs, shared by the grid, its shards and own-model studies.

A run is done once its record is in results.jsonl and its weights file is on disk, so a
killed grid resumes where it stopped; an interrupted run continues from its checkpoint. A run
whose base failed is recorded as skipped; with --on_failure=stop the first failed run ends
the loop (`stopped_by`). The grid trains --runs_in_flight runs at once, each in a thread of
its own: on a small network one run leaves cores idle between its operations, and a second
run fills them (BENCHMARKS.md). Each run's result is the one it gets alone.
"""

import ctypes
import gc
import os
import time
from concurrent import futures

from kerastransfer.errors import UsageError
from kerastransfer.study.plan import RunSpec
from kerastransfer.training import strategies
from kerastransfer.workdir.provenance import file_digest
from kerastransfer.workdir.records import skipped_line


class Runner:
    """Trains a study's runs and appends their records to `store`.

    Args:
        study: the Study (data and the training of one run).
        store: where records go: a workdir.results.ResultStore, or a multi-worker follower's
            stand-in (study/following.py).
        log: where progress lines go.
    """

    def __init__(self, study, store, log):
        self.study, self.store, self.log = study, store, log
        self.stopped_by = None  # the failed record that ended the loop (--on_failure=stop)

    def finished(self):
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
                base = latest.get(RunSpec.of(record).base_run, {})
                if base.get("status") == "failed":
                    done[run_id] = record
        done.update(self.study.given_records())
        return done

    def _weights_intact(self, record):
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

    def run_one(self, spec, done, position="", progress=None):
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

    def _base_or_skip(self, spec, done, position):
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

    def _finish(self, spec, record, done, position, progress):
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

    def run_all(self):
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
        started, finished = time.perf_counter(), []

        def progress(record):
            finished.append(record)
            elapsed = time.perf_counter() - started
            eta = elapsed / len(finished) * (len(todo) - len(finished))
            return f"elapsed {_clock(elapsed)}, ETA {_clock(eta)}"

        waiting, in_flight = list(todo), {}  # future -> (spec, position)
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


def _executor(width, mixed_precision):
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

    def submit(self, function, *args):
        future = futures.Future()
        try:
            future.set_result(function(*args))
        except BaseException as error:  # re-raised by future.result(), as from a thread
            future.set_exception(error)
        return future

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False


def return_freed_memory():
    """Frees a finished run's networks and batches now and hands the memory back to the
    system: Keras models sit in reference cycles until Python's next full collection, and
    glibc keeps freed blocks for reuse, which a study's peak memory then counts."""
    gc.collect()
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to trim
        return
    libc.malloc_trim(0)


def _next_ready(waiting, in_flight):
    """The first waiting run whose base is neither waiting nor in flight."""
    pending = {spec.run for spec in waiting} | {spec.run for spec, _ in in_flight.values()}
    return next((spec for spec in waiting if spec.base_run not in pending), None)


def _clock(seconds):
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s"
