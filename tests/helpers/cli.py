"""Run the real command line in a subprocess, as a user would, and find the Python tools
installed beside the interpreter that runs the tests."""

import os
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMOKE = os.path.join(REPO, "configs", "smoke.flags")


def cli_command(*args):
    """The argv of `python -m kerastransfer.run ARGS` under the interpreter running the tests."""
    return [sys.executable, "-m", "kerastransfer.run", *args]


def run_cli(*args, timeout=600, env=None):
    """Runs `python -m kerastransfer.run ARGS` from the repository root."""
    return subprocess.run(
        cli_command(*args),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def python_tool(script, module):
    """The argv prefix that runs a console script of the running interpreter's environment.

    The script beside sys.executable (a virtual environment's bin/ works without being
    activated, unlike a lookup on PATH), else `python -m MODULE` when it was not installed.
    """
    path = os.path.join(os.path.dirname(sys.executable), script)
    if os.path.isfile(path) and os.access(path, os.X_OK):
        return [path]
    return [sys.executable, "-m", module]


def find_binary(name):
    """A program's path: beside sys.executable first (a venv's bin/), then on PATH; None if
    neither has it."""
    return shutil.which(
        name,
        path=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", os.defpath)]),
    )
