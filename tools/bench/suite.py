"""Row `suite`: the own-model study's advice measured on a suite of target tasks.

One source model, a caffenet_small trained once per suite run (deterministically, in a
child process) on Fashion-MNIST's half A of split random:0, is transferred to each task's
PNG folder through the real command line (configs/transfer_folder.flags), three ways:

  full    the default sweep: every transfer mode and recipe at every n of --layers, 2 seeds
  prune   the same with --prune=2, in its own workdir
  rules   choices that read no data, each trained alone (--treatments, --layers) so that
          its wall time is real: fine-tune everything (AnB+ at the deepest cut), a linear
          probe at the deepest cut, frozen at the middle cut

Every choice is scored by its regret: the points of mean test accuracy (over seeds, in the
run that made the choice) it loses against the task's test-best cell of the full sweep. The
choices: the recommendation (recommendation.json), --prune=2's, each estimator's best-scored
cut (scores.json of the full sweep; ties to the lower n, as --prune ranks) for each mode and
the best of those by validation, and the three rules. Test images never choose: each folder
has its own train/ and test/, the study holds its validation images out of train/, and the
recommendation, --prune and the estimators read train/ only.

Tasks (SUITE; sizes are per class and fixed here, before the suite's first measurement):

  noise      half B, Gaussian noise (sd NOISE_SD grey levels)     100 train/, 200 test/
  blur       half B, Gaussian blur (sd BLUR_SIGMA pixels)         100 train/, 200 test/
  contrast   half B, grey levels squeezed to CONTRAST of range    100 train/, 200 test/
  inverted   half B, 255 - x                                      100 train/, 200 test/
  classes    half B unshifted (a feature-level shift: new classes) 100 train/, 200 test/
  few20      half B unshifted, few images                          20 train/, 200 test/
  digits     scikit-learn's 8x8 digits (10 classes), upsampled     100 train/, the rest test/
             by the study to the source's 28x28

train/ holds what a user has: the study keeps --validation_fraction (0.1) of it for
validation (10 of 100 a class, 2 of 20). The source sees 1,000 images a class of half A for 4
epochs. The full suite is 7 tasks x (62 + up to 38 + 12 networks); about an hour on a 2-core
CPU. QUICK is the same machinery on 2 tiny tasks with 3 modes at n = 1, 3, 5, for development
and the test.

    python -m tools.bench --rows=suite           # the suite, into the JSON and BENCHMARKS.md
    python -m tools.bench --rows=suite --quick   # the quick variant
"""

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile

import numpy as np

from tools.bench import REPO
from tools.bench.machine import timed_subprocess

FLAGFILE = os.path.join(REPO, "configs", "transfer_folder.flags")
# The source model: the default study's base network A of this split (train_source).
SOURCE_SPLIT = "random:0"
# The input-level shifts, in grey levels (0-255) or pixels.
NOISE_SD = 60.0
BLUR_SIGMA = 1.5
CONTRAST = 0.25
# The shifts' random draws (noise) and the few-image tasks' picks come from this seed.
TASK_SEED = 0
# --prune's K in the suite.
PRUNE_K = 2


@dataclasses.dataclass(frozen=True)
class Sizes:
    """A suite's tasks and sizes (images per class) and the flags every command adds."""

    tasks: tuple
    train: int  # train/ images a class of the shift tasks and `classes`
    few: int  # train/ images a class of `few20`
    test: int  # test/ images a class of the Fashion-MNIST tasks
    digits_train: int
    digits_test: int  # 0: every digit not in train/
    source_images: int
    source_epochs: int
    flags: tuple = ()


SUITE = Sizes(
    tasks=("noise", "blur", "contrast", "inverted", "classes", "few20", "digits"),
    train=100,
    few=20,
    test=200,
    digits_train=100,
    digits_test=0,
    source_images=0,
    source_epochs=1,
)
QUICK = Sizes(
    tasks=("noise", "digits"),
    train=20,
    few=10,
    test=30,
    digits_train=20,
    digits_test=30,
    source_images=200,
    source_epochs=2,
    flags=("--layers=1,3,5", "--treatments=transfer,transfer_ft,probe", "--epochs=2"),
)


