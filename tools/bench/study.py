"""Row 7: the default study in a subprocess, timed against its FLOP floor; 7b: the same in
mixed_bfloat16, and the precision test of its networks against row 7's."""

import json
import os
import shutil
import sys
import tempfile

from kerastransfer import treatments
from tools.bench.experiment import load_experiment
from tools.bench.machine import timed_subprocess


def run_study(flagfile, workdir, log, *flags):
    """Runs the study (with `flags` added) in a subprocess; wall seconds, its peak RSS
    (bytes) and its stdout."""
    wall, stdout, peak = timed_subprocess(
        [
            sys.executable,
            "-m",
            "kerastransfer.run",
            f"--flagfile={flagfile}",
            f"--workdir={workdir}",
            *flags,
        ],
        log,
    )
    return wall, peak, stdout


def study_floor(flagfile, workdir, records):
    """Training FLOPs of every finished run of a study.

    Bases and fine-tuned runs train every layer each step. Frozen runs (selffer, transfer,
    random) compute their frozen prefix once per training image, as caching does, and the
    layers above it each step.
    """
    from kerastransfer import surgery  # noqa: PLC0415
    from kerastransfer.flops import forward_flops, training_flops  # noqa: PLC0415
    from kerastransfer.study.study import Study  # noqa: PLC0415
    from kerastransfer.training import caching  # noqa: PLC0415

    study = Study.load(load_experiment(flagfile, workdir), log=lambda m: None)
    total = 0.0
    for record in records:
        if record["status"] != "ok":
            continue
        model = study.build_model(record["num_classes"])
        images = record["steps"] * study.experiment.solver.batch_size
        if treatments.get(record["treatment"]).frozen:
            model = surgery.transfer(model, record["n"], "frozen")
            layer = caching.cache_layer(model, record["n"])
            examples = len(study.halves.half(record["split"], record["target"]).train_y)
            total += examples * forward_flops(model, layer)
            total += images * training_flops(model, after=layer)
        else:
            total += images * training_flops(model)
    return total


# What the precision test reads of a study's records: the pairing, test accuracy, chance
# (num_classes), findings.
RECORD_FIELDS = (
    "run",
    "treatment",
    "split",
    "source",
    "target",
    "n",
    "seed",
    "status",
    "best_k",
    "final_val",
    "test_accuracy",
    "num_classes",
)


def study_row(flagfile, peak, log, *flags):
    """Row 7: the default study (with `flags` added), timed, with its FLOP floor, its
    precision, its bases' test accuracies on random:0 and its records (RECORD_FIELDS)."""
    workdir = tempfile.mkdtemp(prefix="kt-benchmark-study-")
    try:
        wall, rss, stdout = run_study(flagfile, workdir, log, *flags)
        with open(os.path.join(workdir, "results.jsonl")) as f:
            records = [json.loads(line) for line in f if line.strip()]
        floor = study_floor(flagfile, workdir, records) / (peak * 1e9)
        bases = {
            f"{r['target']} seed {r['seed']}": r["test_accuracy"]
            for r in records
            if treatments.get(r["treatment"]).is_base and r["split"] == "random0"
        }
        with open(os.path.join(workdir, "analysis.json")) as f:
            analysis = json.load(f)
        return {
            "flags": list(flags),
            "wall_seconds": wall,
            "floor_seconds": floor,
            "ratio": wall / floor,
            "peak_rss_bytes": rss,
            "networks": len(records),
            "ok": sum(r["status"] == "ok" for r in records),
            "precision": precisions(records),
            "train_seconds": sum(r.get("train_seconds", 0.0) for r in records),
            "cache_seconds": sum(r.get("cache_seconds", 0.0) for r in records),
            "base_accuracy": bases,
            "base_accuracy_mean": sum(bases.values()) / max(len(bases), 1),
            "records": [{name: r.get(name) for name in RECORD_FIELDS} for r in records],
            "findings": [findings_summary(f) for f in analysis["findings"]],
            "base_convergence": analysis["base_convergence"],
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def findings_summary(finding):
    """What a study's finding decided: its status, effect, CI and base networks, what it was
    compared with (and why), and the comparison kept beside it."""

    def measured(entry):
        return {key: entry[key] for key in ("status", "effect", "ci", "units", "comparison")}

    beside = finding.get("beside")
    return {
        "finding": finding["finding"],
        "name": finding["name"],
        **measured(finding),
        "reference_units": finding["reference_units"],
        "parts": [measured(part) for part in finding.get("parts", [])],
        "basis": finding.get("basis"),
        "beside": measured(beside) if beside else None,
    }


def precisions(records):
    """The dtype policies the finished runs trained in, sorted."""
    return sorted({r["dtype_policy"] for r in records if r["status"] == "ok"})


def mean_by_treatment(records):
    """Mean test accuracy of the finished runs, per treatment."""
    accuracies = {}
    for record in records:
        if record["status"] == "ok":
            accuracies.setdefault(record["treatment"], []).append(record["test_accuracy"])
    return {name: sum(values) / len(values) for name, values in accuracies.items()}


def precision_change(study, float32):
    """What a precision did against the same study in float32: the precision test of their
    networks (kerastransfer.analysis.precision_test), the speed-up and float32's peak memory."""
    from kerastransfer.analysis.precision_test import precision_test  # noqa: PLC0415

    return {
        "test": precision_test(study["records"], float32["records"]),
        "speedup": float32["wall_seconds"] / study["wall_seconds"],
        "float32_peak_rss_bytes": float32["peak_rss_bytes"],
    }
