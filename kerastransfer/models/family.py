"""What models/ asks of an architecture family: the models of one registry.ARCHITECTURES entry
(caffenet, caffenet_small, the keras.applications backbones), registered by the family's own
module. Plain Python: the family's module holds the Keras."""

import dataclasses
from collections.abc import Callable
from typing import Any

from kerastransfer.models.preprocessing import InputSpec


@dataclasses.dataclass(frozen=True)
class Family:
    """How the architectures of one registry entry are built, fed and cut into blocks.

    Attributes:
        build: build(arch, *, num_classes, input_shape, widths, weight_decay, dropout,
            weights) -> a fresh, uncompiled keras.Model (models.build documents the
            arguments; a family ignores those it has no use for).
        input_spec: input_spec(arch, image_size, source_image_shape) -> the
            data.Preprocessing arguments of the model's input (models.input_spec_for).
        cut_points: cut_points(model) -> the names of the layers that end blocks 1, 2, ...
            of a model the family built: what surgery calls "layer n".
    """

    # Callable[..., keras.Model]: its arguments are keyword ones (models.build's), and
    # keras.Model is Any to the type checker (Keras ships no type information).
    build: Callable[..., Any]
    input_spec: Callable[[str, int, tuple[int, ...] | None], InputSpec]
    cut_points: Callable[[Any], list[str] | None]
