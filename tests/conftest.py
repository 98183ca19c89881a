"""Shared pytest setup.

Markers (setup.cfg): `slow` tests run only with --runslow (or KT_RUNSLOW=1); `e2e` tests
start the real command line in a subprocess (they run by default; `-m "not e2e"` leaves them
out). A test that uses the `smoke_workdir` fixture is e2e too: the fixture runs the CLI.

Fixtures:
    smoke_workdir   the smoke study (configs/smoke.flags: train, analyze, export) run once per
                    session through the command line (once for all pytest-xdist workers);
                    read it, never change it
    smoke_copy      a private copy of that finished workdir, for a test that changes it
    free_port       a TCP port on 127.0.0.1 with nothing listening
    free_ports      free_ports(count, consecutive=False): that many distinct free ports
Helpers to import (helpers/): records.records(workdir) reads results.jsonl; cli.run_cli runs
the command line; see helpers/__init__.py.
"""

import dataclasses
import fcntl
import json
import os
import shutil
import subprocess

import pytest

from helpers.cli import SMOKE, run_cli
from helpers.ports import free_ports as _free_ports

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "smoke_workdir" in item.fixturenames:
            item.add_marker(pytest.mark.e2e)
    if config.getoption("--runslow") or os.environ.get("KT_RUNSLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@dataclasses.dataclass(frozen=True)
class FinishedStudy:
    """A study the command line ran to the end: its workdir and the finished process."""

    workdir: str
    done: subprocess.CompletedProcess


@pytest.fixture(scope="session")
def smoke_workdir(tmp_path_factory, worker_id):
    """The smoke study run once, end to end (train, analyze, export), as a FinishedStudy.

    Shared by every test that only reads a finished workdir; a test that runs the command
    line on it again or changes a file takes `smoke_copy` instead. Under pytest-xdist the
    first worker that needs it runs it and the others wait for it (a lock in the directory
    the workers share) and read the same workdir.
    """
    root = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        root = root.parent  # the session's directory above every worker's own
    workdir, finished = root / "smoke" / "study", root / "smoke" / "finished.json"
    with open(root / "smoke.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not finished.exists():
            workdir.parent.mkdir(exist_ok=True)
            done = run_cli(f"--flagfile={SMOKE}", f"--workdir={workdir}")
            finished.write_text(
                json.dumps(
                    {
                        "args": done.args,
                        "returncode": done.returncode,
                        "stdout": done.stdout,
                        "stderr": done.stderr,
                    }
                )
            )
    done = subprocess.CompletedProcess(**json.loads(finished.read_text()))
    assert done.returncode == 0, done.stderr[-4000:]
    return FinishedStudy(str(workdir), done)


@pytest.fixture
def smoke_copy(smoke_workdir, tmp_path):
    """A copy of the finished smoke workdir that this test may change."""
    workdir = str(tmp_path / "study")
    shutil.copytree(smoke_workdir.workdir, workdir)
    return workdir


@pytest.fixture
def free_port():
    """A port on 127.0.0.1 with nothing listening."""
    return _free_ports(1)[0]


@pytest.fixture
def free_ports():
    """free_ports(count, consecutive=False): `count` distinct free ports on 127.0.0.1; with
    `consecutive`, ports p, p+1, ..."""
    return _free_ports
