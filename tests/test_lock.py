"""Concurrency: a second runner on a busy workdir refuses at once, naming the first's host and
pid; the lock of a killed runner does not block the next one (the crash test restarts the
real runner after SIGKILL three times, too)."""

import os
import socket

import pytest

from helpers.cli import run_cli
from helpers.reliability import REDUCED, Runner, own_lines
from kerastransfer.workdir.lock import workdir_lock

pytestmark = pytest.mark.e2e

LONG = (*REDUCED, "--epochs=30")  # both runners ask for the same study; the first keeps busy


def test_lock_second_runner_refuses_at_once_and_a_dead_runners_lock_does_not_block(tmp_path):
    workdir = str(tmp_path / "study")
    first = Runner(*LONG, f"--workdir={workdir}", stderr_path=str(tmp_path / "first.txt"))
    try:
        first.wait_until(lambda: first.printed("[1/4] start"))
        second = run_cli(*LONG, f"--workdir={workdir}")
        assert first.proc.poll() is None, "the first runner ended before the second returned"
    finally:
        first.kill()
    assert second.returncode == 2, second.stderr[-3000:]
    lines = own_lines(second.stderr)
    assert len(lines) == 1 and "Traceback" not in second.stderr, second.stderr[-3000:]
    assert f"is in use by host {socket.gethostname()} pid {first.pid};" in lines[0]
    assert "wait for it to finish or use another --workdir" in lines[0]
    assert "start" not in second.stdout

    lock = os.path.join(workdir, ".lock")
    with open(lock) as f:
        assert f"pid {first.pid}" in f.read()  # the dead runner's name is still in the file
    with workdir_lock(workdir):  # ... but its lock went with it
        with open(lock) as f:
            assert f.read() == f"host {socket.gethostname()} pid {os.getpid()}\n"
