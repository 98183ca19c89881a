"""Model registry: `build(arch, ...)` for every architecture the study can use, with each
architecture's input (`input_spec_for`); stage cut points found from a model's structure
(`stage_cuts`); keras-hub presets on disk (`load_hub_backbone`, an optional extra).

May import: errors; plain Keras only (no TensorFlow), never data/, training/ or study/.

Example:
    >>> model = build("caffenet_small", num_classes=5, input_shape=(28, 28, 1))
"""

import os

import keras

from kerastransfer.errors import UsageError
from kerastransfer.models.applications import BACKBONES, backbone, classifier
from kerastransfer.models.caffenet import SMALL_WIDTHS, caffenet, caffenet_small
from kerastransfer.models.hub import is_hub_source
from kerastransfer.models.hub import load_backbone as load_hub_backbone
from kerastransfer.models.hub import weights_file as hub_weights_file
from kerastransfer.models.layers import LocalResponseNormalization
from kerastransfer.models.preprocessing import input_spec_for, normalization
from kerastransfer.models.stages import stage_cuts, with_add_layers

ARCHITECTURES = ("caffenet", "caffenet_small", *BACKBONES)


def build(
    arch, *, num_classes, input_shape, widths=None, weight_decay=5e-4, dropout=0.5, weights=None
):
    """Builds a fresh, uncompiled model.

    Args:
        arch: one of ARCHITECTURES.
        num_classes: size of the softmax head.
        input_shape: (H, W, C) of the preprocessed input.
        widths: caffenet_small only: seven widths (conv1..conv5 filters, fc6, fc7 units).
        weight_decay: Caffe-style decay on kernels (not biases); 0 disables it.
        dropout: rate after fc6 and fc7 (caffenet*), before the head (backbones), in
            [0, 1); every architecture gets the rate it is given (0 = no dropout layer on a
            backbone).
        weights: keras.applications backbones (BACKBONES) only: a local weights file for
            the backbone without its top.

    Raises:
        UsageError: an unknown `arch`, a dropout outside [0, 1), a missing weights file.
    """
    if not 0 <= dropout < 1:
        raise UsageError(f"dropout={dropout} must be in [0, 1) (the rate of units dropped)")
    if arch == "caffenet":
        return caffenet(num_classes, tuple(input_shape), weight_decay, dropout)
    if arch == "caffenet_small":
        return caffenet_small(
            num_classes, tuple(input_shape), tuple(widths or SMALL_WIDTHS), weight_decay, dropout
        )
    if arch in BACKBONES:
        return backbone(arch, num_classes, tuple(input_shape), weights, dropout)
    raise UsageError(f"unknown architecture {arch!r}; known architectures: {known_architectures()}")


def known_architectures():
    """The names build() takes, for error messages."""
    return ", ".join(ARCHITECTURES)


def load_user_model(path):
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


def _is_refused_lambda(error):
    """Whether `error` is Keras's safe mode refusing a Lambda layer's Python code.

    Keras says so only in the ValueError's text (e.g. "Requested the deserialization of a
    `Lambda` layer whose `function` is a Python lambda ... passing `safe_mode=False`").
    """
    text = str(error)
    return isinstance(error, ValueError) and "`Lambda` layer" in text and "safe_mode" in text


__all__ = [
    "ARCHITECTURES",
    "BACKBONES",
    "SMALL_WIDTHS",
    "LocalResponseNormalization",
    "build",
    "classifier",
    "hub_weights_file",
    "input_spec_for",
    "is_hub_source",
    "load_hub_backbone",
    "load_user_model",
    "normalization",
    "stage_cuts",
]