# ----------------------------------------------------------------------------- the tasks


def shifted(name, images, rng):
    """Half B's uint8 images [N, 28, 28, 1] with task `name`'s input-level shift."""
    from scipy import ndimage  # noqa: PLC0415

    x = images.astype(np.float64)
    if name == "noise":
        x = x + rng.normal(0.0, NOISE_SD, x.shape)
    elif name == "blur":
        x = ndimage.gaussian_filter(x, sigma=(0, BLUR_SIGMA, BLUR_SIGMA, 0))
    elif name == "contrast":
        x = 127.5 + CONTRAST * (x - 127.5)
    elif name == "inverted":
        x = 255.0 - x
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def first_per_class(labels, count):
    """Indices of the first `count` images of each class (all when count is 0), sorted."""
    picked = [np.flatnonzero(labels == c)[: count or None] for c in np.unique(labels)]
    return np.sort(np.concatenate(picked))


def write_pngs(root, images, labels, names):
    """One PNG per image under root/<class name>/."""
    from PIL import Image  # noqa: PLC0415

    for index, (image, label) in enumerate(zip(images, labels)):
        folder = os.path.join(root, names[label])
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(image.squeeze(-1)).save(os.path.join(folder, f"{index:05d}.png"))


def write_task(folder, train, test, names):
    """A task folder in the own-model study's train/ and test/ layout; its image counts."""
    write_pngs(os.path.join(folder, "train"), *train, names)
    write_pngs(os.path.join(folder, "test"), *test, names)
    return {"train_images": len(train[1]), "test_images": len(test[1]), "classes": len(names)}


def train_source(root, sizes):
    """(the source network, its test accuracy on half A): the default study's base network
    A of split random:0 at seed 0 (configs/fashion_mnist.flags: its network and solver),
    trained by the package on `sizes.source_images` images a class (0: all) for
    `sizes.source_epochs` epochs."""
    from kerastransfer import treatments  # noqa: PLC0415
    from kerastransfer.study.study import Study  # noqa: PLC0415
    from tools.bench.experiment import DEFAULT_FLAGFILE, load_experiment  # noqa: PLC0415

    experiment = load_experiment(DEFAULT_FLAGFILE, os.path.join(root, "source-study")).replace(
        splits=(SOURCE_SPLIT,),
        seeds=(0,),
        max_examples_per_class=sizes.source_images,
        epochs=sizes.source_epochs,
    )
    study = Study.load(experiment, log=lambda message: None)
    (spec,) = [s for s in study.runs if treatments.get(s.treatment).is_base and s.target == "A"]
    record = study.train_run(spec, None)
    return study.trained_network(record), record["test_accuracy"]


