"""keras-hub backbones from a preset directory on disk: `--source_model=keras_hub:PATH`.

keras-hub is an optional extra (`pip install -e ".[hub]"`). `Backbone.from_preset` reads a
local directory (nothing downloads here), as written by `backbone.save_to_preset(PATH)`; the
preset's image converter, when it has one (`converter.save_to_preset(PATH)`), gives the
preprocessing. A transformer encoder that keras-hub holds in one layer (ViT, DINOv2) is
unrolled into its blocks, so each block can be a cut point.
"""

import json
import os
from typing import Any, TypeGuard

import keras
import numpy as np

from kerastransfer.errors import UsageError
from kerastransfer.models.layers import fresh_copy
from kerastransfer.models.preprocessing import Normalization, affine_of
from kerastransfer.models.stages import with_add_layers

PREFIX = "keras_hub:"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
CONVERTER_FILE = "image_converter.json"
DEFAULT_SIZE = 224

# keras-hub layers that hold a whole transformer encoder -> the layers their call applies in
# order (each takes the previous one's output).
ENCODERS = {
    "ViTEncoder": lambda encoder: [encoder.dropout, *encoder.encoder_layers, encoder.layer_norm],
    "DINOV2Encoder": lambda encoder: list(encoder.layers),
}


def is_hub_source(source: str | None) -> TypeGuard[str]:
    """True for `--source_model=keras_hub:PATH` (a str, then)."""
    return source is not None and source.startswith(PREFIX)


def weights_file(source: str) -> str:
    """The preset's weights file, whose digest identifies the source model."""
    return os.path.join(source[len(PREFIX) :], WEIGHTS_FILE)


def load_backbone(source: str, image_size: int = 0) -> tuple[keras.Model, Normalization]:
    """(features, normalization) of the keras-hub preset directory `keras_hub:PATH`.

    Args:
        source: `keras_hub:PATH`.
        image_size: --image_size; 0 takes the preset's own input size, else its image
            converter's, else 224.
    Returns:
        A flat functional model from images to the backbone's features, and the
        data.Preprocessing arguments of the preset's image converter ({} without one).
    Raises:
        UsageError: keras-hub is not installed, or PATH is not a loadable preset directory.
    """
    path = source[len(PREFIX) :]
    try:
        import keras_hub  # noqa: PLC0415 (an optional extra)
    except ImportError:
        raise UsageError(
            f'--source_model={source} needs keras-hub, an optional extra: pip install -e ".[hub]"'
        ) from None
    if not os.path.isfile(os.path.join(path, CONFIG_FILE)):
        raise UsageError(
            f"--source_model={source}: {path!r} is not a keras-hub preset directory (no "
            f"{CONFIG_FILE}); write one with backbone.save_to_preset({path!r})"
        )
    converter = None
    if os.path.isfile(os.path.join(path, CONVERTER_FILE)):
        converter = keras_hub.layers.ImageConverter.from_preset(path)
    overrides = _image_shape(path, image_size, converter)
    try:
        backbone = keras_hub.models.Backbone.from_preset(path, **overrides)
    except Exception as error:  # keras-hub raises many types for a bad preset
        raise UsageError(
            f"--source_model={source} could not be loaded by keras_hub Backbone.from_preset "
            f"({type(error).__name__}: {str(error).splitlines()[0][:200]}); check --image_size "
            "against the preset's"
        ) from None
    features = with_add_layers(_unrolled(backbone))
    return features, _normalization(converter)


def _image_shape(path, image_size, converter):
    """{"image_shape": (H, W, C)} to build the backbone at a fixed size, or {} to keep the
    preset's (already fixed, or a backbone without an `image_shape` argument)."""
    with open(os.path.join(path, CONFIG_FILE)) as f:
        shape = json.load(f)["config"].get("image_shape")
    if shape is None:
        return {}
    if image_size:
        return {"image_shape": (image_size, image_size, shape[-1])}
    if None not in shape:
        return {}
    size = converter.image_size if converter is not None and converter.image_size else None
    return {"image_shape": (*(size or (DEFAULT_SIZE, DEFAULT_SIZE)), shape[-1])}


def _normalization(converter: Any) -> Normalization:
    """What the image converter does after resizing (`x * scale + offset`), as
    data.Preprocessing arguments; {} without a converter (pixels scaled to [0, 1])."""
    if converter is None:
        return {}
    scale = np.asarray(1.0 if converter.scale is None else converter.scale, np.float64)
    offset = np.asarray(0.0 if converter.offset is None else converter.offset, np.float64)
    return affine_of(lambda pixels: pixels * scale + offset)


def _unrolled(backbone):
    """The backbone as a flat functional model of one image input.

    A transformer encoder held in one layer (see ENCODERS) is replaced by copies of its blocks
    with the same weights; other backbones are already flat and are returned as they are.
    """
    if not any(type(layer).__name__ in ENCODERS for layer in backbone.layers):
        return backbone
    x = inputs = keras.Input(backbone.layers[0].output.shape[1:], name="images")
    for layer in backbone.layers[1:]:  # ViT and DINOv2 backbones are chains of layers
        parts = ENCODERS.get(type(layer).__name__, lambda layer: [layer])(layer)
        for part in parts:
            name = part.name if part is layer else f"{layer.name}_{part.name}"
            copy = fresh_copy(part, name=name)
            x = copy(x)
            copy.set_weights(part.get_weights())
    return keras.Model(inputs, x, name=backbone.name)
