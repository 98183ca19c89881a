"""Bad input through the real command line: exit status 2, one line naming the bad value and
the fix, no traceback, and a workdir that already holds a study left byte-identical.

docs/errors.md lists the same cases for users.
"""

import concurrent.futures
import gzip
import os
import shutil

import keras
import numpy as np
import pytest

from helpers.cli import REPO, SMOKE, run_cli
from helpers.data_fixtures import write_fashion_mnist_files, write_image_folder, write_png
from helpers.reliability import own_lines, snapshot
from kerastransfer.data import fashion_mnist

pytestmark = pytest.mark.e2e

MISSING_RUN = "random0/transfer/n9/seed0"
# The command that made the session's finished smoke workdir (training only): every case
# adds its bad value to it, so the bad value is the only thing that differs.
SMOKE_TRAIN = (f"--flagfile={SMOKE}", "--mode=train")


def truncated_manual_dir(tmp):
    """Fashion-MNIST IDX files whose training images lose their last 100 bytes."""
    manual = os.path.join(tmp, "manual")
    write_fashion_mnist_files(manual)
    path = os.path.join(manual, fashion_mnist.FILES["train"][0])
    with open(path, "rb") as f:
        raw = gzip.decompress(f.read())
    with open(path, "wb") as f:
        f.write(gzip.compress(raw[:-100]))
    return manual


def split_file(tmp, text):
    path = os.path.join(tmp, "classes.txt")
    with open(path, "w") as f:
        f.write(text)
    return path


# name: (arguments after SMOKE_TRAIN given the workdir and a scratch dir, what the message
# must say)
CASES = {
    "unknown_arch": (lambda w, t: ["--arch=vgg16"], ["--arch='vgg16'", "known architectures"]),
    "unknown_dataset": (
        lambda w, t: ["--dataset=fashion_mnistt"],
        ["--dataset='fashion_mnistt'", "known:"],
    ),
    "unknown_split": (lambda w, t: ["--splits=halves"], ["'halves'", "use random:SEED"]),
    "unknown_treatment": (
        lambda w, t: ["--treatments=transfer,finetune"],
        ["'finetune'", "use any of"],
    ),
    "bases_only_with_treatments": (
        lambda w, t: ["--treatments=none,transfer"],
        ["--treatments=none,transfer", "give none alone"],
    ),
    "unknown_strategy": (lambda w, t: ["--strategy=tpu"], ["--strategy=tpu", "one of"]),
    "unknown_mode": (lambda w, t: ["--mode=serve"], ["--mode=serve", "one of"]),
    "n_zero": (lambda w, t: ["--layers=0"], ["n=0", "layers start at 1"]),
    "n_past_last_block": (lambda w, t: ["--layers=8"], ["n=8", "past the last block", "1..7"]),
    "zero_epochs": (
        lambda w, t: ["--epochs=0", "--train_steps=0"],
        ["--epochs=0.0", "must be positive"],
    ),
    "negative_batch_size": (
        lambda w, t: ["--batch_size=-32"],
        ["--batch_size=-32", "must be positive"],
    ),
    "zero_learning_rate": (
        lambda w, t: ["--learning_rate=0"],
        ["--learning_rate=0.0", "must be positive"],
    ),
    "non_integer_seeds": (lambda w, t: ["--seeds=one"], ["--seeds=one", "integers"]),
    "missing_flagfile": (
        lambda w, t: ["--flagfile=/nonexistent/study.flags"],
        ["/nonexistent/study.flags", "pass an existing file"],
    ),
    "missing_dataset_files": (
        lambda w, t: ["--manual_dir=/nonexistent", f"--data_dir={t}/tfds"],
        ["/nonexistent/train-images-idx3-ubyte.gz", "--manual_dir"],
    ),
    "truncated_idx_file": (
        lambda w, t: [f"--manual_dir={truncated_manual_dir(t)}", f"--data_dir={t}/tfds"],
        ["truncated IDX file", "train-images-idx3-ubyte.gz", "--manual_dir"],
    ),
    "split_file_unknown_class": (
        lambda w, t: ["--splits=file:" + split_file(t, "1\n12\n")],
        ["classes.txt line 2", "'12' is not a class id", "0..9"],
    ),
    "split_file_duplicated_class": (
        lambda w, t: ["--splits=file:" + split_file(t, "3\n4\n3\n")],
        ["classes.txt line 3", "class id 3 is listed twice", "once"],
    ),
    "workdir_is_a_file": (
        lambda w, t: [f"--workdir={w}/results.jsonl"],
        ["results.jsonl is a file", "directory"],
    ),
    # We run as root, so chmod cannot make a directory unwritable: a path under a file can't
    # be created by anyone.
    "workdir_not_writable": (
        lambda w, t: [f"--workdir={w}/config.json/study"],
        ["config.json/study is not writable", "directory you can write"],
    ),
    "export_missing_run": (
        lambda w, t: ["--mode=export", f"--export_run={MISSING_RUN}"],
        [MISSING_RUN, "not a finished run", "finished runs include"],
    ),
    "changed_config": (
        lambda w, t: ["--learning_rate=0.5"],
        ["--learning_rate 0.05 -> 0.5", "--overwrite"],
    ),
    "unknown_estimator": (
        lambda w, t: ["--estimators=logme,logmee"],
        ["'logmee'", "use any of logme,"],
    ),
    "prune_without_source_model": (
        lambda w, t: ["--prune=2"],
        ["--prune=2", "--source_model"],
    ),
    "score_without_trained_study": (
        lambda w, t: ["--mode=score", f"--workdir={t}/empty"],
        ["has no trained study to score", "--mode=train"],
    ),
}


