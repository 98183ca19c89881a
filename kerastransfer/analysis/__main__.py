"""Command line of the analysis: a workdir's results, or the paper's own networks.

    python -m kerastransfer.analysis WORKDIR          # WORKDIR/results.jsonl -> all outputs
    python -m kerastransfer.analysis --paper OUT_DIR  # the same from the paper's published networks

The entry point, not a library module: it may import kerastransfer.reporting to write the
outputs, which the rest of the package may not.
"""

import argparse
import json
import os
import shlex
import sys

from kerastransfer import analysis, reporting
from kerastransfer.errors import UsageError
from kerastransfer.workdir.results import read_results


def main(argv=None):
    """Command line: analyze a workdir, or the paper's own networks with --paper."""
    parser = argparse.ArgumentParser(
        prog="python -m kerastransfer.analysis", description=analysis.__doc__.split("\n\n")[0]
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
        help="do not compare with or overlay the paper's numbers",
    )
    args = parser.parse_args(argv)
    command = shlex.join(
        ["python", "-m", "kerastransfer.analysis", *(sys.argv[1:] if argv is None else argv)]
    )
    try:
        if args.paper:
            paths = reporting.write_analysis(
                args.workdir,
                analysis.load_paper_csv(),
                command=command,
                source_label="Yosinski et al. 2014, published networks",
            )
        else:
            config_path = os.path.join(args.workdir, "config.json")
            config = None
            if os.path.isfile(config_path):
                with open(config_path, encoding="utf-8") as f:
                    config = json.load(f)
            reference = None if args.no_reference else analysis.load_paper_csv()
            paths = reporting.write_analysis(
                args.workdir,
                read_results(os.path.join(args.workdir, "results.jsonl")),
                config=config,
                reference=reference,
                command=command,
            )
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with open(paths[0], encoding="utf-8") as f:
        for finding in json.load(f)["findings"]:
            print(f"finding {finding['finding']} ({finding['name']}): {finding['status']}")
    print("wrote " + ", ".join(paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
