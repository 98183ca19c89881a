"""The paper's ImageNet study: its configs, the streaming data path, and a real run of
configs/imagenet_paper.flags on TFDS mock data (decode, resize, crop, mirror, mean
subtraction, 1000-to-500 label remap, caffenet, transfer) on the CPU."""

import copy
import dataclasses
import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

from helpers.cli import REPO
from helpers.data_fixtures import image_tags, tagged_source
from helpers.records import records as read_records
from kerastransfer import config, models
from kerastransfer import flags as kt_flags
from kerastransfer.data import Preprocessing, make_split, make_streaming_half
from kerastransfer.study.plan import plan

CONFIGS = os.path.join(REPO, "configs")
# flagfile -> (networks in its plan, networks its header counts: reduced has 11 values of k)
NETWORKS = {
    "imagenet_paper.flags": (120, 120),
    "imagenet_natural_manmade.flags": (9, 9),
    "imagenet_random_features.flags": (8, 8),
    "imagenet_reduced.flags": (2, 22),
}


def experiment_of(flagfile, *overrides):
    values = copy.deepcopy(kt_flags.FLAGS)
    values(["kt", f"--flagfile={os.path.join(CONFIGS, flagfile)}", *overrides])
    return config.from_flags(values)


@pytest.mark.parametrize("flagfile", sorted(NETWORKS))
def test_imagenet_configs_validate_and_plan_the_networks_their_headers_count(flagfile):
    experiment = experiment_of(flagfile)
    assert (experiment.data.dataset, experiment.model.arch, experiment.solver.train_steps) == (
        "imagenet2012",
        "caffenet",
        450_000,
    )
    assert (experiment.solver.batch_size, experiment.solver.best_k, experiment.data.eval_split) == (
        256,
        10,
        "test",
    )
    names = [f"n{c}" for c in range(1000)]
    splits = [make_split(spec, names, "imagenet2012").name for spec in experiment.data.splits]
    planned, counted = NETWORKS[flagfile]
    assert len(plan(experiment, splits)) == planned
    header = " ".join(open(os.path.join(CONFIGS, flagfile)).read().replace("#", " ").split())
    assert re.search(rf"\b{counted} caffenet networks", header), flagfile


def test_imagenet_header_flops_match_the_caffenet_model():
    """The GPU-hour arithmetic starts from 0.722 GMAC per 227x227 image, 500 classes."""
    model = models.build("caffenet", num_classes=500, input_shape=(227, 227, 3))
    macs = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            height, width, filters = layer.output.shape[1:]
            macs += height * width * filters * int(np.prod(layer.kernel.shape[:3]))
        elif isinstance(layer, keras.layers.Dense):
            macs += int(np.prod(layer.kernel.shape))
    assert round(macs / 1e9, 3) == 0.722
    header = open(os.path.join(CONFIGS, "imagenet_paper.flags")).read()
    assert f"{6 * macs / 1e9:.2f} GFLOP per training image" in header


def test_random_features_split_all_trains_one_base_on_every_class():
    experiment = experiment_of("imagenet_random_features.flags")
    split = make_split("all", [f"n{c}" for c in range(1000)], "imagenet2012")
    assert split.classes("A") == split.classes("B") == tuple(range(1000))
    runs = plan(experiment, [split.name])
    assert [r.run for r in runs if r.treatment == "base"] == ["all/base/B/seed0"]
    assert {r.target for r in runs} == {"B"} and all(r.base_run is None for r in runs)


@pytest.fixture(scope="module")
def streamed():
    """A 6-class source whose images carry their class and index, read as a stream."""
    return dataclasses.replace(tagged_source(num_classes=6, train_per_class=40), in_memory=False)


def stream_tags(source, split, half, **kwargs):
    prep = Preprocessing(image_size=(8, 8), channels=1, scale=1.0)
    ds = make_streaming_half(
        source,
        split,
        half,
        prep,
        split_name="train",
        batch_size=1000,
        training=False,
        seed=0,
        **kwargs,
    )
    images = np.concatenate([x for x, _ in ds.as_numpy_iterator()])
    return image_tags(np.round(images).astype(np.uint8))


