"""Frozen-prefix caching: the cached features are the prefix's outputs, and training on them
ends where training the whole network with a frozen prefix ends."""

import os
import zlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers.studies import WIDTHS, tiny_study
from kerastransfer import models, surgery
from kerastransfer.training import caching


def frozen_copies(base, *layers_n):
    """Frozen transfers of `base` at each n with their cache layers."""
    nets = [surgery.transfer(base, n, "frozen") for n in layers_n]
    return [(net, caching.cache_layer(net, n)) for net, n in zip(nets, layers_n)]


def prefix_outputs(model, layer, images):
    return keras.Model(model.input, layer.output)(images, training=False).numpy()


@pytest.fixture(scope="module")
def base_and_images():
    keras.utils.set_random_seed(1)
    base = models.build("caffenet_small", num_classes=5, input_shape=(28, 28, 1), widths=WIDTHS)
    images = np.random.RandomState(0).rand(300, 28, 28, 1).astype(np.float32)
    return base, images


def test_features_kept_in_memory_equal_the_prefix_outputs_also_when_continued(base_and_images):
    base, images = base_and_images
    (net1, pool1), (net3, conv3), (net7, fc6) = frozen_copies(base, 1, 3, 7)
    assert (pool1.name, conv3.name, fc6.name) == ("pool1", "conv3", "fc6")
    store = caching.FeatureStore(2**30, cache_dir=None)
    first = store.in_memory(net1, pool1, {"train": images}, key="baseA")
    np.testing.assert_allclose(
        first["train"], prefix_outputs(net1, pool1, images), rtol=1e-5, atol=1e-5
    )
    # Later n of the same base: continued from the kept pool1 outputs, never from the
    # (here deliberately wrong) images, and still equal to the whole prefix's outputs.
    wrong = {"train": np.zeros_like(images)}
    for net, layer in ((net3, conv3), (net7, fc6)):
        continued = store.in_memory(net, layer, wrong, key="baseA")
        np.testing.assert_allclose(
            continued["train"], prefix_outputs(net, layer, images), rtol=1e-4, atol=1e-5
        )
    fresh = store.in_memory(net3, conv3, wrong, key="baseB")  # another key: from the inputs
    np.testing.assert_allclose(
        fresh["train"], prefix_outputs(net3, conv3, wrong["train"]), rtol=1e-5, atol=1e-5
    )


def test_features_over_budget_go_to_a_file_cache_that_equals_the_prefix_outputs(
    base_and_images, tmp_path
):
    base, images = base_and_images
    ((net, layer),) = frozen_copies(base, 2)
    labels = np.arange(len(images)) % 5
    store = caching.FeatureStore(0, cache_dir=str(tmp_path))
    assert not store.fits(layer, len(images))
    batches = tf.data.Dataset.from_tensor_slices((images, labels)).batch(64)
    examples = store.on_file(net, layer, {"train": batches}, "random0/transfer/n2/seed0")
    folder = tmp_path / "random0" / "transfer" / "n2" / "seed0"
    assert any(name.startswith("train") for name in os.listdir(folder))
    features, read_labels = (np.stack(parts) for parts in zip(*examples["train"]))
    np.testing.assert_allclose(features, prefix_outputs(net, layer, images), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(read_labels, labels)
    store.release("random0/transfer/n2/seed0")
    assert not (tmp_path / "random0").exists()


def layer_weights(model):
    return {layer.name: layer.get_weights() for layer in model.layers}


def train_random_frozen_run(workdir, **flags):
    """Trains the grid's random-features run at n=3 (no dropout) for one epoch.

    Returns its record, its trained weights and the weights it started from: the run's
    network built again under the seed `Study.train_run` sets before building it.
    """
    study = tiny_study(workdir, layers=(3,), treatments=("random",), dropout=0.0, **flags)
    (spec,) = [s for s in study.runs if s.treatment == "random"]
    record = study.train_run(spec, None)
    assert record["status"] == "ok"
    weights = study.trained_network(record)
    keras.utils.set_random_seed(
        (zlib.crc32(spec.run.encode()) + study.experiment.grid.seed_offset) % 2**31
    )
    start = study.network(spec, None, record["num_classes"])
    return record, layer_weights(weights), layer_weights(start)


def test_one_epoch_with_and_without_caching_ends_with_the_same_weights(tmp_path):
    plain, plain_weights, start = train_random_frozen_run(tmp_path / "plain", cache_frozen=False)
    memory, memory_weights, _ = train_random_frozen_run(tmp_path / "memory")
    on_file, file_weights, _ = train_random_frozen_run(tmp_path / "file", cache_budget_mb=0)
    assert plain["cached_prefix"] is None
    assert (memory["cached_prefix"], memory["cache_storage"]) == ("conv3", "memory")
    assert (on_file["cached_prefix"], on_file["cache_storage"]) == ("conv3", "file")
    assert not (tmp_path / "file" / "cache").exists()  # released after the run
    trained = ("conv4", "conv5", "fc6", "fc7", "fc8")
    for cached in (memory_weights, file_weights):
        for name in trained:
            for ours, theirs in zip(cached[name], plain_weights[name]):
                np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5, err_msg=name)
    # `start` is the run's real starting point: the frozen random prefix never trains and is
    # exactly as rebuilt; the suffix really trained and moved away from its start.
    for name in ("conv1", "conv2", "conv3"):
        for ours, theirs in zip(plain_weights[name], start[name], strict=True):
            np.testing.assert_array_equal(ours, theirs, err_msg=name)
    for name in trained:
        assert not np.allclose(plain_weights[name][0], start[name][0]), name


def test_a_linear_probe_alone_at_one_n_after_another_continues_from_its_own_features(tmp_path):
    """Probes trained one after another on one base keep their features under one key; the
    probe's flatten has one name at every n, so n=2 must not start from n=1's flattened
    features (they are another block's output: 784 values where n=2 has 1568)."""
    study = tiny_study(tmp_path, layers=(1, 2), treatments=("probe",), dropout=0.0)
    done = {}
    for spec in study.runs:
        base = done.get(spec.base_run)
        done[spec.run] = study.train_run(spec, base)
        assert done[spec.run]["status"] == "ok", spec.run
    probes = [record for record in done.values() if record["treatment"] == "probe"]
    assert sorted(record["n"] for record in probes) == [1, 2]
