"""Network surgery: the paper's transferred networks built from a trained base in one call.

"Layer n" is the n-th block of a model. For a model with residual structure (the
keras.applications and keras-hub backbones, a user's ResNet) a block is a stage, found from
the model's structure (models/stages.py); for a transformer, one block. For caffenet-style
chains a block is a weight layer plus the parameter-free layers after it (ReLU, pooling, LRN,
dropout). The head (the last weight layer) is never transferred.

Everything here is plain Keras 3, so it runs on any backend and inside any
`tf.distribute` strategy scope (call it inside the scope to place the new variables there).

Example:
    >>> from kerastransfer import models
    >>> base = models.build("caffenet_small", num_classes=5, input_shape=(28, 28, 1))
    >>> anb_plus = transfer(base, 3, "fine_tuned")          # AnB+ with n = 3
    >>> bnb = transfer(base, 3, "frozen", num_classes=5)      # BnB / AnB
"""

from collections.abc import Sequence

import keras

from kerastransfer.errors import UsageError
from kerastransfer.models.layers import fresh_copy
from kerastransfer.models.stages import chain_cuts, stage_cuts

# The paper's three ways to take blocks 1..n (`transfer`); the recipes' networks have their
# own functions (`linear_probe`, `surgical`).
MODES = PAPER_MODES = ("frozen", "fine_tuned", "random_frozen")
# The new dense layer of a linear probe.
PROBE_HEAD = "probe_head"


def weight_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The model's layers that own weights, in topological order."""
    return [layer for layer in model.layers if layer.weights]


def head_layer(model: keras.Model) -> keras.layers.Layer:
    """The classifier: the last weight layer, never transferred."""
    return weight_layers(model)[-1]


def cut_layers(model: keras.Model, names: Sequence[str] | None = None) -> list[str]:
    """Names of the last layer of each transferable block, in order.

    Args:
        model: a functional Keras model.
        names: explicit cut points (layer names): --cut_layers, or what the architecture's
            family says (models.cut_points). When None: the ends of the model's stages if it
            has residual structure (or its transformer blocks), else one cut per weight layer
            below the head, after the parameter-free layers that follow it (models/stages.py).
    """
    if names is None:
        return stage_cuts(model) or chain_cuts(model)
    layer_names = [layer.name for layer in model.layers]
    unknown = [name for name in names if name not in layer_names]
    if unknown:
        raise UsageError(
            f"cut layer(s) {', '.join(unknown)} not in model {model.name!r}; "
            f"pass names from its layers, e.g. {', '.join(layer_names[1:4])}"
        )
    positions = [layer_names.index(name) for name in names]
    if positions != sorted(set(positions)):
        raise UsageError(f"cut layers {', '.join(names)} are not in the model's layer order")
    return list(names)


def num_blocks(model: keras.Model, names: Sequence[str] | None = None) -> int:
    """How many blocks can be transferred: n runs 1..num_blocks."""
    return len(cut_layers(model, names))


def cut_after(model: keras.Model, n: int, names: Sequence[str] | None = None) -> keras.layers.Layer:
    """The last layer of block n (1-based)."""
    _check_n(model, n, names)
    return model.get_layer(cut_layers(model, names)[n - 1])


def block_layers(
    model: keras.Model, n: int, names: Sequence[str] | None = None
) -> list[keras.layers.Layer]:
    """The layers of blocks 1..n, in model order (input layers excluded)."""
    cut = cut_after(model, n, names)
    layers = model.layers[: model.layers.index(cut) + 1]
    return [layer for layer in layers if not isinstance(layer, keras.layers.InputLayer)]


def _check_n(model: keras.Model, n: int, names: Sequence[str] | None = None) -> None:
    blocks = num_blocks(model, names)
    if not isinstance(n, int) or n < 1 or n > blocks:
        raise UsageError(
            f"layer n={n} is out of range for {model.name!r}: use 1..{blocks} "
            f"(block {blocks + 1} is the head, which is never transferred)"
        )


