"""Layers Keras lacks, written with `keras.ops` so they run on every backend, and a fresh
copy of any layer from its config."""

import inspect
from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerastransfer")
class LocalResponseNormalization(keras.layers.Layer):
    """Caffe's across-channel LRN, as used after conv1 and conv2 of CaffeNet.

    Caffe computes `x / (k + alpha / size * sum_{window} x^2) ** beta` over `size` adjacent
    channels. Note the `alpha / size`: TensorFlow's `tf.nn.local_response_normalization`
    takes `alpha` unscaled and a `depth_radius`, so Caffe's (size=5, alpha=1e-4) equals TF's
    (depth_radius=2, alpha=2e-5).

    Args:
        size: channels in the window (odd).
        alpha: Caffe's scale (divided by `size` inside).
        beta: exponent.
        k: additive constant.

    Example:
        >>> y = LocalResponseNormalization()(keras.ops.ones((1, 4, 4, 8)))
    """

    def __init__(
        self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if size % 2 != 1:
            raise ValueError(f"LRN size must be odd, got {size}")
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def call(self, inputs: Any) -> Any:  # a backend tensor: tf, jax or torch
        radius = self.size // 2
        squares = ops.square(inputs)
        padded = ops.pad(squares, [[0, 0], [0, 0], [0, 0], [radius, radius]])
        channels = ops.shape(inputs)[-1]
        window_sum = sum(padded[..., i : i + channels] for i in range(self.size))
        return inputs / ops.power(self.k + (self.alpha / self.size) * window_sum, self.beta)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "size": self.size,
            "alpha": self.alpha,
            "beta": self.beta,
            "k": self.k,
        }


def fully_connected_dtype() -> str | None:
    """The dtype policy of CaffeNet's fc6/fc7 and their dropout: float32 under
    mixed_bfloat16 (None, the global policy, otherwise).

    Convolutions hold nearly all the FLOPs. Measured on the default study's 74 networks
    against float32: with bfloat16 everywhere, treatment means moved by up to 1.27 points
    and base networks by up to 1.70; with float32 fc6/fc7, by up to 0.80 and 1.10.
    BENCHMARKS.md's mixed-precision section has the speed and the accuracy of a fresh run.
    """
    return "float32" if keras.config.dtype_policy().name == "mixed_bfloat16" else None


def fresh_copy(op: keras.Operation, **changes: Any) -> keras.Operation:
    """A new copy of a layer (or graph operation) made from its config: fresh weights.

    Some keras-hub layers write derived values into their config that their constructor
    refuses (ViTPatchingAndEmbedding's num_patches in keras-hub 0.32); those are dropped when
    no constructor in the class's hierarchy names them.

    Args:
        op: the layer or operation to copy.
        **changes: config values to change, e.g. `units=5` or `name="x"`.
    """
    config = {**op.get_config(), **changes}
    try:
        return op.__class__.from_config(config)
    except TypeError:
        accepted: set[str] = set()
        for cls in type(op).__mro__:
            if "__init__" in vars(cls):
                accepted.update(inspect.signature(vars(cls)["__init__"]).parameters)
        return op.__class__.from_config({k: v for k, v in config.items() if k in accepted})
