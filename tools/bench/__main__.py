"""How fast kerastransfer trains, against plain Keras, PyTorch and the machine's own limit.

The command line of the benchmark (tools/bench/__init__.py lists its rows): measures the rows
asked for, prints the table, writes the JSON and, with --write_md, renders it (report.py).

Usage, from the repository root:
    python -m tools.bench --quick                   # rows 1-6, a few minutes
    python -m tools.bench --studies_only            # rows 1-2, 7, 7b and 8
    python -m tools.bench --rows=7,7b,8 --flagfile=configs/smoke.flags   # rows 1-2 and these
    python -m tools.bench --rows=7,7L,epochs        # the default, 4x as long, base epochs
    python -m tools.bench --rows=suite --quick      # rows 1-2 and the quick task suite
    python -m tools.bench --write_md=BENCHMARKS.md  # all rows and levers; rewrites it
"""

import argparse
import datetime
import os
import platform
import shutil
import sys
import tempfile

from tools.bench import REPO, report
from tools.bench.by_hand import by_hand_row
from tools.bench.epochs import epochs_row
from tools.bench.experiment import DEFAULT_FLAGFILE, LONG_FLAGFILE, make_setup
from tools.bench.frozen import FROZEN_N, frozen_runs
from tools.bench.machine import cpu_model, other_load, peak_gflops, torch_version
from tools.bench.study import precision_change, study_row
from tools.bench.suite import suite_row
from tools.bench.trainers import compare_levers, compare_trainers, packing_lever

# What --rows may name (rows 1-2 are always measured: the others' ratios read them). Rows 3-5
# run together, in turn; 7b needs 7 (it is judged against it) and a CPU with bfloat16; 7L is
# the longer flagfile (configs/fashion_mnist_long.flags); epochs trains the first split's
# bases for 1 to 16 epochs; packing trains networks side by side in one graph; `suite` is the
# own-model study's advice on a suite of tasks (suite.py; --quick: its tiny variant).
ROWS = ("3-5", "6", "levers", "packing", "7", "7b", "7L", "epochs", "8", "suite")
QUICK_ROWS = ("3-5", "6")
STUDY_ROWS = ("7", "7b", "8")


def run_benchmark(
    rows=ROWS,
    quick=False,
    flagfile=DEFAULT_FLAGFILE,
    long_flagfile=LONG_FLAGFILE,
    steps=None,
    repeats=None,
    log=print,
):
    """Measures rows 1-2, then those of `rows` (names from ROWS), in ROWS's order; `quick`
    takes fewer steps and rounds."""
    import keras  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    from kerastransfer import flops  # noqa: PLC0415
    from kerastransfer.training import strategies  # noqa: PLC0415

    steps = steps or (75 if quick else 225)
    repeats = repeats or (2 if quick else 3)
    rows = set(rows)
    results = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(["python", "-m", "tools.bench", *sys.argv[1:]]),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "torch": torch_version(),
        "flagfile": os.path.relpath(flagfile, REPO),
        "steps": steps,
        "repeats": repeats,
        "load_before": other_load(),
    }
    workdir = tempfile.mkdtemp(prefix="kt-benchmark-")
    try:
        log("row 1: float32 matmul peak")
        results["peak_gflops"] = peak_gflops(repeats=12 if quick else 20)
        setup = make_setup(flagfile, workdir)
        e = setup.experiment
        model = setup.build()
        results["model"] = {
            "arch": e.model.arch,
            "widths": list(e.model.widths),
            "batch_size": e.solver.batch_size,
            "input": list(model.input.shape[1:]),
            "params": model.count_params(),
            "half_train_images": len(setup.half.train_y),
            "half_val_images": len(setup.half.val_y),
        }
        results["flops_per_image"] = {
            "forward": flops.forward_flops(model),
            "training": flops.training_flops(model),
        }
        log(f"row 2: {results['flops_per_image']['training'] / 1e6:.1f} MFLOP per training image")
        if "3-5" in rows:
            log(f"rows 3-5: {steps} steps, {repeats} rounds")
            results["trainers"], results["notes"] = compare_trainers(setup, steps, repeats, log)
        if "6" in rows:
            log("row 6: frozen runs with and without caching")
            results["frozen"] = frozen_runs(setup, FROZEN_N, 1 if quick else 3, log)
        results["load_after_rows_1_6"] = other_load()
        if "packing" in rows:
            log("packing: networks alone and side by side in one graph")
            results["packing"] = packing_lever(setup, max(2, repeats - 1), log)
        if "levers" in rows:
            log("levers: row 5b with one change each")
            results["levers"] = compare_levers(setup, steps, max(2, repeats - 1), log)
        if rows & {"7", "7b", "7L", "8"}:
            log("row 1 again (the best of both measurements counts)")
            results["peak_gflops"] = max(results["peak_gflops"], peak_gflops())
        if "7" in rows:
            log("row 7: the default study")
            results["study"] = study_row(flagfile, results["peak_gflops"], log)
            results["load_after_row_7"] = other_load()
            if "7b" in rows and strategies.cpu_has_bfloat16():
                kind = strategies.cpu_bfloat16_kind()
                log(f"row 7b: the default study in mixed_bfloat16 ({kind} here)")
                results["study_bfloat16"] = study_row(
                    flagfile, results["peak_gflops"], log, "--mixed_precision=mixed_bfloat16"
                )
                results["precision_change"] = {
                    **precision_change(results["study_bfloat16"], results["study"]),
                    "cpu_kind": kind,
                    "declared": strategies.BFLOAT16_VERDICTS[kind],
                }
        if "7L" in rows:
            log("row 7L: the default study, every network trained 4x as long")
            results["study_long"] = {
                **study_row(long_flagfile, results["peak_gflops"], log),
                "flagfile": os.path.relpath(long_flagfile, REPO),
            }
            results["load_after_row_7L"] = other_load()
        if "epochs" in rows:
            log("row epochs: the first split's base networks at 1 to 16 epochs")
            results["epochs"] = epochs_row(flagfile, log)
        if "8" in rows:
            log("row 8: the first split through kerastransfer, then by hand")
            results["by_hand"] = by_hand_row(flagfile, log)
            results["load_after_row_8"] = other_load()
        if "suite" in rows:
            log("row suite: the own-model study's advice on a suite of tasks")
            results["suite"] = suite_row(quick=quick, log=log)
            results["load_after_suite"] = other_load()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["targets"] = report.targets(results)
    return results


