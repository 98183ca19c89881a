"""Stage cut points, found from a model's structure rather than listed per model.

A residual network has hundreds of layers but a handful of stages, and "the first n layers"
only makes sense where its residual structure is closed. So:

- a *clean cut* is a layer after which later layers need no tensor but its output (the
  layers up to it can be taken as a prefix);
- a *residual unit* ends at the clean cut after an `Add` or `Concatenate` (a ResNet,
  MobileNet, EfficientNet or ConvNeXt block; a DenseNet layer), taking along the parameter-free
  layers that keep its shape (ResNet's ReLU after the addition); a repeated custom layer
  that keeps its input's shape (a transformer block) is a unit of its own;
- consecutive residual units form a *stage* while each adds or concatenates the previous
  unit's output without weights on the way (an identity or pooling shortcut, a dense block);
  a shortcut with weights (a projection) starts a new stage; a transformer's blocks are one
  cut each;
- the stem (the layers before the first unit) is a stage when its channel count differs from
  the first stage's, and the last layer of the features (before pooling and the head) ends
  the last stage.

For the keras.applications ResNet50 this gives pool1_pool and conv2..conv5_block*_out; for a
keras-hub CNN the same layers its `pyramid_outputs` name. Plain Keras: no TensorFlow.

Example:
    >>> base = keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3))
    >>> stage_cuts(base)[:2]
    ['pool1_pool', 'conv2_block3_out']
"""

from typing import Any

import keras

from kerastransfer.models.layers import fresh_copy

MERGES = (keras.layers.Add, keras.layers.Concatenate)


def stage_cuts(model: keras.Model) -> list[str] | None:
    """Names of the layers that end the model's stages, in order; None without residual
    structure (a plain chain of layers, whose cut points are its weight layers)."""
    ops, sources = _graph(model)
    clean = _clean_cuts(ops, sources)
    units = _units(ops, clean)
    if not units:
        return None
    stages: list[list[Any]] = []  # [end index, whether later units may join]
    for _, end, merges in units:
        if merges and stages and stages[-1][1]:
            if any(_carries(ops, sources, stages[-1][0], merge) for merge in merges):
                stages[-1][0] = end
                continue
        stages.append([end, bool(merges)])
    ends = [end for end, _ in stages]
    channels = [_shape(op)[-1] for op in ops]
    stem = units[0][0]
    has_weights = any(op.weights for op in ops[: stem + 1] if isinstance(op, keras.layers.Layer))
    if has_weights and channels[stem] != channels[ends[0]]:
        ends.insert(0, stem)
    # The features' last layer: the last with positions (a feature map or tokens).
    features = max((index for index in clean if len(_shape(ops[index])) >= 2), default=ends[-1])
    if features != ends[-1]:
        between = [index for index in clean if ends[-1] < index <= features]
        if all(_shape(ops[index]) == _shape(ops[ends[-1]]) for index in between):
            ends[-1] = features
        else:
            ends.append(features)
    return [ops[index].name for index in ends]


def chain_cuts(model: keras.Model) -> list[str]:
    """Names of the layers that end the blocks of a plain chain of layers (caffenet): one
    block per weight layer below the head, with the parameter-free layers after it (ReLU,
    pooling, LRN, dropout)."""
    weight_layers = [layer for layer in model.layers if layer.weights]
    weighted = {layer.name for layer in weight_layers[:-1]}
    cuts, pending = [], None
    for layer in model.layers:
        if layer.name in weighted:
            if pending:
                cuts.append(pending)
            pending = layer.name
        elif pending and layer.weights:  # the head closes the last block
            cuts.append(pending)
            pending = None
        elif pending:
            pending = layer.name
    return cuts


