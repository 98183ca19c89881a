"""Every command-line flag of `python -m kerastransfer.run`, defined on import.

Each flag is the setting of the same name in config.py, which declares its default, help,
kind and allowed values; this module only turns those declarations into absl flags.

Flagfiles in configs/ set them; `--flagfile` may be given several times (later files win).
"""

from collections.abc import Callable
from typing import Any

from absl import flags

from kerastransfer import config

# A setting's kind -> the absl function that defines its flag.
_DEFINE: dict[str, Callable[..., object]] = {
    config.BOOL: flags.DEFINE_bool,
    config.INT: flags.DEFINE_integer,
    config.FLOAT: flags.DEFINE_float,
    config.STRING: flags.DEFINE_string,
    config.INTS: flags.DEFINE_list,
    config.STRINGS: flags.DEFINE_list,
}


def define(cls: type, flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines one absl flag for each setting of the dataclass `cls`, from its declaration."""
    for field in config.settings(cls):
        meta = field.metadata
        default: Any = field.default  # every setting has one (config.setting)
        if meta["kind"] == config.ENUM:
            flags.DEFINE_enum(
                field.name,
                default,
                list(meta["choices"]),
                meta["help"],
                flag_values=flag_values,
            )
            continue
        if meta["kind"] in (config.INTS, config.STRINGS):
            default = [str(value) for value in default]  # a list flag's default as absl wants
        _DEFINE[meta["kind"]](field.name, default, meta["help"], flag_values=flag_values)


for _cls in (config.Experiment, *config.SECTIONS.values()):
    define(_cls)

FLAGS = flags.FLAGS
