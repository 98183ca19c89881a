"""The stages of `--mode=all` share one study: the dataset is read and split once."""

import json
import subprocess
import sys

import pytest

from helpers.cli import REPO, SMOKE

pytestmark = pytest.mark.e2e

# The real command line, with the data layer's two entry points counting their calls.
COUNTING_RUN = """
import json, sys
from absl import app
from kerastransfer import data, run

calls = {"load_source": 0, "make_split": 0}

def counting(name):
    original = getattr(data, name)
    def wrapper(*args, **kwargs):
        calls[name] += 1
        return original(*args, **kwargs)
    setattr(data, name, wrapper)

counting("load_source")
counting("make_split")
try:
    app.run(run.main, flags_parser=run.parse_flags, argv=sys.argv)
finally:
    print("CALLS " + json.dumps(calls))
"""


def test_mode_all_reads_and_splits_the_dataset_once(tmp_path):
    workdir = tmp_path / "study"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            COUNTING_RUN,
            f"--flagfile={SMOKE}",
            f"--workdir={workdir}",
            "--layers=1",
            "--treatments=transfer",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    calls = json.loads(done.stdout.split("CALLS ")[-1])
    # training, the CKA figures and the export all ran, on the one study
    assert (workdir / "figures" / "cka_random0.png").exists()
    assert (workdir / "export" / "kerastransfer" / "1" / "saved_model.pb").exists()
    assert calls == {"load_source": 1, "make_split": 1}
