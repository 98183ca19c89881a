"""Each setting is declared once, in config.py: its flag, help, allowed values, checks and
result-flag mark all come from that one `config.setting` field, and every way of making an
Experiment (from_flags, replace, from_json) validates it."""

import copy
import dataclasses
import re

import pytest
from absl import flags

from kerastransfer import config
from kerastransfer import flags as kt_flags
from kerastransfer.errors import UsageError


@dataclasses.dataclass(frozen=True)
class NewSection:
    """A section as a contributor would add it: each field is the flag's only declaration."""

    colour: str = config.setting(
        "red", "Which colour the runs are.", choices=("red", "blue"), result=True
    )
    crayons: int = config.setting(3, "How many crayons each run gets.", check=config.positive)
    sizes: tuple = config.setting((1, 2), "Crayon sizes.", kind=config.INTS)


def one_line_error(match, make):
    """The UsageError `make()` raises, checked to be the one line run.py prints."""
    with pytest.raises(UsageError, match=re.escape(match)) as raised:
        make()
    assert "\n" not in str(raised.value)


def test_a_new_field_gets_its_flag_help_choices_and_default_from_its_declaration():
    fresh = flags.FlagValues()
    kt_flags.define(NewSection, flag_values=fresh)
    assert fresh["colour"].help == "<red|blue>: Which colour the runs are."  # absl's prefix
    assert fresh["crayons"].help == "How many crayons each run gets."
    assert fresh["colour"].default == "red"
    assert fresh["colour"].parser.enum_values == ["red", "blue"]
    assert fresh["crayons"].flag_type() == "int"
    assert fresh["crayons"].default == 3
    assert fresh["sizes"].flag_type() == "comma separated list of strings"
    assert fresh["sizes"].default == ["1", "2"]
    fresh(["test", "--colour=blue", "--crayons=5"])
    assert (fresh.colour, fresh.crayons) == ("blue", 5)
    with pytest.raises(flags.IllegalFlagValueError, match="value should be one of <red|blue>"):
        fresh(["test", "--colour=green"])


def test_a_new_fields_check_refuses_a_bad_value_in_one_line():
    config.check_settings(NewSection())
    one_line_error(
        "--crayons=0 must be positive, e.g. --crayons=3",
        lambda: config.check_settings(NewSection(crayons=0)),
    )
    one_line_error(
        "flag --colour=green: value should be one of <red|blue>",
        lambda: config.check_settings(NewSection(colour="green")),
    )


def test_result_true_puts_a_new_field_among_the_result_flags():
    assert config.result_flags(NewSection) == ("colour",)
    assert config.RESULT_FLAGS == config.result_flags(config.Experiment, *config.SECTIONS.values())


def test_a_list_setting_must_say_what_it_lists():
    with pytest.raises(TypeError, match="kind=INTS or STRINGS"):
        config.setting((), "A list of what?")


def test_every_flag_is_a_declared_setting_with_its_help_and_default():
    for name, field in config.SETTINGS.items():
        flag = kt_flags.FLAGS[name]
        choices = field.metadata["choices"]
        prefix = f"<{'|'.join(choices)}>: " if choices else ""
        assert flag.help == prefix + field.metadata["help"], name
        listed = isinstance(field.default, tuple)
        assert flag.default == ([str(v) for v in field.default] if listed else field.default)
    # absl.logging and others define flags of their own in FLAGS: compare ours only.
    ours = {flag.name for flag in kt_flags.FLAGS.get_flags_for_module(kt_flags)}
    assert sorted(config.SETTINGS) == sorted(ours)


def test_replace_validates_each_field_and_each_combination():
    experiment = config.Experiment(workdir="unused")
    one_line_error(
        "--batch_size=0 must be positive, e.g. --batch_size=128",
        lambda: experiment.replace(batch_size=0),
    )
    one_line_error(
        "flag --directions=CD: value should be one of <AB|BA|both>",
        lambda: experiment.replace(directions="CD"),
    )
    one_line_error("--prune=2 picks cut points", lambda: experiment.replace(prune=2))
    # The workdir is the command's to check: library code copies experiments without one.
    assert config.Experiment().replace(batch_size=64).solver.batch_size == 64


def test_from_json_validates_and_still_reads_an_old_flat_config_without_a_workdir():
    for stored in ({"batch_size": -1}, {"solver": {"batch_size": -1}}):
        one_line_error(
            "--batch_size=-1 must be positive, e.g. --batch_size=128",
            lambda stored=stored: config.Experiment.from_json(stored),
        )
    old = config.Experiment.from_json({"layers": [2, 3], "retired_flag": 1})
    assert (old.grid.layers, old.workdir) == ((2, 3), "")
    experiment = config.Experiment(workdir="runs/x").replace(seeds=(0, 1))
    assert config.Experiment.from_json(experiment.to_json()) == experiment


def test_from_flags_checks_the_workdir_too():
    values = copy.deepcopy(kt_flags.FLAGS)
    values.unparse_flags()
    values(["test"])
    one_line_error("--workdir is required", lambda: config.from_flags(values))