def test_streamed_holdout_is_disjoint_and_the_same_whichever_half_holds_a_class(streamed):
    split0 = make_split("random:0", streamed.class_names, streamed.name)
    split1 = make_split("random:1", streamed.class_names, streamed.name)
    train = stream_tags(streamed, split0, "A", part="train", validation_fraction=0.25)
    val = stream_tags(streamed, split0, "A", part="validation", validation_fraction=0.25)
    everything = stream_tags(streamed, split0, "A")
    assert not set(train[1]) & set(val[1])
    assert sorted([*train[1], *val[1]]) == sorted(everything[1])
    assert 0.1 < len(val[1]) / len(everything[1]) < 0.4  # hashed: about the fraction
    moved = next(c for c in split0.classes("A") if c in split1.classes("B"))
    other = stream_tags(streamed, split1, "B", part="validation", validation_fraction=0.25)
    assert sorted(val[1][val[0] == moved]) == sorted(other[1][other[0] == moved])


def test_streamed_first_k_per_class_comes_after_the_holdout(streamed):
    split = make_split("random:0", streamed.class_names, streamed.name)
    kept = stream_tags(
        streamed, split, "B", part="train", validation_fraction=0.25, examples_per_class=3
    )
    rest = stream_tags(streamed, split, "B", part="train", validation_fraction=0.25)
    for c in split.classes("B"):
        assert list(kept[1][kept[0] == c]) == sorted(rest[1][rest[0] == c])[:3]


@pytest.mark.e2e
def test_imagenet_paper_flags_run_end_to_end_on_mock_data(tmp_path):
    """Base A and AnB n=7 of imagenet_paper.flags, 2 steps each, on TFDS mock ImageNet."""
    manual = tmp_path / "manual"
    manual.mkdir()
    for tar in ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"):
        (manual / tar).touch()  # the source checks they exist; mock data replaces them
    workdir = tmp_path / "work"
    done = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO, "tests", "helpers", "mock_tfds_run.py"),
            "32",
            f"--flagfile={os.path.join(CONFIGS, 'imagenet_paper.flags')}",
            f"--workdir={workdir}",
            f"--manual_dir={manual}",
            f"--data_dir={tmp_path / 'tfds'}",
            "--mode=train",
            "--splits=random:0",
            "--layers=7",
            "--treatments=transfer",
            "--runs=random0/base/A/seed0,random0/transfer/n7/seed0",
            "--train_steps=2",
            "--eval_every=2",
            "--batch_size=4",
            "--best_k=1",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    records = read_records(workdir)
    assert [r["run"] for r in records] == ["random0/base/A/seed0", "random0/transfer/n7/seed0"]
    for record in records:
        assert record["status"] == "ok" and record["steps"] == 2
        assert record["num_classes"] == len(record["class_names"]) == 500
        assert record["cached_prefix"] is None  # random crops: no frozen-prefix cache
        # --eval_split=test: the evaluations ran on the official validation images, which
        # are also where the test accuracy is measured
        assert record["final_val"] == pytest.approx(record["test_accuracy"])
    assert done.stdout.count("frozen-prefix caching is off: random crops") == 1
    split = json.load(open(workdir / "splits" / "random0" / "split.json"))
    first, last = split["A"]["classes"][0], split["A"]["classes"][-1]
    assert len(split["A"]["classes"]) == 500
    assert (split["A"]["label_map"][str(first)], split["A"]["label_map"][str(last)]) == (0, 499)
    stored = config.Experiment.from_json(json.load(open(workdir / "config.json"))["experiment"])
    assert (stored.model.arch, stored.data.eval_split, stored.solver.lr_decay_steps) == (
        "caffenet",
        "test",
        100_000,
    )
