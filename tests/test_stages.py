"""The mode drivers (app/): the stages of `--mode=all` share one study, so the dataset is read
and split once; `python -m kerastransfer.analysis` and `--mode=analyze` are one driver."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from helpers.cli import REPO, SMOKE, run_cli

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


def test_both_analysis_commands_write_what_mode_all_wrote(smoke_workdir, smoke_copy, tmp_path):
    """The launcher and --mode=analyze run the same driver: on copies of the smoke workdir they
    write the analysis.json, report.md and cka.json that --mode=all wrote."""
    analyze_copy = str(tmp_path / "analyze")
    shutil.copytree(smoke_workdir.workdir, analyze_copy)
    outputs = ("analysis.json", "report.md", "cka.json")
    for workdir in (smoke_copy, analyze_copy):
        for name in outputs:
            os.remove(os.path.join(workdir, name))
    launched = subprocess.run(
        [sys.executable, "-m", "kerastransfer.analysis", smoke_copy],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert launched.returncode == 0, launched.stderr[-2000:]
    done = run_cli("--mode=analyze", f"--workdir={analyze_copy}")
    assert done.returncode == 0, done.stderr[-2000:]
    for name in outputs:
        with open(os.path.join(smoke_workdir.workdir, name)) as f:
            expected = f.read()
        for workdir in (smoke_copy, analyze_copy):
            with open(os.path.join(workdir, name)) as f:
                assert f.read() == expected, os.path.join(workdir, name)
    with open(os.path.join(smoke_copy, "analysis.json")) as f:
        assert json.load(f)["estimators"]["groups"]  # the launcher, too, reads scores.json