def make_tasks(root, sizes):
    """Writes the source model (root/source.keras, its test accuracy in root/source.json)
    and every task's folder (root/<task>);
    returns {task: its image counts}. Runs in a child process (`make` below): the source
    trains with TensorFlow's deterministic kernels."""
    import tensorflow as tf  # noqa: PLC0415
    from sklearn.datasets import load_digits  # noqa: PLC0415

    from kerastransfer import data  # noqa: PLC0415

    source = data.load_source("fashion_mnist")
    split = data.make_split(SOURCE_SPLIT, source.class_names, "fashion_mnist")
    train_x, train_y = source.arrays("train")
    test_x, test_y = source.arrays("test")

    def half(images, labels, which, count):
        classes = np.array(split.classes(which))
        keep = np.isin(labels, classes)
        images, labels = images[keep], np.searchsorted(classes, labels[keep])
        chosen = first_per_class(labels, count)
        return images[chosen], labels[chosen]

    tf.config.experimental.enable_op_determinism()
    net, accuracy = train_source(root, sizes)
    net.save(os.path.join(root, "source.keras"))
    with open(os.path.join(root, "source.json"), "w") as f:
        json.dump({"test_accuracy": accuracy}, f)

    names = [name.replace("/", "-") for name in split.half_names("B")]
    b_test = half(test_x, test_y, "B", sizes.test)
    made = {}
    for task in sizes.tasks:
        folder = os.path.join(root, task)
        if task == "digits":
            digits = load_digits()
            images = np.rint(digits.images * 255 / 16).astype(np.uint8)[..., None]
            train = first_per_class(digits.target, sizes.digits_train)
            rest = np.setdiff1d(np.arange(len(digits.target)), train)
            test = rest[first_per_class(digits.target[rest], sizes.digits_test)]
            made[task] = write_task(
                folder,
                (images[train], digits.target[train]),
                (images[test], digits.target[test]),
                [str(c) for c in range(10)],
            )
            continue
        count = sizes.few if task == "few20" else sizes.train
        b_train = half(train_x, train_y, "B", count)
        rng = np.random.default_rng(TASK_SEED)
        made[task] = write_task(
            folder,
            (shifted(task, b_train[0], rng), b_train[1]),
            (shifted(task, b_test[0], rng), b_test[1]),
            names,
        )
    return made


# ------------------------------------------------------------------------- the commands


def command(source, folder, workdir, sizes, *flags):
    """The own-model study's command line for one task."""
    return [
        sys.executable,
        "-m",
        "kerastransfer.run",
        f"--flagfile={FLAGFILE}",
        f"--source_model={source}",
        f"--image_dir={folder}",
        f"--workdir={workdir}",
        *sizes.flags,
        *flags,
    ]


