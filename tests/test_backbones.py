"""The backbones practitioners transfer: keras.applications families and keras-hub presets,
cut at the ends of their stages (models/stages.py), with their own preprocessing."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from helpers.cli import REPO, run_cli
from helpers.records import records as read_records
from kerastransfer import config, models, surgery
from kerastransfer.config import ModelConfig
from kerastransfer.data import Preprocessing
from kerastransfer.errors import UsageError
from kerastransfer.study.own_model import _cut_points

FLAGFILE = os.path.join(REPO, "configs", "transfer_folder.flags")

# The smallest model of each family -> its stage cuts at 32x32 (found, not listed, by models).
FAMILY_CUTS = {
    "resnet50": [
        "pool1_pool",
        "conv2_block3_out",
        "conv3_block4_out",
        "conv4_block6_out",
        "conv5_block3_out",
    ],
    "resnet50_v2": [
        "conv2_block1_preact_relu",
        "conv2_block3_out",
        "conv3_block4_out",
        "conv4_block6_out",
        "post_relu",
    ],
    "mobilenet_v2": [
        "block_2_add",
        "block_5_add",
        "block_9_add",
        "block_12_add",
        "block_15_add",
        "out_relu",
    ],
    "mobilenet_v3_small": [
        "expanded_conv_2_add",
        "expanded_conv_5_add",
        "expanded_conv_7_add",
        "expanded_conv_10_add",
        None,  # the last activation: Keras numbers its name per process
    ],
    "efficientnet_b0": [
        "block2b_add",
        "block3b_add",
        "block4c_add",
        "block5c_add",
        "block6d_add",
        "top_activation",
    ],
    "efficientnet_v2_b0": [
        "block2b_add",
        "block3b_add",
        "block4c_add",
        "block5e_add",
        "block6h_add",
        "top_activation",
    ],
    "convnext_tiny": [
        "convnext_tiny_stage_0_block_2_identity_add",
        "convnext_tiny_stage_1_block_2_identity_add",
        "convnext_tiny_stage_2_block_8_identity_add",
        None,  # the final LayerNormalization, numbered per process
    ],
    "densenet121": [
        "pool1",
        "conv2_block6_concat",
        "conv3_block12_concat",
        "conv4_block24_concat",
        "relu",
    ],
}
# Families whose transfer test runs by default (batch norm, residual `+` operations, SE and
# hard-swish arithmetic); --runslow runs every family (ConvNeXt alone takes 30 s on 2 cores).
DEFAULT_FAMILIES = ("resnet50", "mobilenet_v2", "mobilenet_v3_small")


def weights_by_layer(model):
    return {layer.name: [w.copy() for w in layer.get_weights()] for layer in model.layers}


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def one_step(model, images):
    """One SGD step on `images`; eager, so a big backbone needs no tracing."""
    labels = np.arange(len(images)) % 3
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy", run_eagerly=True)
    model.train_on_batch(images, labels)


def photos(preprocessing):
    """8 random 32x32 RGB images as the data pipeline gives them to the model. (Fewer, or
    near-identical ones, can leave a layer's gradient 0: batch norm over a 1x1 map cancels
    it, stochastic depth can drop a block for every image.)"""
    pixels = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype(np.float32)
    return preprocessing.eval_tf(pixels).numpy()


def assert_stage_transfer(base, n, mode, images):
    """Transfers `base` at n, trains one step on `images`, and checks the paper's definition:
    the first n blocks copied, frozen ones bit-identical afterwards (batch norm's moving
    statistics included: it ran in inference mode), every other layer with trainable weights
    changed (batch norm's statistics too); the base untouched."""
    before = weights_by_layer(base)
    model = surgery.transfer(base, n, mode)
    built = weights_by_layer(model)
    one_step(model, images)
    after = weights_by_layer(model)
    prefix = {layer.name for layer in surgery.block_layers(base, n)}
    head = surgery.head_layer(model).name
    checked = {"frozen": 0, "changed": 0}
    for layer in model.layers:
        if not layer.weights or layer.name == head:
            continue
        assert all(np.isfinite(w).all() for w in after[layer.name]), layer.name
        if layer.name in prefix:
            assert same(built[layer.name], before[layer.name]), f"{layer.name} not copied"
        if layer.name in prefix and mode == "frozen":
            assert not layer.trainable
            assert same(after[layer.name], before[layer.name]), f"frozen {layer.name} moved"
            checked["frozen"] += 1
        elif layer.trainable_weights:
            moved = [not np.array_equal(a, b) for a, b in zip(after[layer.name], built[layer.name])]
            trained = [m for m, w in zip(moved, layer.weights) if w.trainable]
            assert any(trained), f"{layer.name} ({mode}, n={n}) did not train"
            if isinstance(layer, keras.layers.BatchNormalization):  # training mode
                statistics = [m for m, w in zip(moved, layer.weights) if not w.trainable]
                assert all(statistics), f"{layer.name} ({mode}, n={n}) kept its statistics"
            checked["changed"] += 1
    assert all(same(base.get_layer(name).get_weights(), w) for name, w in before.items())
    return checked


@pytest.mark.parametrize("arch", FAMILY_CUTS)
def test_each_family_has_a_handful_of_stage_cuts_found_from_its_structure(arch):
    model = models.build(arch, num_classes=3, input_shape=(32, 32, 3), dropout=0.0)
    cuts = surgery.cut_layers(model)
    expected = FAMILY_CUTS[arch]
    assert [c if e else None for c, e in zip(cuts, expected, strict=True)] == expected
    assert len(cuts) < len(surgery.weight_layers(model)) / 10


@pytest.mark.parametrize(
    "arch",
    [
        arch if arch in DEFAULT_FAMILIES else pytest.param(arch, marks=pytest.mark.slow)
        for arch in FAMILY_CUTS
    ],
)
def test_family_transfers_frozen_and_fine_tuned_at_two_stage_cuts(arch):
    keras.utils.set_random_seed(0)
    base = models.build(arch, num_classes=3, input_shape=(32, 32, 3), dropout=0.0)
    images = photos(Preprocessing(**models.input_spec_for(arch, 32, (32, 32, 3))))
    cuts = surgery.cut_layers(base)
    for n in (2, len(cuts) - 1):
        frozen = assert_stage_transfer(base, n, "frozen", images)
        tuned = assert_stage_transfer(base, n, "fine_tuned", images)
        assert frozen["frozen"] > 0 and frozen["changed"] > 0 and tuned["frozen"] == 0


def test_stage_cuts_are_closed_prefixes():
    """Cutting a ResNet at a stage end leaves nothing of a residual block behind: the prefix
    up to the cut is a model of its own, and the rest takes only the cut's output."""
    base = models.build("resnet50", num_classes=3, input_shape=(32, 32, 3), dropout=0.0)
    layers = base.layers
    position = {id(layer.output): index for index, layer in enumerate(layers)}
    for name in surgery.cut_layers(base):
        end = layers.index(base.get_layer(name))
        for later in layers[end + 1 :]:
            for tensor in keras.tree.flatten(later.input):
                assert position[id(tensor)] >= end, f"{later.name} reaches behind {name}"


@pytest.mark.parametrize(
    "arch", ["resnet50", "resnet50_v2", "densenet121", "efficientnet_b0", "mobilenet_v3_small"]
)
def test_each_family_gets_its_own_preprocess_input(arch):
    """data.Preprocessing with the arch's normalization computes its keras.applications
    preprocess_input: Caffe's BGR means, [-1, 1], torch's standardization, or nothing."""
    pixels = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    spec = models.input_spec_for(arch, 32, (32, 32, 3))
    ours = Preprocessing(**spec).eval_tf(pixels).numpy()
    module = models.applications.BACKBONES[arch][0]
    theirs = getattr(keras.applications, module).preprocess_input(pixels.copy())
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-5, atol=1e-4)