def transfer(
    base: keras.Model,
    n: int,
    mode: str,
    num_classes: int | None = None,
    *,
    extra_copied: int = 0,
    cut_names: Sequence[str] | None = None,
) -> keras.Model:
    """Builds a new network whose first n blocks come from `base`.

    Clones the architecture with `keras.models.clone_model` (fresh weights everywhere), then:
    - `frozen` (AnB / BnB): copies blocks 1..n from `base` and sets `trainable=False`;
    - `fine_tuned` (AnB+ / BnB+): copies blocks 1..n and leaves them trainable;
    - `random_frozen` (random features): keeps blocks 1..n at their fresh random init, frozen.
    Blocks above n stay freshly initialized and trainable. The base model is never modified.
    The recipes' networks (kerastransfer/treatments/) come from `linear_probe` and `surgical`.

    BatchNormalization: a frozen BN layer runs in inference mode with the base's moving
    statistics (Keras 3 semantics of `trainable=False`); in fine-tuned blocks BN layers keep
    training, so they normalize with batch statistics and update their moving averages.
    Frozen layers carry no weight decay: Keras applies regularizers to trainable weights only.

    Args:
        base: trained functional model (its head is the last weight layer).
        n: blocks to take, 1..num_blocks(base).
        mode: one of MODES.
        num_classes: classes of the new head; None keeps the base's count.
        extra_copied: copy this many further blocks above n without freezing them (the
            paper authors' "preserved features" variant); 0 is the paper's definition.
        cut_names: explicit block cut points (layer names) for user models.

    Returns:
        A new, uncompiled `keras.Model`. Compile it after this call (trainable flags only
        take effect at compile time).
    """
    if mode not in MODES:
        raise UsageError(f"unknown transfer mode {mode!r}; use one of {', '.join(MODES)}")
    _check_n(base, n, cut_names)
    copied_blocks = min(n + max(0, int(extra_copied)), num_blocks(base, cut_names))
    model = fresh_clone(base, num_classes)
    frozen = {layer.name for layer in block_layers(base, n, cut_names)}
    if mode != "random_frozen":
        for layer in block_layers(base, copied_blocks, cut_names):
            if layer.weights:
                model.get_layer(layer.name).set_weights(layer.get_weights())
    if mode != "fine_tuned":
        for name in frozen:
            model.get_layer(name).trainable = False
    return model


def linear_probe(
    base: keras.Model,
    n: int,
    num_classes: int | None = None,
    *,
    cut_names: Sequence[str] | None = None,
) -> keras.Model:
    """A linear probe at the cut: blocks 1..n copied from `base` and frozen, and one new
    dense layer (PROBE_HEAD) on their flattened output; the layers above n are left out.
    `num_classes` None keeps the base's count."""
    model = transfer(base, n, "frozen", num_classes, cut_names=cut_names)
    num_classes = num_classes or _units(head_layer(base))
    features = cut_after(model, n, cut_names).output
    if len(features.shape) > 2:
        features = keras.layers.Flatten(name="probe_flatten")(features)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name=PROBE_HEAD)(features)
    return keras.Model(model.input, outputs, name=f"{model.name}_probe{n}")


def surgical(
    base: keras.Model,
    n: int,
    num_classes: int | None = None,
    *,
    cut_names: Sequence[str] | None = None,
) -> keras.Model:
    """Surgical fine-tuning's network: every block copied from `base`, all frozen but block
    n; a fresh head of `num_classes` (None: the base's count)."""
    _check_n(base, n, cut_names)
    model = fresh_clone(base, num_classes)
    for name, block in block_numbers(base, cut_names).items():
        layer = model.get_layer(name)
        if layer.weights:
            layer.set_weights(base.get_layer(name).get_weights())
        layer.trainable = block == n
    return model


def block_numbers(model: keras.Model, cut_names: Sequence[str] | None = None) -> dict[str, int]:
    """{layer name: the block 1..num_blocks it belongs to}, for every layer up to the last
    cut (input layers excluded); the head and the layers after the last cut are not listed."""
    numbers, block = {}, 1
    cuts = cut_layers(model, cut_names)
    for layer in model.layers:
        if block > len(cuts):
            break
        if not isinstance(layer, keras.layers.InputLayer):
            numbers[layer.name] = block
        if layer.name == cuts[block - 1]:
            block += 1
    return numbers


def layer_decay_rates(
    model: keras.Model, n: int, decay: float, cut_names: Sequence[str] | None = None
) -> dict[str, float]:
    """{layer name: rate multiplier} of layer-wise decay: block i of the copied 1..n at
    decay ** (n + 1 - i); layers above n (fresh) are not listed (rate 1)."""
    return {
        name: decay ** (n + 1 - block)
        for name, block in block_numbers(model, cut_names).items()
        if block <= n
    }


def fresh_clone(base: keras.Model, num_classes: int | None = None) -> keras.Model:
    """The base's architecture with fresh weights everywhere and a head of `num_classes`.

    It is also the from-scratch baseline of a user's own model on a new dataset.
    """
    head = head_layer(base)
    units = num_classes if num_classes is not None else _units(head)

    def clone_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
        return fresh_copy(layer, units=units) if layer.name == head.name else fresh_copy(layer)

    return keras.models.clone_model(base, clone_function=clone_layer)


def _units(head: keras.layers.Layer) -> int:
    if not hasattr(head, "units"):
        raise UsageError(
            f"head layer {head.name!r} is not a Dense layer; "
            "pass num_classes and a model whose last weight layer is Dense"
        )
    return head.units