def rule_commands(layers):
    """{rule: (treatment, n)} of the rules that read no data, on the cut points `layers`."""
    from kerastransfer import treatments  # noqa: PLC0415

    (fine_tuned,) = (t for t in treatments.FROM_OTHER_HALF if treatments.get(t).plain_fine_tuning)
    (frozen,) = (t for t in treatments.FROM_OTHER_HALF if treatments.get(t).frozen)
    deepest, middle = layers[-1], layers[(len(layers) - 1) // 2]
    return {
        "fine-tune everything": (fine_tuned, deepest),
        "linear probe, deepest cut": ("probe", deepest),
        "frozen, middle cut": (frozen, middle),
    }


def layers_of(sizes):
    """The cut points the suite's commands train: --layers of the flags, else the flagfile's."""
    for flag in (*sizes.flags, *open(FLAGFILE).read().split()):
        if flag.startswith("--layers="):
            return [int(n) for n in flag.split("=", 1)[1].split(",")]
    raise ValueError(f"{FLAGFILE} sets no --layers")


def read_workdir(workdir):
    """What the table reads of a finished workdir: its run records (the fields below), its
    recommendation.json's choice and examples, and scores.json."""
    with open(os.path.join(workdir, "results.jsonl")) as f:
        latest = {}
        for line in f:
            if line.strip():
                record = json.loads(line)
                latest[record["run"]] = record
    fields = ("treatment", "n", "seed", "status", "final_val", "test_accuracy", "train_seconds")
    records = [{k: r.get(k) for k in fields} for r in latest.values()]
    with open(os.path.join(workdir, "recommendation.json")) as f:
        recommendation = json.load(f)
    scores_path = os.path.join(workdir, "scores.json")
    scores = None
    if os.path.exists(scores_path):
        with open(scores_path) as f:
            stored = json.load(f)
        scores = {
            "seconds": stored.get("seconds"),
            "entries": [
                {"n": e["n"], "scores": e["scores"]}
                for e in stored["entries"]
                if e["source_run"] == "source model"
            ],
            "prune": stored.get("prune"),
        }
    return {
        "records": records,
        "choice": recommendation["choice"],
        "examples": recommendation["examples"],
        "scores": scores,
    }


def run_task(task, folder, source, sizes, scratch, log):
    """Runs the full sweep, --prune and the rules on one task's folder; each command's wall
    time and peak memory, with what read_workdir reads of its workdir."""
    layers = layers_of(sizes)
    runs = {"full": (), "prune": (f"--prune={PRUNE_K}",)}
    for rule, (treatment, n) in rule_commands(layers).items():
        runs[rule] = (f"--treatments={treatment}", f"--layers={n}")
    measured = {}
    for name, flags in runs.items():
        workdir = os.path.join(scratch, "work", task, name.replace(" ", "_").replace(",", ""))
        wall, _, peak = timed_subprocess(command(source, folder, workdir, sizes, *flags), log)
        measured[name] = {"flags": list(flags), "wall_seconds": wall, "peak_rss_bytes": peak}
        measured[name].update(read_workdir(workdir))
        log(f"  {task} {name}: {wall:.0f} s")
    return measured


# -------------------------------------------------------------------------- the table


def cells(records):
    """{(treatment, n): {"validation", "test", "seeds", "train_seconds"}} of the transfers
    that finished, means over seeds (validation: the delivered weights' final_val)."""
    found = {}
    for r in records:
        if r["status"] == "ok" and r["n"]:
            found.setdefault((r["treatment"], r["n"]), []).append(r)
    return {
        key: {
            "validation": float(np.mean([r["final_val"] for r in runs])),
            "test": float(np.mean([r["test_accuracy"] for r in runs])),
            "seeds": len(runs),
            "train_seconds": float(sum(r["train_seconds"] or 0.0 for r in runs)),
        }
        for key, runs in found.items()
    }


def best_by(found, metric, keys=None):
    """The key of `found` (cells) with the best `metric`, over `keys` (default all): ties go to
    the first in the treatments table's order, then the lower n (the recommendation's order)."""
    from kerastransfer import treatments  # noqa: PLC0415

    order = {name: i for i, name in enumerate(treatments.TRANSFER_MODES)}
    keys = sorted(keys if keys is not None else found, key=lambda k: (order[k[0]], k[1]))
    return max(keys, key=lambda k: found[k][metric])


def estimator_picks(scores, found):
    """{estimator: n} of the cut each estimator scores best (ties: the lower n; n/a last),
    among the n the full sweep trained; none for an estimator that gives every n the same
    score (LEEP reads the source head, the same at every cut)."""
    trained = sorted({n for _, n in found})
    picks = {}
    names = list(scores["entries"][0]["scores"]) if scores and scores["entries"] else []
    for name in names:
        by_n = {e["n"]: e["scores"].get(name) for e in scores["entries"] if e["n"] in trained}
        known = {n: v for n, v in by_n.items() if v is not None}
        if len(set(known.values())) > 1:
            picks[name] = min(known, key=lambda n: (-known[n], n))
    return picks


def task_choices(measured):
    """{choice: {"treatment", "n", "test", "regret", "seconds", "timed"}} of one task, each
    choice's regret (points) against the full sweep's test-best cell; also the reference."""
    from kerastransfer import treatments  # noqa: PLC0415

    full = cells(measured["full"]["records"])
    reference = best_by(full, "test")
    top = full[reference]["test"]
    choices = {}

    def add(name, key, found, seconds, timed):
        choices[name] = {
            "treatment": key[0],
            "n": key[1],
            "test": found[key]["test"],
            "validation": found[key]["validation"],
            "regret": 100.0 * (top - found[key]["test"]),
            "seconds": seconds,
            "timed": timed,
        }

    def chosen(run):
        choice = measured[run]["choice"]
        return choice["treatment"], choice["n"]

    add("recommendation", chosen("full"), full, measured["full"]["wall_seconds"], "wall")
    pruned = cells(measured["prune"]["records"])
    add(f"--prune={PRUNE_K}", chosen("prune"), pruned, measured["prune"]["wall_seconds"], "wall")
    record = (measured["prune"]["scores"] or {}).get("prune") or {}
    if (record.get("bootstrap") or {}).get("extra") is not None:
        # What --prune would have chosen without the bootstrap's extra cut point.
        top_k = set(record["ranking"][: record["k"]])
        without = best_by(pruned, "validation", [key for key in pruned if key[1] in top_k])
        add(f"--prune={PRUNE_K} without the extra cut", without, pruned, None, "")
    else:
        add(f"--prune={PRUNE_K} without the extra cut", chosen("prune"), pruned, None, "")
    plain = [k for k in full if k[0] in treatments.FROM_OTHER_HALF]
    if plain:
        add("rule on freeze/fine-tune only", best_by(full, "validation", plain), full, None, "")
    for rule in rule_commands(sorted({n for _, n in full})):
        made = cells(measured[rule]["records"])
        (key,) = made
        add(rule, key, made, measured[rule]["wall_seconds"], "wall")
    scores = measured["full"]["scores"]
    for estimator, n in estimator_picks(scores, full).items():
        at_n = [k for k in full if k[1] == n]
        for key in at_n:
            spent = scores["seconds"] + full[key]["train_seconds"]
            add(f"{estimator}: {key[0]}", key, full, spent, "scoring + training")
        spent = scores["seconds"] + sum(full[k]["train_seconds"] for k in at_n)
        best = best_by(full, "validation", at_n)
        add(f"{estimator}: best by validation", best, full, spent, "scoring + training")
    plain_best = best_by(full, "test", plain) if plain else None
    return {
        "reference": {"treatment": reference[0], "n": reference[1], "test": top},
        "choices": choices,
        "over_plain": None
        if plain_best is None
        else {
            "treatment": plain_best[0],
            "n": plain_best[1],
            "test": full[plain_best]["test"],
            "points": 100.0 * (choices["recommendation"]["test"] - full[plain_best]["test"]),
        },
    }


def interval(values, confidence=0.95):
    """{"mean", "ci", "count"}: the mean of `values` and its Student t-interval (None for
    fewer than 2 values or no spread)."""
    from scipy import stats  # noqa: PLC0415

    values = np.asarray(values, dtype=float)
    mean = float(values.mean()) if len(values) else None
    ci = None
    if len(values) >= 2 and values.std(ddof=1) > 0:
        low, high = stats.t.interval(confidence, len(values) - 1, loc=mean, scale=stats.sem(values))
        ci = [float(low), float(high)]
    return {"mean": mean, "ci": ci, "count": int(len(values))}


def summary(per_task):
    """Per choice over the tasks where it was made: its mean regret with a 95% t-interval, the
    paired difference from the recommendation's regret with its paired 95% t-interval, and
    its mean seconds; the recommendation against the best plain freeze/fine-tune cell."""
    names = list(next(iter(per_task.values()))["choices"])
    for task in per_task.values():
        names += [name for name in task["choices"] if name not in names]
    table = {}
    for name in names:
        tasks = [t for t in per_task.values() if name in t["choices"]]
        regrets = [t["choices"][name]["regret"] for t in tasks]
        paired = [r - t["choices"]["recommendation"]["regret"] for r, t in zip(regrets, tasks)]
        seconds = [t["choices"][name]["seconds"] for t in tasks]
        table[name] = {
            "regret": interval(regrets),
            "minus_recommendation": interval(paired),
            "seconds": None if None in seconds else float(np.mean(seconds)),
            "timed": tasks[0]["choices"][name]["timed"],
        }
    plain = [t["over_plain"]["points"] for t in per_task.values() if t["over_plain"]]
    return {"choices": table, "over_plain": interval(plain)}


def pruning_cost(measured):
    """Per task: --prune's wall time as a share of the full sweep's, and where its time went
    (training the transfers, the baseline, scoring, the bootstrap, the rest)."""
    prune, full = measured["prune"], measured["full"]
    record = prune["scores"]["prune"] if prune["scores"] else None
    bootstrap = (record or {}).get("bootstrap") or {}
    trained = [r for r in prune["records"] if r["status"] == "ok"]
    transfers = sum(r["train_seconds"] or 0.0 for r in trained if r["n"])
    baseline = sum(r["train_seconds"] or 0.0 for r in trained if not r["n"])
    scoring = (record or {}).get("scoring_seconds") or 0.0
    resampling = bootstrap.get("seconds") or 0.0
    return {
        "share": prune["wall_seconds"] / full["wall_seconds"],
        "trained": None if record is None else record["trained"],
        "held": bootstrap.get("held"),
        "networks": len(trained),
        "full_networks": sum(r["status"] == "ok" for r in full["records"]),
        "seconds": {
            "wall": prune["wall_seconds"],
            "training transfers": transfers,
            "training the baseline": baseline,
            "scoring": scoring,
            "bootstrap": resampling,
            "the rest": prune["wall_seconds"] - transfers - baseline - scoring - resampling,
        },
    }


# ---------------------------------------------------------------------------------- row


def suite_row(quick=False, log=print, sizes=None, keep=None):
    """The row: makes the tasks, runs every task's commands, then the table. `sizes` (default
    SUITE, QUICK when quick) overrides both; `keep`, a folder, keeps the tasks and workdirs."""
    sizes = sizes or (QUICK if quick else SUITE)
    scratch = keep or tempfile.mkdtemp(prefix="kt-benchmark-suite-")
    try:
        log(f"suite: the source model and {len(sizes.tasks)} tasks")
        made_wall, _, _ = timed_subprocess(
            [
                sys.executable,
                "-m",
                "tools.bench.suite",
                f"--out={scratch}",
                f"--sizes={json.dumps(dataclasses.asdict(sizes))}",
            ],
            log,
        )
        with open(os.path.join(scratch, "tasks.json")) as f:
            made = json.load(f)
        source = os.path.join(scratch, "source.keras")
        with open(os.path.join(scratch, "source.json")) as f:
            source_accuracy = json.load(f)["test_accuracy"]
        per_task = {}
        for task in sizes.tasks:
            log(f"suite task {task}")
            measured = run_task(task, os.path.join(scratch, task), source, sizes, scratch, log)
            per_task[task] = {
                **made[task],
                "examples": measured["full"]["examples"],
                "wall_seconds": {name: m["wall_seconds"] for name, m in measured.items()},
                "peak_rss_bytes": max(m["peak_rss_bytes"] for m in measured.values()),
                "cells": {
                    f"{t} n={n}": cell
                    for (t, n), cell in cells(measured["full"]["records"]).items()
                },
                "pruning": pruning_cost(measured),
                **task_choices(measured),
            }
        return {
            "sizes": dataclasses.asdict(sizes),
            "quick": sizes == QUICK,
            "prune_k": PRUNE_K,
            "shifts": {"noise_sd": NOISE_SD, "blur_sigma": BLUR_SIGMA, "contrast": CONTRAST},
            "setup_seconds": made_wall,
            "source_test_accuracy": source_accuracy,
            "tasks": per_task,
            "summary": summary(per_task),
        }
    finally:
        if keep is None:
            shutil.rmtree(scratch, ignore_errors=True)


def main(argv=None):
    """The suite's child process: writes the source model and the tasks into --out."""
    parser = argparse.ArgumentParser(prog="python -m tools.bench.suite", description=main.__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("--sizes", required=True, help="a Sizes as JSON")
    args = parser.parse_args(argv)
    sizes = json.loads(args.sizes)
    sizes = Sizes(**{k: tuple(v) if isinstance(v, list) else v for k, v in sizes.items()})
    made = make_tasks(args.out, sizes)
    with open(os.path.join(args.out, "tasks.json"), "w") as f:
        json.dump(made, f)


if __name__ == "__main__":
    main()
