"""registry.py: what --dataset and --arch accept is declared once, config.py checks and
explains both flags from it, each declared source's module registers the loader load_source
uses, and each architecture family's module the Family that models/ asks to build a network,
describe its input and cut it into blocks."""

import pytest

from kerastransfer import config, data, models, registry, surgery
from kerastransfer.data import sources
from kerastransfer.errors import UsageError
from kerastransfer.models.preprocessing import IMAGENET_MEAN_RGB


def test_each_dataset_value_reaches_the_loader_of_its_own_module():
    expected = {
        "fashion_mnist": sources.fashion_mnist,
        "imagenet2012": sources.imagenet2012,
        "tfds:imagenet2012": sources.imagenet2012,  # the tars, never TFDS's download
        "image_folder": sources.image_folder,
        "tfds:cifar100": sources.tfds_catalog,
        "tfds:fashion_mnist": sources.tfds_catalog,
    }
    for value, module in expected.items():
        assert registry.DATASETS.implementation(value) is module.load, value
    assert data.load_source is sources.load_source


def test_every_declared_dataset_entry_has_a_registered_loader():
    for entry in registry.DATASETS.entries.values():
        for value in entry.values:
            value = value.replace("NAME", "cifar10")  # a prefix entry's written form
            assert callable(registry.DATASETS.implementation(value)), value


@pytest.mark.parametrize("value", ["mnist", "tfds:", "TFDS:cifar10", ""])
def test_an_unknown_dataset_is_refused_in_one_line_by_the_config_and_the_loader(value):
    message = (
        f"unknown --dataset={value!r}; known: fashion_mnist, imagenet2012, image_folder, "
        "tfds:NAME (e.g. --dataset=tfds:cifar100)"
    )
    with pytest.raises(UsageError) as raised:
        config.Experiment().replace(dataset=value)
    assert str(raised.value) == message
    with pytest.raises(UsageError) as raised:
        data.load_source(value)
    assert str(raised.value) == message


def test_the_dataset_flag_help_lists_each_entry():
    help_text = config.SETTINGS["dataset"].metadata["help"]
    assert help_text == registry.DATASETS.help()
    assert help_text == (
        "fashion_mnist (local Debian files), imagenet2012 (built from the ILSVRC2012 tars in "
        "--manual_dir), image_folder (with --image_dir), or tfds:NAME (any TFDS image "
        "classification dataset)."
    )


def test_a_new_entry_takes_its_values_and_registers_once():
    colours = registry.Registry(
        "colour",
        [
            registry.Entry("red", "red (warm)", aliases=("rgb:red",)),
            registry.Entry("rgb:NAME", "rgb:NAME (any named colour)", prefix="rgb:"),
            registry.Entry("blues", "a blue", members=("navy", "teal")),
        ],
        known_as="known colours",
    )
    assert colours.help() == "red (warm), rgb:NAME (any named colour), or a blue."
    assert colours.values() == ("red", "rgb:NAME", "navy", "teal")
    with pytest.raises(LookupError, match="nothing registered entry 'red'"):
        colours.implementation("red")

    @colours.register("red")
    def paint_red():
        return "red"

    @colours.register("rgb:NAME")
    def paint_named():
        return "named"

    # An exact value or alias wins over a prefix that also takes it.
    assert colours.implementation("rgb:red") is paint_red
    assert colours.implementation("rgb:olive") is paint_named
    assert colours.entry("teal").key == "blues"
    with pytest.raises(ValueError, match="registered twice"):
        colours.register("red")(paint_red)
    with pytest.raises(ValueError, match="declares no entry 'green'"):
        colours.register("green")
    with pytest.raises(UsageError, match=r"^unknown --colour='rgb:'; known colours: red, "):
        colours.entry("rgb:")


def test_every_arch_value_reaches_the_family_of_its_module():
    for arch in registry.ARCHITECTURES.values():
        family = registry.ARCHITECTURES.implementation(arch)
        module = models.caffenet if arch.startswith("caffenet") else models.applications
        assert family.build.__module__ == module.__name__, arch
    assert registry.ARCHITECTURES.values()[:3] == ("caffenet", "caffenet_small", "resnet50")
    assert registry.ARCHITECTURES.values()[2:] == tuple(models.BACKBONES)


def test_the_arch_flag_is_checked_and_explained_from_the_registry():
    assert config.SETTINGS["arch"].metadata["help"] == registry.ARCHITECTURES.help()
    with pytest.raises(UsageError) as raised:
        config.Experiment().replace(arch="vgg16")
    assert str(raised.value) == (
        "unknown --arch='vgg16'; known architectures: " + ", ".join(registry.ARCHITECTURES.values())
    )
    assert config.Experiment().replace(arch="densenet121").model.arch == "densenet121"


def test_each_family_gives_its_input():
    assert models.input_spec_for("caffenet", 0, (28, 28, 1)) == {
        "image_size": (227, 227),
        "channels": 3,
        "scale": 1.0,
        "mean": IMAGENET_MEAN_RGB,
        "resize_shorter": 256,
    }
    assert models.input_spec_for("caffenet_small", 0, (28, 28, 1)) == {
        "image_size": (28, 28),
        "channels": 1,
    }
    assert models.input_spec_for("caffenet_small", 32, None) == {
        "image_size": (32, 32),
        "channels": 3,
    }
    # MobileNetV2 maps pixels 0..255 to [-1, 1]: (x - 127.5) / 127.5.
    assert models.input_spec_for("mobilenet_v2", 0, (28, 28, 1)) == {
        "image_size": (28, 28),
        "channels": 3,
        "mean": (127.5, 127.5, 127.5),
        "scale": pytest.approx(1 / 127.5),
        "reverse_channels": False,
    }


def test_each_family_cuts_the_networks_it_builds():
    small = models.build("caffenet_small", num_classes=3, input_shape=(28, 28, 1))
    chain = ["pool1", "pool2", "conv3", "conv4", "flatten", "drop6", "drop7"]
    assert models.cut_points("caffenet_small", small) == chain
    resnet = models.build("resnet50", num_classes=3, input_shape=(32, 32, 3), dropout=0.0)
    stages = ["pool1_pool", *(f"conv{i}_block{b}_out" for i, b in ((2, 3), (3, 4), (4, 6), (5, 3)))]
    assert models.cut_points("resnet50", resnet) == stages
    # What surgery finds in a model without being told agrees with the family.
    assert surgery.cut_layers(small) == chain and surgery.cut_layers(resnet) == stages
