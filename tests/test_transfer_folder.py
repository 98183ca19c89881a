"""Transfer your own model to your own images, end to end through the command line."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers.cli import REPO, run_cli
from helpers.records import records as read_records
from helpers.reliability import Runner
from kerastransfer import config, data, models, surgery, training, treatments
from kerastransfer.study.plan import OWN_MODEL_SPLIT
from kerastransfer.training.loop import CHECKPOINT_METADATA

pytestmark = pytest.mark.e2e

FLAGFILE = os.path.join(REPO, "configs", "transfer_folder.flags")
SOURCE_WIDTHS = (8, 16, 16, 16, 16, 32, 32)


def checkpoint_of(run_dir):
    return os.path.join(run_dir, "backup", CHECKPOINT_METADATA)


def write_folder(root, images, labels, names):
    """One PNG per image under root/<class name>/, as a user's folder would be."""
    for index, (image, label) in enumerate(zip(images, labels)):
        folder = os.path.join(root, names[label].replace("/", "-"))
        os.makedirs(folder, exist_ok=True)
        png = tf.io.encode_png(image).numpy()
        with open(os.path.join(folder, f"{index:05d}.png"), "wb") as f:
            f.write(png)


@pytest.fixture(scope="module")
def fashion_halves():
    source = data.load_source("fashion_mnist")
    split = data.make_split("random:0", source.class_names, "fashion_mnist")
    half_a = data.make_half_data(source, split, "A", max_examples_per_class=300)
    half_b = data.make_half_data(source, split, "B", max_examples_per_class=40)
    return half_a, half_b


