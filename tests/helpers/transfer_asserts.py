"""Shared checks for transferred networks, used by the surgery and distribution tests."""

import numpy as np

from kerastransfer import surgery

TINY_WIDTHS = (4, 6, 6, 6, 4, 8, 8)


def weights_of(model, names):
    return {name: [w.copy() for w in model.get_layer(name).get_weights()] for name in names}


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b))


def assert_transfer(base, model, n, mode, base_before, built):
    """Asserts the paper's definition of a transferred network after one training step.

    Args:
        base: the source model (must be untouched).
        model: the transferred model after training.
        n, mode: what `surgery.transfer` was asked for.
        base_before: weights of every base weight layer taken before `transfer`.
        built: weights of `model` right after `transfer`, before training.
    """
    copied = {layer.name for layer in surgery.block_layers(base, n) if layer.weights}
    trained_names = [layer.name for layer in surgery.weight_layers(model)]
    for name in trained_names[:-1]:
        is_copy = same(built[name], base_before[name])
        assert is_copy == (name in copied and mode != "random_frozen"), (name, mode, n)
        after = model.get_layer(name).get_weights()
        unchanged = same(after, built[name])
        frozen = name in copied and mode in ("frozen", "random_frozen")
        assert unchanged == frozen, f"{name}: frozen={frozen} but unchanged={unchanged}"
        assert model.get_layer(name).trainable == (not frozen)
    for name, weights in base_before.items():
        assert same(base.get_layer(name).get_weights(), weights), f"base {name} modified"