def test_a_users_residual_model_with_plus_is_cut_at_its_stages(tmp_path):
    """A user's .keras ResNet whose residuals are written `x + shortcut` gets stage cuts."""

    def block(x, name):
        y = keras.layers.Conv2D(8, 3, padding="same", name=f"{name}_conv")(x)
        y = keras.layers.BatchNormalization(name=f"{name}_bn")(y)
        return keras.layers.ReLU(name=f"{name}_out")(x + y)

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", name="stem")(inputs)
    x = block(block(x, "a1"), "a2")
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", name="down")(x)
    x = keras.layers.Conv2D(8, 1, name="project")(x)
    x = block(x, "b1")
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="head")(x)
    path = str(tmp_path / "mine.keras")
    original = keras.Model(inputs, outputs)
    original.save(path)
    model = models.load_user_model(path)
    assert surgery.cut_layers(model) == ["a2_out", "b1_out"]
    pixels = np.random.default_rng(0).random((2, 16, 16, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(model(pixels)), np.asarray(original(pixels)))


def test_cut_every_keeps_every_kth_and_the_last():
    base = models.build("mobilenet_v2", num_classes=3, input_shape=(32, 32, 3), dropout=0.0)
    cuts = surgery.cut_layers(base)
    assert _cut_points(base, ModelConfig(cut_every=4)) == [cuts[3], cuts[5]]
    assert _cut_points(base, ModelConfig(cut_every=3)) == [cuts[2], cuts[5]]


@pytest.mark.parametrize(
    "model, message",
    [
        (ModelConfig(source_model="own.keras", cut_every=0), r"--cut_every=0 must be 1 or more"),
        (
            ModelConfig(source_model="own.keras", cut_every=2, cut_layers=("block_2_add",)),
            "pass one of the two",
        ),
        (ModelConfig(cut_every=2), "thins the cut points of a given source model"),
    ],
)
def test_cut_every_is_checked_before_anything_runs(tmp_path, model, message):
    experiment = config.Experiment(workdir=str(tmp_path / "work"), model=model)
    with pytest.raises(UsageError, match=message):
        config.validate(experiment)


def test_without_keras_hub_the_error_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "keras_hub", None)  # what an environment without it sees
    with pytest.raises(
        UsageError, match=r'needs keras-hub, an optional extra: pip install -e "\.\[hub\]"'
    ):
        models.load_hub_backbone(f"keras_hub:{tmp_path}")


