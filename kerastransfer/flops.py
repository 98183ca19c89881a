"""FLOPs per image of a Keras model, from its layer shapes.

A multiply-add counts 2. Conv2D: 2 * H_out * W_out * kh * kw * C_in/groups * C_out; Dense:
2 * N_in * N_out; bias adds, activations, pooling and the optimizer update are left out
(under 1% for the study's networks). Training one image costs the forward pass of every
layer, plus, in the backward pass, a weight gradient for every trainable weight layer and an
input gradient for every weight layer above the lowest trainable one (each as much as its
forward pass): 3x the forward FLOPs minus conv1's input gradient for a network trained from
scratch.
"""

import math

import keras


def layer_flops(layer: keras.layers.Layer) -> int:
    """Forward FLOPs per image of one layer (Conv2D and Dense; 0 for the others)."""
    if isinstance(layer, keras.layers.Conv2D):
        height, width = layer.output.shape[1:3]
        return 2 * height * width * math.prod(layer.kernel.shape)
    if isinstance(layer, keras.layers.Dense):
        return 2 * math.prod(layer.kernel.shape)
    return 0


def training_flops(model: keras.Model, after: keras.layers.Layer | None = None) -> int:
    """Training FLOPs per image of `model`'s layers after layer `after` (all when None)."""
    layers = model.layers
    if after is not None:
        layers = layers[layers.index(after) + 1 :]
    flops = [
        (layer_flops(layer), layer.trainable and bool(layer.trainable_weights)) for layer in layers
    ]
    forward = sum(f for f, _ in flops)
    weight_grads = sum(f for f, trainable in flops if trainable)
    lowest = next((i for i, (_, trainable) in enumerate(flops) if trainable), len(flops))
    input_grads = sum(f for f, _ in flops[lowest + 1 :])
    return forward + weight_grads + input_grads


def forward_flops(model: keras.Model, upto: keras.layers.Layer | None = None) -> int:
    """Forward FLOPs per image of `model` up to and including layer `upto` (all when None)."""
    layers = model.layers
    if upto is not None:
        layers = layers[: layers.index(upto) + 1]
    return sum(layer_flops(layer) for layer in layers)
