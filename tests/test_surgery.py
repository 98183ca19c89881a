"""Surgery: copy, freeze, fine-tune and re-initialize exactly as the paper defines them."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from helpers.cli import REPO
from helpers.transfer_asserts import TINY_WIDTHS, assert_transfer, weights_of
from kerastransfer import models, surgery
from kerastransfer.errors import UsageError


def tiny_base(num_classes=5):
    keras.utils.set_random_seed(1)
    return models.build(
        "caffenet_small", num_classes=num_classes, input_shape=(28, 28, 1), widths=TINY_WIDTHS
    )


def one_step(model, num_classes, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((16, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, num_classes, 16)
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)


@pytest.mark.parametrize("mode", surgery.PAPER_MODES)  # the recipes: test_recipes.py
@pytest.mark.parametrize("n", [1, 3, 5, 7])
def test_transfer_copies_freezes_and_reinitializes(mode, n):
    base = tiny_base()
    names = [layer.name for layer in surgery.weight_layers(base)]
    base_before = weights_of(base, names)
    model = surgery.transfer(base, n, mode, num_classes=3)
    built = weights_of(model, names[:-1])
    one_step(model, 3)
    assert model.output_shape == (None, 3)
    assert_transfer(base, model, n, mode, base_before, built)


def test_same_class_count_keeps_head_size_and_extra_copied_layers_train():
    base = tiny_base()
    names = [layer.name for layer in surgery.weight_layers(base)]
    before = weights_of(base, names)
    model = surgery.transfer(base, 2, "frozen", extra_copied=1)
    assert model.output_shape == (None, 5)
    np.testing.assert_array_equal(model.get_layer("conv3").get_weights()[0], before["conv3"][0])
    assert model.get_layer("conv3").trainable and not model.get_layer("conv2").trainable
    assert not np.array_equal(model.get_layer("conv4").get_weights()[0], before["conv4"][0])


def test_blocks_follow_the_paper():
    base = tiny_base()
    assert surgery.num_blocks(base) == 7
    assert surgery.cut_after(base, 1).name == "pool1"  # pooling goes with conv1
    assert surgery.cut_after(base, 5).name == "flatten"
    assert surgery.cut_after(base, 6).name == "drop6"  # dropout goes with fc6
    assert [layer.name for layer in surgery.block_layers(base, 2)] == [
        "conv1",
        "pool1",
        "conv2",
        "pool2",
    ]


@pytest.mark.parametrize("n", [0, 8, -1])
def test_n_out_of_range_is_a_one_line_error(n):
    with pytest.raises(UsageError, match=rf"n={n} is out of range .* use 1\.\.7") as error:
        surgery.transfer(tiny_base(), n, "frozen")
    assert "\n" not in str(error.value)


def test_unknown_mode_and_cut_layer():
    with pytest.raises(UsageError, match="unknown transfer mode 'thawed'"):
        surgery.transfer(tiny_base(), 1, "thawed")
    with pytest.raises(UsageError, match="cut layer\\(s\\) nope not in model"):
        surgery.cut_layers(tiny_base(), ["conv1", "nope"])


def test_frozen_batch_norm_runs_in_inference_mode():
    keras.utils.set_random_seed(0)
    base = models.build("mobilenet_v2", num_classes=3, input_shape=(32, 32, 3), dropout=0.0)
    model = surgery.transfer(base, 1, "frozen")  # n=1 ends at block_2_add
    frozen, trained = model.get_layer("bn_Conv1"), model.get_layer("block_3_expand_BN")
    before = [bn.moving_mean.numpy().copy() for bn in (frozen, trained)]
    one_step_rgb = np.random.default_rng(0).random((8, 32, 32, 3), dtype=np.float32)
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    model.fit(one_step_rgb, np.zeros(8), epochs=1, verbose=0)
    np.testing.assert_array_equal(frozen.moving_mean.numpy(), before[0])
    assert not np.array_equal(trained.moving_mean.numpy(), before[1])
    assert not frozen.trainable and trained.trainable


def test_user_model_with_named_cuts(tmp_path):
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, name="a")(inputs)
    x = keras.layers.Conv2D(4, 3, name="b")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="head")(x)
    path = tmp_path / "mine.keras"
    keras.Model(inputs, outputs, name="mine").save(path)
    base = models.load_user_model(str(path))
    model = surgery.transfer(base, 1, "frozen", num_classes=4, cut_names=["a", "gap"])
    assert not model.get_layer("a").trainable and model.get_layer("b").trainable
    assert model.output_shape == (None, 4)


def test_transfer_under_mirrored_strategy_on_two_cpus(tmp_path):
    """The same contract holds when variables live in a MirroredStrategy over 2 CPUs."""
    script = textwrap.dedent("""
        import json, sys, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras
        sys.path.insert(0, "tests")
        from test_surgery import tiny_base, one_step
        from helpers.transfer_asserts import assert_transfer, weights_of
        from kerastransfer import surgery
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        results = {}
        with strategy.scope():
            base = tiny_base()
            names = [layer.name for layer in surgery.weight_layers(base)]
            for mode in surgery.PAPER_MODES:
                before = weights_of(base, names)
                model = surgery.transfer(base, 3, mode, num_classes=3)
                built = weights_of(model, names[:-1])
                one_step(model, 3)
                assert_transfer(base, model, 3, mode, before, built)
                results[mode] = strategy.num_replicas_in_sync
        print(json.dumps(results))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {m: 2 for m in surgery.PAPER_MODES}