# ----- keras-hub (the optional hub extra) -------------------------------------------------


@pytest.fixture(scope="module")
def keras_hub():
    return pytest.importorskip("keras_hub")


def save_resnet_preset(keras_hub, path):
    """A tiny keras-hub ResNet with random weights and an ImageNet-style image converter."""
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 32, 32],
        stackwise_num_blocks=[2, 2, 1],
        stackwise_num_strides=[1, 2, 2],
        block_type="basic_block",
        image_shape=(None, None, 3),
    )
    backbone.save_to_preset(path)
    keras_hub.layers.ResNetImageConverter(
        image_size=(32, 32),
        scale=[1 / (255 * s) for s in (0.229, 0.224, 0.225)],
        offset=[-m / s for m, s in zip((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))],
    ).save_to_preset(path)
    return backbone


def test_keras_hub_resnet_cuts_are_its_pyramid_outputs(keras_hub, tmp_path):
    backbone = save_resnet_preset(keras_hub, str(tmp_path))
    features, normalization = models.load_hub_backbone(f"keras_hub:{tmp_path}")
    model = models.classifier(features, num_classes=3)
    producer = {id(layer.output): layer.name for layer in backbone.layers}
    pyramid = [producer[id(tensor)] for tensor in backbone.pyramid_outputs.values()]
    assert (
        surgery.cut_layers(model)
        == pyramid
        == [
            "stack0_block1_out",
            "stack1_block1_out",
            "stack2_block0_out",
        ]
    )
    assert model.input_shape == (None, 32, 32, 3)  # the converter's size
    np.testing.assert_allclose(normalization["mean"], (123.675, 116.28, 103.53), rtol=1e-5)


def test_keras_hub_vit_is_cut_per_block_and_freezes_layer_norm_and_attention(keras_hub, tmp_path):
    keras.utils.set_random_seed(0)
    vit = keras_hub.models.ViTBackbone(
        image_shape=(32, 32, 3), patch_size=8, num_layers=4, num_heads=2, hidden_dim=16, mlp_dim=32
    )
    vit.save_to_preset(str(tmp_path))
    features, _ = models.load_hub_backbone(f"keras_hub:{tmp_path}")
    pixels = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(features(pixels)), np.asarray(vit(pixels)))
    base = models.classifier(features, num_classes=3)
    cuts = surgery.cut_layers(base)
    blocks = [f"vit_encoder_transformer_block_{i}" for i in (1, 2, 3)]
    assert cuts == [*blocks, "vit_encoder_ln"]
    paths = [weight.path for weight in base.get_layer(blocks[0]).weights]
    assert any("ln_1/gamma" in p for p in paths) and any("mha/query/kernel" in p for p in paths)
    images = photos(Preprocessing((32, 32), 3))
    for n in (1, 3):
        frozen = assert_stage_transfer(base, n, "frozen", images)
        assert frozen["frozen"] >= n and frozen["changed"] > 0
        assert assert_stage_transfer(base, n, "fine_tuned", images)["frozen"] == 0
    thinned = _cut_points(base, ModelConfig(cut_every=2))
    assert thinned == [cuts[1], cuts[3]]