@pytest.fixture(scope="module")
def source_and_folder(fashion_halves, tmp_path_factory):
    """(a caffenet_small trained on half A of random:0 saved as .keras, a folder of half B's
    images): a user's own model and own images."""
    half_a, half_b = fashion_halves
    tmp = tmp_path_factory.mktemp("own")
    keras.utils.set_random_seed(0)
    source = models.build(
        "caffenet_small", num_classes=5, input_shape=(28, 28, 1), widths=SOURCE_WIDTHS, dropout=0.0
    )
    source.compile(
        keras.optimizers.SGD(0.05, momentum=0.9),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    source.fit(half_a.train_x / 255.0, half_a.train_y, batch_size=32, epochs=4, verbose=0)
    source_path = str(tmp / "fashion_a.keras")
    source.save(source_path)
    folder = str(tmp / "half_b")
    write_folder(folder, half_b.train_x, half_b.train_y, half_b.class_names)
    return source_path, folder


def test_own_model_to_own_folder_recommends_n_and_exports(
    tmp_path, fashion_halves, source_and_folder
):
    _, half_b = fashion_halves
    source_path, folder = source_and_folder
    workdir = str(tmp_path / "work")

    done = run_cli(
        f"--flagfile={FLAGFILE}",
        f"--source_model={source_path}",
        f"--image_dir={folder}",
        f"--workdir={workdir}",
        "--layers=1,3,7",
        "--treatments=transfer,transfer_ft",
        "--epochs=8",
        "--eval_every=5",
    )
    assert done.returncode == 0, done.stderr[-4000:]

    records = read_records(workdir)
    assert sorted((r["treatment"], r["n"], r["seed"]) for r in records) == sorted(
        [("base", 0, s) for s in (0, 1)]
        + [(t, n, s) for t in ("transfer", "transfer_ft") for n in (1, 3, 7) for s in (0, 1)]
    )
    assert all(r["status"] == "ok" for r in records)
    with open(os.path.join(workdir, "recommendation.json")) as f:
        choice = json.load(f)["choice"]
    assert choice["n"] in (1, 3, 7) and choice["mode"] in ("frozen", "fine-tuned")
    assert choice["gain_over_scratch"]["ci"] is not None  # two seeds give an interval
    report = open(os.path.join(workdir, "report.md")).read()
    cuts = surgery.cut_layers(keras.models.load_model(source_path))
    assert choice["cut"] == cuts[choice["n"] - 1]  # the source model's own layer name
    assert f"Use n = {choice['n']} ({choice['cut']}), {choice['mode']}" in report

    version = os.path.join(workdir, "export", "kerastransfer", "1")
    check = textwrap.dedent(f"""
        import glob, json, os, numpy as np, tensorflow as tf
        served = tf.saved_model.load({version!r}).signatures["predict_image_bytes"]
        paths = sorted(glob.glob(os.path.join({folder!r}, "*", "*.png")))
        truth = [os.path.basename(os.path.dirname(p)) for p in paths]
        names = []
        for start in range(0, len(paths), 64):  # the export's --export_max_batch
            files = [open(p, "rb").read() for p in paths[start:start + 64]]
            out = served(image_bytes=tf.constant(files))
            names += [n.decode() for n in out["class_names"].numpy()]
        print(json.dumps({{"accuracy": float(np.mean([a == b for a, b in zip(names, truth)])),
                           "count": len(paths)}}))
    """)
    result = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert served["count"] == len(half_b.train_y)
    assert served["accuracy"] > 0.5  # five classes: chance is 0.2


def test_prune_trains_only_the_best_scoring_cut_points(tmp_path, source_and_folder):
    source_path, folder = source_and_folder
    workdir = str(tmp_path / "work")
    command = (
        f"--flagfile={FLAGFILE}",
        f"--source_model={source_path}",
        f"--image_dir={folder}",
        f"--workdir={workdir}",
        "--layers=1,3,5,7",
        "--treatments=transfer,transfer_ft",
        "--prune=2",
        "--seeds=0",
        "--epochs=2",
        "--eval_every=5",
    )
    done = run_cli(*command)
    assert done.returncode == 0, done.stderr[-4000:]
    with open(os.path.join(workdir, "scores.json")) as f:
        scores = json.load(f)
    logme = {e["n"]: e["scores"]["logme"] for e in scores["entries"]}
    assert sorted(logme) == [1, 3, 5, 7]  # every candidate scored
    ranked = sorted(logme, key=lambda n: -logme[n])
    pruned = scores["prune"]
    bootstrap = pruned["bootstrap"]
    assert bootstrap["replicates"] == 100 and 0 <= bootstrap["held"] <= 1
    separable = bootstrap["held"] >= 0.95
    assert bootstrap["extra"] == (None if separable else ranked[2])
    best_two = sorted(ranked[: 2 if separable else 3])  # one more when not separable
    assert pruned["trained"] == best_two
    assert pruned["skipped"] == sorted({1, 3, 5, 7} - set(best_two))
    assert (pruned["networks_planned"], pruned["networks_trained"]) == (9, 1 + 2 * len(best_two))

    records = read_records(workdir)
    assert sorted((r["treatment"], r["n"]) for r in records) == sorted(
        [("base", 0)] + [(t, n) for t in ("transfer", "transfer_ft") for n in best_two]
    )
    with open(os.path.join(workdir, "recommendation.json")) as f:
        result = json.load(f)
    assert result["choice"]["n"] in best_two
    assert result["pruning"]["networks_skipped"] == 8 - 2 * len(best_two)
    assert result["pruning"]["seconds_saved_estimate"] > 0
    assert {o["kendall"] for o in result["pruning"]["agreement"].values()} <= {-1.0, 1.0, None}
    report = open(os.path.join(workdir, "report.md")).read()
    assert "## Pruned by an estimator (--prune)" in report
    assert f"Skipped: n = {', '.join(map(str, pruned['skipped']))}" in report

    # The same command again (a resumed study): the scores come from scores.json, the
    # bootstrap reads the features again, and the decision is the same.
    again = run_cli(*command)
    assert again.returncode == 0, again.stderr[-4000:]
    assert "score target" not in again.stdout  # no cut point scored again
    with open(os.path.join(workdir, "scores.json")) as f:
        repeated = json.load(f)["prune"]
    for record in (pruned, repeated):
        del record["scoring_seconds"], record["bootstrap"]["seconds"]
    assert repeated == pruned


@pytest.mark.slow  # a minute, mostly graph building; test_backbones covers backbones by default
def test_mobilenet_v2_backbone_with_random_weights_on_a_tiny_folder(tmp_path):
    rng = np.random.default_rng(0)
    names = ["cats", "dogs", "owls"]
    labels = np.repeat(np.arange(3), 10)
    images = rng.integers(0, 256, (len(labels), 32, 32, 3), dtype=np.uint8)
    folder = str(tmp_path / "tiny")
    write_folder(folder, images, labels, names)
    backbone = keras.applications.MobileNetV2(
        include_top=False, weights=None, input_shape=(32, 32, 3)
    )
    weights = str(tmp_path / "mobilenet_v2.weights.h5")
    backbone.save_weights(weights)
    workdir = str(tmp_path / "work")
    done = run_cli(
        f"--flagfile={FLAGFILE}",
        "--arch=mobilenet_v2",
        f"--source_weights={weights}",
        "--image_size=32",
        f"--image_dir={folder}",
        f"--workdir={workdir}",
        "--layers=2",
        "--treatments=transfer",
        "--seeds=0",
        "--epochs=1",
        "--batch_size=8",
    )
    assert done.returncode == 0, done.stderr[-4000:]
    records = read_records(workdir)
    assert len(records) == 2 and all(r["status"] == "ok" for r in records)
    assert [r.get("cut") for r in records if r["treatment"] == "transfer"] == [
        surgery.cut_layers(keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3)))[1]
    ]
    assert {r["num_classes"] for r in records} == {3}
    with open(os.path.join(workdir, "export", "kerastransfer", "1", "metadata.json")) as f:
        metadata = json.load(f)
    assert metadata["export"]["class_names"] == names


