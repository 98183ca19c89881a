"""registry.py: what --dataset accepts is declared once, config.py checks and explains the flag
from it, and each declared source's module registers the loader load_source uses."""

import pytest

from kerastransfer import config, data, registry
from kerastransfer.data import sources
from kerastransfer.errors import UsageError


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