def test_keras_hub_dinov2_is_unrolled_into_its_blocks(keras_hub, tmp_path):
    keras.utils.set_random_seed(0)
    dino = keras_hub.models.DINOV2Backbone(
        patch_size=8,
        num_layers=3,
        hidden_dim=16,
        num_heads=2,
        intermediate_dim=32,
        image_shape=(32, 32, 3),
        name="dino",
    )
    dino.save_to_preset(str(tmp_path))
    features, _ = models.load_hub_backbone(f"keras_hub:{tmp_path}")
    pixels = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(features(pixels)), np.asarray(dino(pixels)))
    model = models.classifier(features, num_classes=3)
    assert surgery.cut_layers(model) == [
        "dino_encoder_layers_0",
        "dino_encoder_layers_1",
        "dino_layernorm",
    ]


def test_bad_keras_hub_preset_dir_is_a_one_line_error(keras_hub, tmp_path):
    with pytest.raises(UsageError, match="is not a keras-hub preset directory") as error:
        models.load_hub_backbone(f"keras_hub:{tmp_path}")
    assert "\n" not in str(error.value)


@pytest.mark.e2e
def test_keras_hub_preset_through_the_own_model_study_and_export(keras_hub, tmp_path):
    """--mode=all on a tiny folder from a keras-hub preset on disk; the exported SavedModel,
    loaded in a new process, predicts what the Keras model predicts on the same images."""
    preset = str(tmp_path / "preset")
    save_resnet_preset(keras_hub, preset)
    rng = np.random.default_rng(0)
    names = ["ants", "bees"]
    folder = tmp_path / "images"
    images = rng.integers(0, 256, (20, 40, 48, 3), dtype=np.uint8)  # resized to 32x32
    for index, image in enumerate(images):
        (folder / names[index % 2]).mkdir(parents=True, exist_ok=True)
        keras.utils.save_img(str(folder / names[index % 2] / f"{index:02d}.png"), image)
    workdir = str(tmp_path / "work")
    done = run_cli(
        f"--flagfile={FLAGFILE}",
        f"--source_model=keras_hub:{preset}",
        f"--image_dir={folder}",
        f"--workdir={workdir}",
        "--layers=1,3",
        "--treatments=transfer,transfer_ft",
        "--seeds=0",
        "--epochs=1",
        "--batch_size=8",
    )
    assert done.returncode == 0, done.stderr[-4000:]
    records = {(r["treatment"], r["n"]): r for r in read_records(workdir)}
    assert sorted(records) == [
        ("base", 0),
        *[(t, n) for t in ("transfer", "transfer_ft") for n in (1, 3)],
    ]
    assert [records[("transfer", n)]["cut"] for n in (1, 3)] == [
        "stack0_block1_out",
        "stack2_block0_out",
    ]
    version = os.path.join(workdir, "export", "kerastransfer", "1")
    with open(os.path.join(version, "metadata.json")) as f:
        metadata = json.load(f)
    preprocessing = Preprocessing.from_json(metadata["export"]["preprocessing"])
    assert preprocessing.mean == (123.675, 116.28, 103.53)  # the preset's converter

    pixels = rng.integers(0, 256, (6, 32, 32, 3)).astype(np.float32)
    np.save(tmp_path / "pixels.npy", pixels)
    script = textwrap.dedent(f"""
        import json, numpy as np, tensorflow as tf
        served = tf.saved_model.load({version!r}).signatures["serving_default"]
        out = served(images=tf.constant(np.load({str(tmp_path / "pixels.npy")!r})))
        print(json.dumps(out["probabilities"].numpy().tolist()))
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    served = np.array(json.loads(result.stdout.strip().splitlines()[-1]))

    record = next(r for r in records.values() if r["run"] == metadata["run"])
    features, _ = models.load_hub_backbone(f"keras_hub:{preset}")
    model = surgery.fresh_clone(models.classifier(features, 2), record["num_classes"])
    model.load_weights(os.path.join(workdir, record["weights"]))
    expected = np.asarray(model(preprocessing.eval_tf(pixels), training=False))
    np.testing.assert_allclose(served, expected, rtol=1e-4, atol=1e-5)
