"""Frozen-prefix caching: train only the layers above a frozen prefix on its cached outputs.

When blocks 1..n are frozen and nothing random happens before the cut, their output for an
image never changes, so it is computed once (batched inference) and only the suffix trains.
Stochastic layers (dropout) after the cache point belong to the suffix and keep drawing
fresh masks, so caching stops before the first of them. Evaluation, saved weights and export
use the full model: the suffix shares its layer objects with it.
"""

import keras

from kerastransfer import surgery

STOCHASTIC = (keras.layers.Dropout, keras.layers.GaussianNoise, keras.layers.GaussianDropout,
              keras.layers.SpatialDropout2D, keras.layers.AlphaDropout)


def is_chain(model):
    """True when every layer takes exactly the previous layer's output (no branches)."""
    layers = model.layers
    return all(layer.input is before.output for before, layer in zip(layers, layers[1:]))


def cache_layer(model, n):
    """The layer whose output is cached for a run frozen at n, or None if caching is off.

    The cache point is the last layer of the frozen prefix that has no stochastic layer at or
    before it (n=7 in caffenet caches fc6's output: drop6 keeps drawing masks in the suffix).
    """
    if not is_chain(model):
        return None
    chosen = None
    for layer in surgery.block_layers(model, n):
        if isinstance(layer, STOCHASTIC):
            break
        if layer.trainable and layer.weights:
            return None  # not a frozen prefix
        chosen = layer
    return chosen


def split_model(model, layer):
    """(prefix, suffix): prefix maps inputs to `layer`'s output; suffix maps that onward.

    The suffix reuses the model's own layer objects, so training it trains the model.
    """
    prefix = keras.Model(model.input, layer.output, name=f"{model.name}_prefix")
    features = keras.Input(layer.output.shape[1:], name="cached_features")
    x = features
    for later in model.layers[model.layers.index(layer) + 1:]:
        x = later(x)
    return prefix, keras.Model(features, x, name=f"{model.name}_suffix")
