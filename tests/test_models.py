"""Architectures: CaffeNet as the paper defines it, the small variant, backbones, registry."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerastransfer import models
from kerastransfer.errors import UsageError
from kerastransfer.models.layers import LocalResponseNormalization


def conv_params(size, in_channels, filters, groups=1):
    return size * size * (in_channels // groups) * filters + filters


def test_caffenet_has_the_papers_shapes_and_parameter_count():
    model = models.build("caffenet", num_classes=1000, input_shape=(227, 227, 3))
    # docs/paper.md's "Network" table, by hand: conv1 96x11x11/4, conv2 256x5x5 g2,
    # conv3 384x3x3, conv4 384x3x3 g2, conv5 256x3x3 g2, pool5 output 6x6x256, fc6/fc7 4096,
    # fc8 1000.
    expected = {
        "conv1": conv_params(11, 3, 96),
        "conv2": conv_params(5, 96, 256, groups=2),
        "conv3": conv_params(3, 256, 384),
        "conv4": conv_params(3, 384, 384, groups=2),
        "conv5": conv_params(3, 384, 256, groups=2),
        "fc6": 6 * 6 * 256 * 4096 + 4096,
        "fc7": 4096 * 4096 + 4096,
        "fc8": 4096 * 1000 + 1000,
    }
    for name, count in expected.items():
        assert model.get_layer(name).count_params() == count, name
    assert model.count_params() == sum(expected.values()) == 60_965_224
    shapes = {
        "conv1": (55, 55, 96),
        "norm1": (27, 27, 96),
        "norm2": (13, 13, 256),
        "conv5": (13, 13, 256),
        "pool5": (6, 6, 256),
        "fc8": (1000,),
    }
    for name, shape in shapes.items():
        assert model.get_layer(name).output.shape[1:] == shape, name
    biases = {name: float(model.get_layer(name).get_weights()[1].mean()) for name in expected}
    assert biases == {
        "conv1": 0,
        "conv2": 1,
        "conv3": 0,
        "conv4": 1,
        "conv5": 1,
        "fc6": 1,
        "fc7": 1,
        "fc8": 0,
    }
    assert model.get_layer("fc6").get_weights()[0].std() == pytest.approx(0.005, rel=0.02)
    assert model.get_layer("conv3").get_weights()[0].std() == pytest.approx(0.01, rel=0.02)


def test_lrn_matches_tensorflow_with_caffe_parameters():
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 16)).astype(np.float32) * 10
    ours = LocalResponseNormalization(size=5, alpha=1e-4, beta=0.75)(x)
    # Caffe divides alpha by the window size; TF takes a radius and an unscaled alpha.
    theirs = tf.nn.local_response_normalization(
        x, depth_radius=2, bias=1.0, alpha=1e-4 / 5, beta=0.75
    )
    np.testing.assert_allclose(np.asarray(ours), theirs.numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(np.asarray(ours), x)  # the test data is in the non-trivial regime


def test_caffenet_small_keeps_the_roles():
    model = models.build("caffenet_small", num_classes=5, input_shape=(32, 32, 3))
    weighted = [layer.name for layer in model.layers if layer.weights]
    assert weighted == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    pools = [layer.name for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert pools == ["pool1", "pool2", "pool5"]
    drops = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert drops == ["drop6", "drop7"]
    assert model.output_shape == (None, 5)


def test_bad_input_to_the_library_is_a_value_error():
    """Python callers of the package can catch its UsageError as the ValueError it is."""
    with pytest.raises(ValueError, match="'nope'; known architectures: caffenet, "):
        models.build("nope", num_classes=2, input_shape=(28, 28, 1))


def test_backbones_and_registry_errors(tmp_path):
    model = models.build("resnet50", num_classes=4, input_shape=(32, 32, 3))
    assert model.output_shape == (None, 4) and model.name == "resnet50"
    with pytest.raises(
        UsageError,
        match="unknown --arch='alexnet'; known architectures: "
        "caffenet, caffenet_small, resnet50, .*, mobilenet_v2, .*, convnext_tiny, .*densenet201$",
    ):
        models.build("alexnet", num_classes=2, input_shape=(28, 28, 1))
    with pytest.raises(
        UsageError, match=r"--arch=resnet50 cannot take 28x28 images .*--image_size"
    ):
        models.build("resnet50", num_classes=2, input_shape=(28, 28, 3))
    with pytest.raises(UsageError, match="weights file .* does not exist"):
        models.build(
            "mobilenet_v2",
            num_classes=2,
            input_shape=(32, 32, 3),
            weights=str(tmp_path / "none.h5"),
        )
    with pytest.raises(UsageError, match="does not exist; pass a saved .keras file"):
        models.load_user_model(str(tmp_path / "x.keras"))


def test_backbone_weights_load_from_a_local_file(tmp_path):
    source = keras.applications.MobileNetV2(
        include_top=False, weights=None, input_shape=(32, 32, 3)
    )
    path = str(tmp_path / "mnv2.weights.h5")
    source.save_weights(path)
    model = models.build("mobilenet_v2", num_classes=3, input_shape=(32, 32, 3), weights=path)
    np.testing.assert_array_equal(
        model.get_layer("Conv1").get_weights()[0], source.get_layer("Conv1").get_weights()[0]
    )
    with pytest.raises(UsageError, match=r"does not fit --arch=mobilenet_v3_small .*MobileNetV3"):
        models.build("mobilenet_v3_small", num_classes=3, input_shape=(32, 32, 3), weights=path)


@pytest.mark.parametrize(
    "arch, rate",
    [("mobilenet_v2", 0.5), ("mobilenet_v2", 0.7), ("mobilenet_v2", 0.2), ("caffenet_small", 0.7)],
)
def test_every_architecture_gets_the_dropout_it_asks_for(arch, rate):
    # A backbone's rate used to be dropped to 0 whenever it was >= 0.5.
    model = models.build(arch, num_classes=3, input_shape=(32, 32, 3), dropout=rate)
    rates = [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert rates == ([rate] if arch in models.BACKBONES else [rate, rate])


def test_dropout_zero_and_out_of_range():
    model = models.build("mobilenet_v2", num_classes=3, input_shape=(32, 32, 3), dropout=0.0)
    assert not [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    for rate in (1.0, -0.1):
        for arch in ("caffenet_small", "mobilenet_v2"):
            with pytest.raises(UsageError, match=r"dropout=.* must be in \[0, 1\)"):
                models.build(arch, num_classes=3, input_shape=(32, 32, 3), dropout=rate)
