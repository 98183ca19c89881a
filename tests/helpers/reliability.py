"""Shared by the reliability tests: a small study, a runner read while it runs, snapshots.

REDUCED is the smoke study cut to base A, base B, AnB and AnB+ at n=5 (4 runs, about 30 s).
A finished workdir to read or damage is the session's smoke study (conftest.py).
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time

from helpers.cli import REPO, SMOKE

REDUCED = (f"--flagfile={SMOKE}", "--mode=train", "--layers=5", "--treatments=transfer,transfer_ft")

# TensorFlow's C++ runtime and absl-py loggers write lines like
#   I0000 00:00:1795776974.153689    7831 port.cc:153] oneDNN custom operations are on ...
# on stderr before our message; TF 2.21 prints them whatever TF_CPP_MIN_LOG_LEVEL says.
_LOG_LINE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\)|"
    r"[IWEF]\d{4} [\d:.]+ +\d+ [\w.-]+:\d+\] )"
)


def own_lines(stderr):
    """The lines of stderr that the program printed itself (runtime log lines left out)."""
    return [line for line in stderr.splitlines() if line.strip() and not _LOG_LINE.match(line)]


def snapshot(path):
    """{relative path: bytes} of every file under `path` (or of `path` itself, if a file)."""
    if os.path.isfile(path):
        with open(path, "rb") as f:
            return {".": f.read()}
    files = {}
    for root, _, names in os.walk(path):
        for name in names:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                files[os.path.relpath(full, path)] = f.read()
    return files


class Runner:
    """`python -m kerastransfer.run ARGS` in the background; its stdout lines are collected
    as they are printed, so a test can act at a given moment (e.g. SIGKILL it)."""

    def __init__(self, *args, stderr_path):
        self.stderr_path = stderr_path
        with open(stderr_path, "a") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-u", "-m", "kerastransfer.run", *args],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        self.lines = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def pid(self):
        return self.proc.pid

    def printed(self, prefix):
        return any(line.startswith(prefix) for line in self.lines)

    def wait_until(self, condition, timeout=300):
        """Polls `condition()` every 20 ms; fails if the runner exits or time runs out first."""
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"runner exited ({self.proc.returncode}) before the "
                    f"moment came:\n{self.output()}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"timed out waiting for the moment:\n{self.output()}")
            time.sleep(0.02)

    def kill(self):
        """SIGKILL: no handler, no cleanup, exactly like a crash or the OOM killer."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._reader.join(timeout=10)

    def finish(self, timeout=600):
        """Waits for the runner to exit; returns its exit status."""
        self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return self.proc.returncode

    def output(self):
        with open(self.stderr_path) as f:
            return "\n".join(self.lines[-30:]) + "\n--- stderr ---\n" + f.read()[-3000:]
