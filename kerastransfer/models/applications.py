"""keras.applications backbones with a fresh classifier head.

Nothing downloads here, so weights come from a local file (`weights=PATH`, an `.h5` /
`.weights.h5` file of the backbone without top) or are random (`weights=None`). "Layer n"
means the n-th stage boundary (see `STAGE_CUTS`).
"""

import os

import keras

from kerastransfer.errors import UsageError

BACKBONES = {
    "resnet50": keras.applications.ResNet50,
    "mobilenet_v2": keras.applications.MobileNetV2,
}

# Cut points (last layer of each block) of the keras.applications backbones we support,
# keyed by the model name models.build gives them: one per stage boundary.
STAGE_CUTS = {
    "resnet50": (
        "pool1_pool",
        "conv2_block3_out",
        "conv3_block4_out",
        "conv4_block6_out",
        "conv5_block3_out",
    ),
    "mobilenet_v2": (
        "expanded_conv_project_BN",
        "block_2_add",
        "block_5_add",
        "block_9_add",
        "block_12_add",
        "block_15_add",
        "out_relu",
    ),
}


def backbone(arch, num_classes, input_shape=(224, 224, 3), weights=None, dropout=0.0):
    """A keras.applications backbone plus global pooling and a softmax Dense head.

    The model is flat (the backbone's layers are its layers) so surgery can cut at stage
    boundaries by name; it is named after `arch`, which is how surgery finds the cuts.
    """
    if weights is not None and not os.path.isfile(weights):
        raise UsageError(
            f"backbone weights file {weights!r} does not exist; pass a local "
            "file with --source_weights (nothing downloads here) or omit it"
        )
    features = BACKBONES[arch](include_top=False, weights=None, input_shape=input_shape)
    if weights is not None:
        features.load_weights(weights)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features.output)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(
        num_classes, activation="softmax", dtype="float32", name="predictions"
    )(x)
    return keras.Model(features.input, outputs, name=arch)