def with_add_layers(model: keras.Model) -> keras.Model:
    """`model` with each `a + b` of two tensors written as a `keras.layers.Add` layer.

    Some models add their residuals with `+` (ConvNeXt in keras.applications), which leaves an
    operation without a layer name where the block closes; as a layer (named after the
    branch it adds, `<branch>_add`) it can be a cut point. Weights are copied; a model
    without such additions is returned as it is.
    """
    ops, sources = _graph(model)
    names = {
        id(op): f"{ops[max(sources[index])].name}_add"
        for index, op in enumerate(ops)
        if _is_tensor_sum(op)
    }
    if not names:
        return model

    def clone(op):
        if id(op) in names:
            return keras.layers.Add(name=names[id(op)])
        return fresh_copy(op)

    def call(op, *args, **kwargs):
        if isinstance(op, keras.layers.Add) and len(args) == 2:
            return op(list(args))
        return op(*args, **kwargs)

    copy = keras.models.clone_model(model, clone_function=clone, call_function=call)
    for layer in model.layers:
        if layer.weights:
            copy.get_layer(layer.name).set_weights(layer.get_weights())
    return copy


def _graph(model):
    """(operations in order, for each the indices of the operations whose outputs it takes,
    as far as `op.input`, the tensors of its first call, shows them)."""
    ops = model.operations
    producer: dict[int, int] = {}
    sources: list[set[int]] = []
    for index, op in enumerate(ops):
        taken = [] if isinstance(op, keras.layers.InputLayer) else keras.tree.flatten(op.input)
        # A nested model's or a reused layer's first call may lie outside this graph.
        sources.append({producer[id(tensor)] for tensor in taken if id(tensor) in producer})
        for tensor in keras.tree.flatten(op.output):
            producer[id(tensor)] = index
    return ops, sources


def _clean_cuts(ops, sources):
    """Indices of the layers after which later operations take no earlier tensor."""
    last_use = list(range(len(ops)))
    for index, taken in enumerate(sources):
        for source in taken:
            last_use[source] = index
    clean, reach = [], 0
    for index, op in enumerate(ops):
        if (
            reach <= index
            and isinstance(op, keras.layers.Layer)
            and not isinstance(op, keras.layers.InputLayer)
            and len(keras.tree.flatten(op.output)) == 1
        ):
            clean.append(index)
        reach = max(reach, last_use[index])
    return clean


def _units(ops, clean):
    """(start, end, merge indices) of each residual unit: `start` is the clean cut it begins
    after, `end` the one it closes at; a transformer block has no merges."""
    blocks = [index for index in clean if _is_block(ops[index])]
    classes = [type(ops[index]) for index in blocks]
    repeated = {index for index, cls in zip(blocks, classes) if classes.count(cls) > 1}
    clean_set = set(clean)
    units = []
    for start, end in zip(clean, clean[1:]):
        merges = [index for index in range(start + 1, end + 1) if isinstance(ops[index], MERGES)]
        if merges:
            while (
                end + 1 in clean_set
                and not ops[end + 1].weights
                and _shape(ops[end + 1]) == _shape(ops[end])
            ):
                end += 1
            units.append((start, end, merges))
        elif end in repeated:
            units.append((start, end, []))
    return units


def _carries(ops, sources, previous, merge):
    """True when the merge takes the output at `previous` as it is or through parameter-free
    layers only (an identity shortcut, a ResNetV2 pooling shortcut, a dense concatenation)."""
    for index in sources[merge]:
        while index != previous and len(sources[index]) == 1 and not ops[index].weights:
            (index,) = sources[index]
        if index == previous:
            return True
    return False


def _is_block(op):
    """A custom layer with weights that keeps its input's shape, e.g. a transformer block."""
    inputs = keras.tree.flatten(op.input)
    return (
        bool(op.weights)
        and not type(op).__module__.startswith("keras.")
        and len(inputs) == 1
        and tuple(inputs[0].shape) == tuple(op.output.shape)
    )


def _is_tensor_sum(op):
    """An `a + b` of two tensors in a functional graph (an operation, not a layer)."""
    return (
        not isinstance(op, keras.layers.Layer)
        and type(op).__name__ == "Add"
        and len(keras.tree.flatten(op.input)) == 2
    )


def _shape(op):
    return tuple(keras.tree.flatten(op.output)[0].shape[1:])
