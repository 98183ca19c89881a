"""The keras.applications family: backbones with a fresh classifier head.

Nothing downloads here, so weights come from a local file (`weights=PATH`, an `.h5` /
`.weights.h5` file of the backbone without top) or are random (`weights=None`). "Layer n"
means the n-th stage (models/stages.py finds them from the model's structure).
"""

import os
from collections.abc import Callable, Sequence

import keras
import numpy as np

from kerastransfer import registry
from kerastransfer.errors import UsageError
from kerastransfer.models.family import Family
from kerastransfer.models.preprocessing import InputSpec, Normalization, affine_of, input_size
from kerastransfer.models.stages import stage_cuts, with_add_layers

# --arch name -> (the keras.applications module whose preprocess_input the model expects,
# the constructor): declared in the registry, where config.py reads the names.
BACKBONES = registry.KERAS_APPLICATIONS


def preprocess_input(arch: str) -> Callable[[np.ndarray], np.ndarray]:
    """The `preprocess_input` of `arch`'s keras.applications module (pixels 0..255 in)."""
    return getattr(keras.applications, BACKBONES[arch][0]).preprocess_input


def normalization(arch: str) -> Normalization:
    """The data.Preprocessing arguments that compute what `arch`'s own `preprocess_input`
    computes: ResNet's BGR mean subtraction, MobileNetV2's [-1, 1], DenseNet's per-channel
    standardization, or nothing for the models that normalize inside (EfficientNet,
    ConvNeXt, MobileNetV3)."""
    return affine_of(preprocess_input(arch))


def input_spec(arch: str, image_size: int, source_image_shape: tuple[int, ...] | None) -> InputSpec:
    """Three channels at --image_size (else the dataset's size), normalized as `arch`'s own
    preprocess_input does."""
    return {**input_size(image_size, source_image_shape, channels=3), **normalization(arch)}


def backbone(
    arch: str,
    num_classes: int,
    input_shape: Sequence[int] = (224, 224, 3),
    weights: str | None = None,
    dropout: float = 0.0,
) -> keras.Model:
    """A keras.applications backbone plus global pooling and a softmax Dense head.

    The model is flat (the backbone's layers are its layers) so surgery can cut at stage
    boundaries by name.
    """
    if weights is not None and not os.path.isfile(weights):
        raise UsageError(
            f"backbone weights file {weights!r} does not exist; pass a local "
            "file with --source_weights (nothing downloads here) or omit it"
        )
    constructor = getattr(keras.applications, BACKBONES[arch][1])
    try:
        features = constructor(include_top=False, weights=None, input_shape=input_shape)
    except ValueError as error:  # e.g. "Input size must be at least 32x32"
        raise UsageError(
            f"--arch={arch} cannot take {input_shape[0]}x{input_shape[1]} images "
            f"({str(error).splitlines()[0]}); pass a larger --image_size"
        ) from None
    if weights is not None:
        try:
            features.load_weights(weights)
        except Exception as error:  # h5py and Keras raise many types for a mismatched file
            raise UsageError(
                f"--source_weights={weights!r} does not fit --arch={arch} "
                f"({type(error).__name__}); save the weights of "
                f"keras.applications.{BACKBONES[arch][1]}(include_top=False)"
            ) from None
    return classifier(with_add_layers(features), num_classes, dropout, name=arch)


def classifier(
    features: keras.Model, num_classes: int, dropout: float = 0.0, name: str | None = None
) -> keras.Model:
    """`features` (a functional model of images) plus global average pooling over its
    positions (feature map or tokens), dropout, and a float32 softmax Dense head."""
    pooling = (
        keras.layers.GlobalAveragePooling2D
        if len(features.output.shape) == 4
        else keras.layers.GlobalAveragePooling1D
    )
    x = pooling(name="avg_pool")(features.output)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(
        num_classes, activation="softmax", dtype="float32", name="predictions"
    )(x)
    return keras.Model(features.input, outputs, name=name or features.name)


def _build(arch, *, num_classes, input_shape, widths, weight_decay, dropout, weights):
    """The family's build: the backbone's own layers carry no weight decay, and `widths` is
    caffenet_small's."""
    return backbone(arch, num_classes, tuple(input_shape), weights, dropout)


# A backbone's blocks are its stages, found from its residual structure.
registry.ARCHITECTURES.register("keras.applications")(
    Family(build=_build, input_spec=input_spec, cut_points=stage_cuts)
)
