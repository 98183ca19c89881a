"""Row 8: the study's first split through kerastransfer against the same networks trained
by hand, each in a subprocess. Run as `python -m tools.bench.by_hand --flagfile=F --json=J`,
it is row 8's by-hand child: it trains the split by hand and writes J."""

import argparse
import json
import os
import shutil
import sys
import tempfile

from tools.bench.experiment import load_experiment, make_setup
from tools.bench.machine import timed_subprocess
from tools.bench.study import mean_by_treatment, precisions, run_study


def grid_by_hand(flagfile, workdir):
    """Row 8's baseline: the first split's networks (the study's treatments and layers, one
    seed, A->B) trained the way the Keras transfer-learning guide suggests, in the loop a
    user writes: build, `set_weights` on the copied layers, `trainable = False` on the
    frozen ones, `compile`, `fit` on numpy arrays, `evaluate` on the test images. Only the
    architecture and the data come from kerastransfer. Returns mean test accuracy per
    treatment and the number of networks."""
    import keras  # noqa: PLC0415

    from kerastransfer import surgery  # noqa: PLC0415

    setup = make_setup(flagfile, workdir)
    e, study = setup.experiment, setup.study
    split = next(iter(study.splits))
    arrays = {}
    for name in ("A", "B"):
        half = study.halves.half(split, name)
        prep = study.preprocessing.eval_tf
        arrays[name] = (
            prep(half.train_x).numpy(),
            half.train_y,
            prep(half.test_x).numpy(),
            half.test_y,
        )

    def train(model, half):
        x, y, test_x, test_y = arrays[half]
        steps = -(-len(y) * int(e.solver.epochs) // e.solver.batch_size)
        decay = e.solver.lr_decay_steps or max(1, round(steps * 100 / 450))
        boundaries = list(range(decay, steps, decay))
        rates = [e.solver.learning_rate * 0.1**i for i in range(len(boundaries) + 1)]
        schedule = keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, rates)
        model.compile(
            optimizer=keras.optimizers.SGD(schedule, momentum=e.solver.momentum),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        model.fit(x, y, batch_size=e.solver.batch_size, epochs=int(e.solver.epochs), verbose=0)
        return model.evaluate(test_x, test_y, batch_size=512, verbose=0)[1]

    def build(half):
        return study.build_model(study.halves.half(split, half).num_classes)

    accuracy, bases = {}, {}
    for half in ("A", "B"):
        keras.utils.set_random_seed(0)
        bases[half] = build(half)
        accuracy.setdefault("base", []).append(train(bases[half], half))
    for n in e.grid.layers:
        for treatment in e.treatments:
            keras.utils.set_random_seed(n)
            model = build("B")
            source = {"selffer": "B", "selffer_ft": "B", "transfer": "A", "transfer_ft": "A"}
            for layer in surgery.block_layers(model, n):
                if treatment in source:
                    layer.set_weights(bases[source[treatment]].get_layer(layer.name).get_weights())
                layer.trainable = treatment.endswith("_ft")
            accuracy.setdefault(treatment, []).append(train(model, "B"))
    return {
        "networks": sum(len(values) for values in accuracy.values()),
        "mean_test_accuracy": {name: sum(v) / len(v) for name, v in accuracy.items()},
    }


def by_hand_row(flagfile, log):
    """Row 8: the first split of the study through kerastransfer (`--mode=all`: its analysis
    and export included), then the same networks by hand (`grid_by_hand`), each in its own
    subprocess from start-up to exit, one after the other."""
    workdir = tempfile.mkdtemp(prefix="kt-benchmark-grid-")
    try:
        experiment = load_experiment(flagfile, workdir)
        split, seed = experiment.data.splits[0], experiment.grid.seeds[0]
        ours, _, _ = run_study(
            flagfile,
            os.path.join(workdir, "study"),
            log,
            f"--splits={split}",
            "--directions=AB",
            f"--seeds={seed}",
        )
        with open(os.path.join(workdir, "study", "results.jsonl")) as f:
            records = [json.loads(line) for line in f if line.strip()]
        hand, stdout, _ = timed_subprocess(
            [
                sys.executable,
                "-m",
                "tools.bench.by_hand",
                f"--flagfile={flagfile}",
                f"--json={os.path.join(workdir, 'by_hand.json')}",
            ],
            log,
        )
        with open(os.path.join(workdir, "by_hand.json")) as f:
            by_hand = json.load(f)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "split": split,
        "networks": len(records),
        "package_seconds": ours,
        "by_hand_seconds": hand,
        "by_hand_networks": by_hand["networks"],
        "ratio": hand / ours,
        "package_accuracy": mean_by_treatment(records),
        "package_precision": precisions(records),
        "by_hand_accuracy": by_hand["mean_test_accuracy"],
    }


def main(argv=None):
    """Row 8's by-hand child: trains the first split by hand and writes --json."""
    parser = argparse.ArgumentParser(prog="python -m tools.bench.by_hand", description=main.__doc__)
    parser.add_argument("--flagfile", required=True, help="the study whose split to train")
    parser.add_argument("--json", required=True, help="where the accuracies go")
    args = parser.parse_args(argv)
    from kerastransfer.workdir import files  # noqa: PLC0415

    workdir = tempfile.mkdtemp(prefix="kt-benchmark-hand-")
    try:
        files.write_json(args.json, grid_by_hand(os.path.abspath(args.flagfile), workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
