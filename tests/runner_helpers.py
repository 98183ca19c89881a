"""Run the real command line in a subprocess, as a user would."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = os.path.join(REPO, "configs", "smoke.flags")


def run_cli(*args, timeout=600, env=None):
    """Runs `python -m kerastransfer.run ARGS` from the repository root."""
    return subprocess.run([sys.executable, "-m", "kerastransfer.run", *args],
                          capture_output=True, text=True, cwd=REPO, timeout=timeout,
                          env={**os.environ, **(env or {})})