@pytest.fixture(scope="module")
def outcomes(smoke_workdir, tmp_path_factory):
    """Every case run against its own copy of the finished smoke workdir, three at a time (each
    subprocess spends most of its life loading TensorFlow): {case: (future, workdir, before)}."""
    finished = smoke_workdir.workdir
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        started = {}
        for case, (make_args, _) in sorted(CASES.items()):
            tmp = str(tmp_path_factory.mktemp(case))
            workdir = os.path.join(tmp, "study")
            shutil.copytree(finished, workdir)
            args = make_args(workdir, tmp)
            started[case] = (
                pool.submit(run_cli, *SMOKE_TRAIN, f"--workdir={workdir}", *args),
                workdir,
                snapshot(workdir),
            )
        yield started


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exits_2_with_one_line_and_leaves_the_workdir_alone(case, outcomes):
    future, workdir, before = outcomes[case]
    done = future.result()
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    lines = own_lines(done.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-3000:]
    for text in CASES[case][1]:
        assert text in lines[0]
    assert snapshot(workdir) == before


def refused_own_model_study(tmp_path, model_path, image_dir):
    """The error lines of an own-model study at n=1 that must exit 2 without a traceback
    and before it makes its workdir."""
    done = run_cli(
        f"--flagfile={os.path.join(REPO, 'configs', 'transfer_folder.flags')}",
        f"--source_model={model_path}",
        f"--image_dir={image_dir}",
        f"--workdir={tmp_path / 'study'}",
        "--layers=1",
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "study").exists()
    return own_lines(done.stderr)


def test_source_model_with_a_lambda_layer_names_the_layer_and_the_way_out(tmp_path):
    """Keras's safe mode refuses a Lambda layer's Python code: the line names that cause and
    what to do instead, not "save it with model.save", which is what the user did."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    path = str(tmp_path / "with_lambda.keras")
    keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x)).save(path)
    for index, name in enumerate("aabb"):
        write_png(str(tmp_path / "images" / name / f"{index}.png"), np.zeros((8, 8, 3), np.uint8))
    assert refused_own_model_study(tmp_path, path, tmp_path / "images") == [
        f"error: --source_model={path!r} has a Lambda layer: arbitrary Python code, which "
        "Keras's safe mode refuses to load; replace the Lambda with a built-in layer or a "
        "layer subclass registered with keras.saving.register_keras_serializable, or save the "
        "model without it"
    ]


def test_a_folder_class_too_small_to_split_names_the_class_and_the_least_it_needs(tmp_path):
    """A class of 2 PNGs beside classes of 40 cannot have a training, a validation and a test
    image: the own-model study refuses the folder before it makes the workdir."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    path = str(tmp_path / "own.keras")
    keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="head")(x)).save(path)
    folder = tmp_path / "images"
    write_image_folder(str(folder), {"ants": 40, "bees": 40, "rare": 2})
    assert refused_own_model_study(tmp_path, path, folder) == [
        f"error: --image_dir={folder}: class 'rare' has 2 images, fewer than the 7 a class "
        "needs for at least one training, one validation (--validation_fraction=0.1) and one "
        "test image (every 5th image is a test image): add images to "
        f"{folder}/rare or remove that folder"
    ]
