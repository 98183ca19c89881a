"""What --dataset and --arch accept, declared here and implemented where they belong.

config.py checks and explains those two flags before TensorFlow loads, so what they accept
(each name with the phrase --help shows for it) is declared here, in plain Python. What
implements a name lives with its kind and registers itself under it on import: a dataset's
loader in data/sources/ (one module per source), an architecture family in models/ (one
module per family). So a new source or family is its module plus its entry below.

May import: errors (nothing heavy: config.py imports this module).

Example:
    >>> DATASETS.entry("tfds:cifar100").key
    'tfds:NAME'
    >>> load = DATASETS.implementation("tfds:cifar100")  # once data/ is imported
"""

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from kerastransfer.errors import UsageError

# What implements an entry: a dataset's loader (data/sources/) or an architecture family
# (models.family.Family). Their types live in those packages, which this module may not
# import, so `implementation` returns Any and its callers name the type.
Implementation = TypeVar("Implementation")


@dataclasses.dataclass(frozen=True)
class Entry:
    """One thing a flag can name: a value, a family of values, or any value with a prefix.

    Attributes:
        key: what its implementation registers under; the flag's value too, unless the
            entry has `members` or a `prefix`.
        help: the phrase the flag's help shows for it.
        members: the values of a family (its architectures); empty: `key` is the value.
        aliases: further values meaning the same, not listed (tfds:imagenet2012).
        prefix: the entry takes every value that starts with this and goes on (tfds:).
    """

    key: str
    help: str
    members: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    prefix: str = ""

    @property
    def values(self) -> tuple[str, ...]:
        """The values it takes, as an error message lists them."""
        return self.members or (self.key,)

    def takes(self, value: str) -> bool:
        if self.prefix:
            return value.startswith(self.prefix) and len(value) > len(self.prefix)
        return value in self.values or value in self.aliases


class Registry:
    """A flag's entries, in the order its help and errors list them, and what implements
    each (registered by the implementing module).

    Args:
        flag: the flag's name, for messages.
        entries: its Entry objects.
        known_as: how an error introduces the known values ("known architectures").
        example: a value an error suggests besides them (empty: none).
    """

    def __init__(
        self, flag: str, entries: Iterable[Entry], *, known_as: str = "known", example: str = ""
    ) -> None:
        self.flag, self.known_as, self.example = flag, known_as, example
        self.entries = {entry.key: entry for entry in entries}
        self._implementations: dict[str, Any] = {}

    def values(self) -> tuple[str, ...]:
        """Every value the flag takes (a prefix entry as written, e.g. tfds:NAME)."""
        return tuple(value for entry in self.entries.values() for value in entry.values)

    def help(self) -> str:
        """The flag's help: each entry's phrase, "A, B, or C."."""
        *first, last = [entry.help for entry in self.entries.values()]
        return f"{', '.join(first)}, or {last}." if first else f"{last}."

    def entry(self, value: str) -> Entry:
        """The Entry that takes `value`: an exact value or alias first, then a prefix.

        Raises:
            UsageError: no entry takes it; the message lists the known values.
        """
        for prefixed in (False, True):
            for entry in self.entries.values():
                if bool(entry.prefix) == prefixed and entry.takes(value):
                    return entry
        known = ", ".join(self.values())
        example = f" (e.g. --{self.flag}={self.example})" if self.example else ""
        raise UsageError(f"unknown --{self.flag}={value!r}; {self.known_as}: {known}{example}")

    def check(self, flag: str, value: str, default: str) -> None:
        """config.setting's check: refuses a value no entry takes."""
        self.entry(value)

    def register(self, key: str) -> Callable[[Implementation], Implementation]:
        """Decorator: `implementation` implements the entry `key` (declared above)."""
        if key not in self.entries:
            raise ValueError(f"--{self.flag} declares no entry {key!r} in registry.py")

        def add(implementation: Implementation) -> Implementation:
            if key in self._implementations:
                raise ValueError(f"--{self.flag} entry {key!r} is registered twice")
            self._implementations[key] = implementation
            return implementation

        return add

    def implementation(self, value: str) -> Any:
        """What implements the entry that takes `value`.

        Raises:
            UsageError: no entry takes `value`.
            LookupError: its entry is declared but its module did not register (a bug: the
                package that holds it imports each of its modules).
        """
        entry = self.entry(value)
        if entry.key not in self._implementations:
            raise LookupError(f"--{self.flag}={value}: nothing registered entry {entry.key!r}")
        return self._implementations[entry.key]


DATASETS = Registry(
    "dataset",
    [
        Entry("fashion_mnist", "fashion_mnist (local Debian files)"),
        Entry(
            "imagenet2012",
            "imagenet2012 (built from the ILSVRC2012 tars in --manual_dir)",
            aliases=("tfds:imagenet2012",),  # needs the tars too: never downloads
        ),
        Entry("image_folder", "image_folder (with --image_dir)"),
        Entry("tfds:NAME", "tfds:NAME (any TFDS image classification dataset)", prefix="tfds:"),
    ],
    example="tfds:cifar100",
)

# keras.applications backbones by --arch name: (the keras.applications module whose
# preprocess_input the model expects, the constructor). One family per module; every model
# of a family is listed. models/applications.py builds them; a new one is a line here.
KERAS_APPLICATIONS = {
    "resnet50": ("resnet", "ResNet50"),
    "resnet101": ("resnet", "ResNet101"),
    "resnet152": ("resnet", "ResNet152"),
    "resnet50_v2": ("resnet_v2", "ResNet50V2"),
    "resnet101_v2": ("resnet_v2", "ResNet101V2"),
    "resnet152_v2": ("resnet_v2", "ResNet152V2"),
    "mobilenet_v2": ("mobilenet_v2", "MobileNetV2"),
    "mobilenet_v3_small": ("mobilenet_v3", "MobileNetV3Small"),
    "mobilenet_v3_large": ("mobilenet_v3", "MobileNetV3Large"),
    **{f"efficientnet_b{i}": ("efficientnet", f"EfficientNetB{i}") for i in range(8)},
    **{
        f"efficientnet_v2_{size.lower()}": ("efficientnet_v2", f"EfficientNetV2{size}")
        for size in ("B0", "B1", "B2", "B3", "S", "M", "L")
    },
    **{
        f"convnext_{size.lower()}": ("convnext", f"ConvNeXt{size}")
        for size in ("Tiny", "Small", "Base", "Large", "XLarge")
    },
    "densenet121": ("densenet", "DenseNet121"),
    "densenet169": ("densenet", "DenseNet169"),
    "densenet201": ("densenet", "DenseNet201"),
}

ARCHITECTURES = Registry(
    "arch",
    [
        Entry("caffenet", "caffenet"),
        Entry("caffenet_small", "caffenet_small"),
        Entry(
            "keras.applications",
            "a keras.applications backbone: resnet50/101/152(_v2), mobilenet_v2, "
            "mobilenet_v3_small/large, efficientnet_b0..b7, efficientnet_v2_b0..b3/s/m/l, "
            "convnext_tiny/small/base/large/xlarge, densenet121/169/201",
            members=tuple(KERAS_APPLICATIONS),
        ),
    ],
    known_as="known architectures",
)