def row_list(text):
    """--rows's value: names of ROWS, comma-separated."""
    rows = [row.strip() for row in text.split(",") if row.strip()]
    unknown = sorted(set(rows) - set(ROWS))
    if unknown:
        raise argparse.ArgumentTypeError(f"{', '.join(unknown)}: not one of {', '.join(ROWS)}")
    if "7b" in rows and "7" not in rows:
        raise argparse.ArgumentTypeError("row 7b is judged against row 7: name 7 too")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="rows 1-6 only (or --rows), fewer rounds"
    )
    parser.add_argument("--flagfile", default=DEFAULT_FLAGFILE, help="the study to measure")
    parser.add_argument(
        "--long_flagfile", default=LONG_FLAGFILE, help="row 7L's study (the default, longer)"
    )
    parser.add_argument("--steps", type=int, help="steps per round of rows 3-5")
    parser.add_argument("--repeats", type=int, help="rounds of rows 3-5")
    parser.add_argument("--json", default="benchmark.json", help="where the results go")
    parser.add_argument("--write_md", help="rewrite this BENCHMARKS.md from the results")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--studies_only",
        action="store_true",
        help="rows 1-2, 7 and 8 only: the whole study and the hand-written grid",
    )
    which.add_argument(
        "--rows",
        type=row_list,
        help=f"rows 1-2 and these, comma-separated, of {','.join(ROWS)} (e.g. 7,7b,8)",
    )
    args = parser.parse_args(argv)
    from kerastransfer.workdir import files  # noqa: PLC0415

    rows = args.rows or (STUDY_ROWS if args.studies_only else QUICK_ROWS if args.quick else ROWS)
    results = run_benchmark(
        rows=rows,
        quick=args.quick,
        flagfile=os.path.abspath(args.flagfile),
        long_flagfile=os.path.abspath(args.long_flagfile),
        steps=args.steps,
        repeats=args.repeats,
        log=lambda message: print(message, flush=True),
    )
    print()
    report.print_table(results)
    files.write_json(args.json, results)
    print(f"\nresults: {args.json}")
    if args.write_md:
        report.main([args.json, args.write_md])  # renders the JSON just written, as re-read


if __name__ == "__main__":
    main()
