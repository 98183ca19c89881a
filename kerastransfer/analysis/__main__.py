"""Command line of the analysis: a workdir's results, or the paper's own networks.

    python -m kerastransfer.analysis WORKDIR          # WORKDIR/results.jsonl -> all outputs
    python -m kerastransfer.analysis --paper OUT_DIR  # the same from the paper's published networks

A launcher: it replaces itself with `python -m kerastransfer.run --mode=analyze`, the same
driver (app/analyze.py) with these options as its flags, so both commands write the same
analysis.json and report.md. It starts a process rather than importing the driver, which sits
above this package. Any other --flag goes to the driver as it is, e.g. --reference=yosinski2014
to overlay the paper's numbers (the driver's default, --reference=none, does not).
"""

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from kerastransfer.analysis.records import PAPER_CSV


def driver_argv(argv: Sequence[str]) -> list[str]:
    """The `python -m kerastransfer.run --mode=analyze` command line that does what this
    command line (`argv`, without the program name) asks."""
    parser = argparse.ArgumentParser(
        prog="python -m kerastransfer.analysis",
        description="Analyze a workdir's results (python -m kerastransfer.run --mode=analyze).",
        epilog="Other --flags go to python -m kerastransfer.run as they are.",
    )
    parser.add_argument(
        "workdir",
        help="run directory with results.jsonl (and config.json); "
        "with --paper, where to write the paper's analysis",
    )
    parser.add_argument(
        "--paper",
        action="store_true",
        help="analyze the paper's published networks (shipped CSV) instead",
    )
    parser.add_argument(
        "--no-reference",
        action="store_true",
        help="do not compare with or overlay the paper's numbers (the default)",
    )
    args, flags = parser.parse_known_args(argv)
    command = [sys.executable, "-m", "kerastransfer.run", "--mode=analyze"]
    command.append(f"--workdir={args.workdir}")
    if args.paper:
        command.append(f"--results={PAPER_CSV}")
    if args.no_reference:
        command.append("--reference=none")
    return command + flags


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Runs the analyze driver in this process's place; never returns."""
    command = driver_argv(sys.argv[1:] if argv is None else argv)
    sys.stdout.flush()
    os.execv(sys.executable, command)


if __name__ == "__main__":
    main()