def test_source_model_with_a_variable_input_size_is_a_clear_error(tmp_path):
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    path = str(tmp_path / "anysize.keras")
    keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x)).save(path)
    folder = str(tmp_path / "f")
    write_folder(folder, np.zeros((4, 8, 8, 3), np.uint8), np.array([0, 0, 1, 1]), ["a", "b"])
    done = run_cli(
        f"--flagfile={FLAGFILE}",
        f"--source_model={path}",
        f"--image_dir={folder}",
        f"--workdir={tmp_path / 'w'}",
        "--layers=1",
    )
    assert done.returncode == 2
    assert "not a fixed image size" in done.stderr and len(done.stderr.strip().splitlines()) == 1


TRAIN_STEPS, EVAL_EVERY = 200, 10


def kill_point(recipe, n=1):
    """(the folder under a run's where it checkpoints last, the step it resumes from after a
    kill at that first checkpoint): a staged recipe is killed in its last stage, after the
    steps of the stages before it."""
    solver = training.Solver(0.02, 0.9, total_steps=TRAIN_STEPS, eval_every=EVAL_EVERY)
    stages = treatments.get(recipe).stages(solver, config.SolverConfig(), n)
    if not stages:
        return "", EVAL_EVERY
    return stages[-1].name, sum(s.solver.total_steps for s in stages[:-1]) + EVAL_EVERY


def test_the_default_own_model_study_trains_every_recipe_resumes_and_exports_the_winner(
    tmp_path, source_and_folder
):
    """The own-model study without --treatments: every transfer mode and recipe over two cut
    points, each recipe killed once mid-run (after its first checkpoint; a staged one such as
    LP-FT in its last stage) and resumed; report.md and recommendation.json name every one,
    and the recommended one is exported."""
    source_path, folder = source_and_folder
    workdir, stderr = str(tmp_path / "work"), str(tmp_path / "stderr.txt")
    args = (
        f"--flagfile={FLAGFILE}",
        f"--source_model={source_path}",
        f"--image_dir={folder}",
        f"--workdir={workdir}",
        "--layers=1,3",
        "--seeds=0",
        f"--train_steps={TRAIN_STEPS}",
        f"--eval_every={EVAL_EVERY}",
    )
    killed = {
        f"{OWN_MODEL_SPLIT}/{recipe}/n1/seed0": kill_point(recipe) for recipe in treatments.RECIPES
    }
    for run, (stage, _) in killed.items():
        checkpoint = checkpoint_of(os.path.join(workdir, "runs", run, stage))
        runner = Runner(*args, stderr_path=stderr)
        runner.wait_until(lambda checkpoint=checkpoint: os.path.exists(checkpoint))
        runner.kill()
        assert run not in {r["run"] for r in read_records(workdir)}, f"{run} finished first"
    runner = Runner(*args, stderr_path=stderr)
    assert runner.finish() == 0, runner.output()

    records = {r["run"]: r for r in read_records(workdir)}
    assert sorted((r["treatment"], r["n"]) for r in records.values()) == sorted(
        [("base", 0)] + [(t, n) for t in treatments.TRANSFER_MODES for n in (1, 3)]
    )
    assert all(r["status"] == "ok" for r in records.values())
    for run, (_, step) in killed.items():
        assert records[run]["resumed_from_step"] == step, run
    lp_ft = records[f"{OWN_MODEL_SPLIT}/lp_ft/n1/seed0"]
    assert [(s["trains"], s["steps"]) for s in lp_ft["stages"]] == [
        ("head", 100),
        ("every layer", 100),
    ]
    assert [step for step, _ in lp_ft["val_history"]] == list(range(10, 201, 10))
    with open(os.path.join(workdir, "recommendation.json")) as f:
        choice = json.load(f)["choice"]
    report = open(os.path.join(workdir, "report.md")).read()
    with open(os.path.join(workdir, "recommendation.json")) as f:
        cells = json.load(f)["cells"]
    for mode in treatments.TRANSFER_MODES:
        assert treatments.get(mode).recipe in report
        assert sorted(c["n"] for c in cells if c["treatment"] == mode) == [1, 3], mode
    decay = f", decay {choice['layer_decay']:g}" if choice["layer_decay"] else ""
    assert f"Use n = {choice['n']} ({choice['cut']}{decay}), {choice['mode']}" in report
    with open(os.path.join(workdir, "export", "kerastransfer", "1", "metadata.json")) as f:
        exported = json.load(f)
    assert (exported["treatment"], exported["n"]) == (choice["treatment"], choice["n"])
