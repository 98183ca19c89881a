"""Architectures: `build(arch, ...)` for every --arch, with each architecture's input
(`input_spec_for`) and block cut points (`cut_points`), asked of the family that registered
the architecture in registry.ARCHITECTURES (one module per family: caffenet.py,
applications.py; models/family.py says what a family provides); stage cut points found from
a model's structure (`stage_cuts`, for users' own models too); keras-hub presets on disk
(`load_hub_backbone`, an optional extra).

May import: errors, registry; plain Keras only (no TensorFlow), never data/, training/ or
study/.

Example:
    >>> model = build("caffenet_small", num_classes=5, input_shape=(28, 28, 1))
"""

import os
from collections.abc import Sequence

import keras

from kerastransfer import registry
from kerastransfer.errors import UsageError
from kerastransfer.models import applications, caffenet  # noqa: F401  (each registers its family)
from kerastransfer.models.applications import BACKBONES, classifier, normalization
from kerastransfer.models.caffenet import SMALL_WIDTHS
from kerastransfer.models.family import Family
from kerastransfer.models.hub import is_hub_source
from kerastransfer.models.hub import load_backbone as load_hub_backbone
from kerastransfer.models.hub import weights_file as hub_weights_file
from kerastransfer.models.layers import LocalResponseNormalization
from kerastransfer.models.preprocessing import InputSpec
from kerastransfer.models.stages import stage_cuts, with_add_layers


def build(
    arch: str,
    *,
    num_classes: int,
    input_shape: Sequence[int],
    widths: Sequence[int] | None = None,
    weight_decay: float = 5e-4,
    dropout: float = 0.5,
    weights: str | None = None,
) -> keras.Model:
    """Builds a fresh, uncompiled model.

    Args:
        arch: a --arch value (registry.ARCHITECTURES).
        num_classes: size of the softmax head.
        input_shape: (H, W, C) of the preprocessed input.
        widths: caffenet_small only: seven widths (conv1..conv5 filters, fc6, fc7 units).
        weight_decay: Caffe-style decay on kernels (not biases) of caffenet and
            caffenet_small; 0 disables it.
        dropout: rate after fc6 and fc7 (caffenet*), before the head (backbones), in
            [0, 1); every architecture gets the rate it is given (0 = no dropout layer on a
            backbone).
        weights: keras.applications backbones (BACKBONES) only: a local weights file for
            the backbone without its top.

    Raises:
        UsageError: an unknown `arch`, a dropout outside [0, 1), a missing weights file.
    """
    family: Family = registry.ARCHITECTURES.implementation(arch)
    if not 0 <= dropout < 1:
        raise UsageError(f"dropout={dropout} must be in [0, 1) (the rate of units dropped)")
    return family.build(
        arch,
        num_classes=num_classes,
        input_shape=input_shape,
        widths=widths,
        weight_decay=weight_decay,
        dropout=dropout,
        weights=weights,
    )


def input_spec_for(
    arch: str, image_size: int, source_image_shape: tuple[int, ...] | None
) -> InputSpec:
    """The data.Preprocessing arguments for `arch` on a dataset of `source_image_shape`.

    Args:
        arch: a --arch value.
        image_size: --image_size (0 = the dataset's own size; caffenet: 227).
        source_image_shape: (H, W, C) of the dataset's images, or None when they vary.
    Returns:
        {"image_size": (H, W), "channels": C, and for caffenet "scale", "mean" and
        "resize_shorter"; for a keras.applications backbone what its preprocess_input does}.
    """
    family: Family = registry.ARCHITECTURES.implementation(arch)
    return family.input_spec(arch, image_size, source_image_shape)


def cut_points(arch: str, model: keras.Model) -> list[str] | None:
    """The names of the layers that end blocks 1, 2, ... of `model`, built by `arch`'s family
    (a list for surgery's `cut_names`): caffenet's weight layers, a backbone's stages."""
    family: Family = registry.ARCHITECTURES.implementation(arch)
    return family.cut_points(model)


def load_user_model(path: str) -> keras.Model:
    """Loads a user's functional model from a `.keras` file, with a clear error if it fails.

    Residuals written `a + b` become Add layers (models/stages.py), so blocks can end there.
    """
    if not os.path.isfile(path):
        raise UsageError(f"--source_model={path!r} does not exist; pass a saved .keras file")
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for a bad archive
        if _is_refused_lambda(error):
            raise UsageError(
                f"--source_model={path!r} has a Lambda layer: arbitrary Python code, which "
                "Keras's safe mode refuses to load; replace the Lambda with a built-in layer or "
                "a layer subclass registered with keras.saving.register_keras_serializable, or "
                "save the model without it"
            ) from None
        raise UsageError(
            f"--source_model={path!r} could not be loaded as a Keras model "
            f"({type(error).__name__}); save it with model.save('x.keras')"
        ) from None
    if not isinstance(model, keras.Model) or not hasattr(model, "inputs"):
        raise UsageError(f"--source_model={path!r} is not a functional Keras model")
    return with_add_layers(model)


def _is_refused_lambda(error: Exception) -> bool:
    """Whether `error` is Keras's safe mode refusing a Lambda layer's Python code.

    Keras says so only in the ValueError's text (e.g. "Requested the deserialization of a
    `Lambda` layer whose `function` is a Python lambda ... passing `safe_mode=False`").
    """
    text = str(error)
    return isinstance(error, ValueError) and "`Lambda` layer" in text and "safe_mode" in text


__all__ = [
    "BACKBONES",
    "SMALL_WIDTHS",
    "LocalResponseNormalization",
    "build",
    "classifier",
    "cut_points",
    "hub_weights_file",
    "input_spec_for",
    "is_hub_source",
    "load_hub_backbone",
    "load_user_model",
    "normalization",
    "stage_cuts",
]
