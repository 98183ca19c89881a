"""The practitioners' recipes (treatments.RECIPES): which variables each one trains, frozen
BatchNormalization left in inference mode, layer-wise decay's per-block rates, and LP-FT's
two stages (training.fit_stages)."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerastransfer import config, models, surgery, training, treatments

WIDTHS = (4, 4, 4, 4, 4, 8, 8)


def small_base():
    keras.utils.set_random_seed(0)
    return models.build(
        "caffenet_small", num_classes=5, input_shape=(28, 28, 1), widths=WIDTHS, dropout=0.0
    )


def batch_norm_base():
    """Two conv blocks with BatchNormalization, cut after each ReLU, and a dense head."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 12, 1))
    x = inputs
    for i in (1, 2):
        x = keras.layers.Conv2D(4, 3, name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs), ["relu1", "relu2"]


def train_a_little(model, steps=3, layer_rates=None, momentum=0.9):
    """`steps` SGD steps on random images; returns {variable path: value before}."""
    solver = training.Solver(learning_rate=0.1, momentum=momentum, total_steps=1, eval_every=1)
    training.compile_model(model, solver, layer_rates=layer_rates)
    before = {v.path: v.numpy().copy() for v in model.variables}
    rng = np.random.default_rng(0)
    images = rng.normal(size=(16, *model.input_shape[1:])).astype("float32")
    labels = rng.integers(0, model.output_shape[-1], 16)
    for _ in range(steps):
        model.train_on_batch(images, labels)
    return before


def changed_layers(model, before):
    """Names of the layers any of whose variables (moving statistics included) changed."""
    return {
        v.path.split("/")[0]
        for v in model.variables
        if v.path in before and not np.array_equal(v.numpy(), before[v.path])
    }


def test_every_recipe_is_a_treatment_with_its_own_name():
    assert treatments.RECIPES[:4] == ("probe", "surgical", "layer_decay", "lp_ft")
    names = [treatments.display_name(t) for t in treatments.RECIPES]
    assert names[:4] == ["AnB-probe", "AnB-surgical", "AnB+decay", "AnB-LP-FT"]
    assert len(set(names)) == len(names) and all(name.startswith("AnB") for name in names)
    assert [treatments.display_name(t, "A") for t in treatments.RECIPES][0] == "BnA-probe"
    for recipe in treatments.RECIPES:  # no finding reads them; the grid default leaves them out
        assert recipe not in treatments.PAPER_NAMES and recipe in treatments.TRANSFER_MODES


def test_the_linear_probe_trains_only_its_head_on_the_cut():
    base = small_base()
    probe = surgery.linear_probe(base, 3, num_classes=4)
    cut = surgery.cut_after(base, 3).name
    names = [layer.name for layer in probe.layers]
    assert names[-1] == surgery.PROBE_HEAD and cut in names
    assert not {"conv4", "conv5", "fc6", "fc7", "fc8"} & set(names)  # nothing above the cut
    assert probe.output_shape == (None, 4)
    for name in ("conv1", "conv2", "conv3"):
        for mine, theirs in zip(probe.get_layer(name).weights, base.get_layer(name).weights):
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    before = train_a_little(probe)
    assert changed_layers(probe, before) == {surgery.PROBE_HEAD}


def test_surgical_fine_tuning_trains_only_block_k_and_the_head():
    base = small_base()
    surgical = surgery.surgical(base, 2, num_classes=5)
    for name in ("conv1", "conv2", "conv3", "fc6", "fc7"):  # every block copied
        for mine, theirs in zip(surgical.get_layer(name).weights, base.get_layer(name).weights):
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    before = train_a_little(surgical)
    assert changed_layers(surgical, before) == {"conv2", surgery.head_layer(base).name}


class GridNetworks:
    """What the grid's study (study.Study) gives a treatment, and no more: the methods of
    treatments.Networks, on one trained base (a grid study has no `cuts` of its own)."""

    def __init__(self):
        self.base = small_base()

    def build_model(self, num_classes):
        return models.build(
            "caffenet_small", num_classes=num_classes, input_shape=(28, 28, 1), widths=WIDTHS
        )

    def trained_network(self, record):
        return self.base

    def copied_from(self, base_record):
        return self.base

    def cut_names(self, model):
        return models.cut_points("caffenet_small", model)


@pytest.mark.parametrize("name", treatments.NAMES)
def test_every_treatment_builds_its_network_from_what_a_grid_study_gives(name):
    """--treatments=surgical on the grid asked the study for `cuts`, which only the own-model
    study has (AttributeError at the first surgical run); mypy found it against Networks."""
    study = GridNetworks()
    model = treatments.get(name).network(study, 2, 5, {"run": "random0/base/A/seed0"})
    assert model.output_shape == (None, 5)
    if name == "surgical":
        trainable = {layer.name for layer in model.layers if layer.trainable and layer.weights}
        assert trainable == {"conv2", "fc8"}


@pytest.mark.parametrize(
    "network, n, trained",
    [(surgery.linear_probe, 1, {"probe_head"}), (surgery.surgical, 2, None)],
)
def test_frozen_batch_norm_keeps_its_statistics_in_every_recipe(network, n, trained):
    base, cuts = batch_norm_base()
    model = network(base, n, cut_names=cuts)
    before = train_a_little(model)
    changed = changed_layers(model, before)
    assert not {"conv1", "bn1"} & changed  # block 1 frozen: weights and moving statistics
    if network is surgery.surgical:
        assert {"conv2", "bn2", "head"} <= changed  # block 2's BN trains and updates
    else:
        assert changed == trained


def test_layer_decay_scales_each_copied_blocks_step_by_decay_to_its_depth():
    base = small_base()
    rates = surgery.layer_decay_rates(base, 3, 0.5)
    assert {rates[name] for name in ("conv1", "pool1")} == {0.125}
    assert (rates["conv2"], rates["conv3"]) == (0.25, 0.5) and "conv4" not in rates
    steps = {}
    for layer_rates in (None, rates):
        keras.utils.set_random_seed(1)  # the same fresh layers above n both times
        model = surgery.transfer(base, 3, "fine_tuned")
        before = train_a_little(model, steps=1, layer_rates=layer_rates, momentum=0.0)
        steps[layer_rates is None] = {
            v.path: v.numpy() - before[v.path] for v in model.trainable_variables
        }
    for path, plain in steps[True].items():
        expected = rates.get(path.split("/")[0], 1.0)
        np.testing.assert_allclose(
            steps[False][path], expected * plain, rtol=1e-3, atol=1e-6
        )  # float32 differences


def fit_stages_on_random_images(model, stages, tmp_path):
    """training.fit_stages of `stages` on 32 random images in batches of 8, keeping every
    variable's value before each stage compiles; (the outcome, those snapshots)."""
    snapshots = []

    def compile_and_snapshot(model, solver):
        snapshots.append({v.path: v.numpy().copy() for v in model.variables})
        training.compile_model(model, solver)

    rng = np.random.default_rng(0)
    images = rng.normal(size=(32, *model.input_shape[1:])).astype("float32")
    labels = rng.integers(0, model.output_shape[-1], 32)

    def train_data(skip):
        return tf.data.Dataset.from_tensor_slices((images, labels)).repeat().batch(8).skip(skip)

    outcome = training.fit_stages(
        model,
        train_data,
        tf.data.Dataset.from_tensor_slices((images, labels)).batch(8),
        stages=stages,
        compile_model=compile_and_snapshot,
        batch_size=8,
        best_k=2,
        run_dir=str(tmp_path / "run"),
        weights_path=str(tmp_path / "final.weights.h5"),
        tensorboard_dir=str(tmp_path / "board"),
    )
    return outcome, snapshots


def test_lp_ft_trains_the_probes_head_first_then_every_layer(tmp_path):
    base = small_base()
    model = surgery.linear_probe(base, 3, num_classes=4)
    run_solver = training.Solver(learning_rate=0.01, momentum=0.9, total_steps=8, eval_every=2)
    stages = treatments.get("lp_ft").stages(
        run_solver, config.SolverConfig(learning_rate=0.1), n=3, cuts=None
    )
    assert [(s.name, s.solver.total_steps, s.solver.learning_rate) for s in stages] == [
        ("probe", 4, 0.1),
        ("fine_tune", 4, 0.01),
    ]
    outcome, snapshots = fit_stages_on_random_images(model, stages, tmp_path)
    assert outcome.ok and outcome.steps == 8
    assert [step for step, _ in outcome.val_history] == [2, 4, 6, 8]  # both stages, in order
    assert [s["trains"] for s in outcome.stages] == ["head", "every layer"]
    start, probed = snapshots  # before the probe stage, before the fine-tuning stage
    assert changed_layers(model, start) != set()
    assert {
        v.path.split("/")[0]
        for v in model.variables
        if not np.array_equal(probed[v.path], start[v.path])
    } == {surgery.PROBE_HEAD}
    assert {"conv1", "conv2", "conv3", surgery.PROBE_HEAD} <= changed_layers(model, probed)
    assert all(layer.trainable for layer in model.layers)
    assert not os.path.exists(tmp_path / "run" / "probe")  # the probe stage's files are gone
