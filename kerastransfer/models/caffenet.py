"""The caffenet family: CaffeNet (the paper's network) and caffenet_small (the same roles,
scaled for 28-32 px).

Both are Keras functional models whose eight weight layers are named conv1..conv5, fc6..fc8;
the parameter-free layers after a weight layer (ReLU inside it, pooling, LRN, dropout) belong
to its block (models.stages.chain_cuts): layers 1..7 of the paper.
"""

from collections.abc import Sequence

import keras

from kerastransfer import registry
from kerastransfer.models.family import Family
from kerastransfer.models.layers import LocalResponseNormalization, fully_connected_dtype
from kerastransfer.models.preprocessing import IMAGENET_MEAN_RGB, InputSpec, input_size
from kerastransfer.models.stages import chain_cuts

# caffenet_small's default widths: conv1..conv5 filters, then fc6 and fc7 units. Chosen so the
# default Fashion-MNIST study fits its time budget (see configs/fashion_mnist.flags).
SMALL_WIDTHS = (16, 32, 48, 48, 32, 128, 128)


def _l2(weight_decay):
    """Caffe's weight decay `wd` adds `wd * w` to the gradient, i.e. L2 with factor wd / 2."""
    return keras.regularizers.L2(weight_decay / 2.0) if weight_decay else None


def caffenet(
    num_classes: int = 1000,
    input_shape: Sequence[int] = (227, 227, 3),
    weight_decay: float = 5e-4,
    dropout: float = 0.5,
) -> keras.Model:
    """The Caffe reference network of the paper (docs/paper.md, "Network"): 5 conv, 3 fc layers.

    Gaussian init (std 0.01; fc6, fc7: 0.005), biases 0 for conv1, conv3, fc8 and 1 for the
    others, LRN after pool1 and pool2, 2-group conv2/conv4/conv5, dropout after fc6 and fc7.

    Example:
        >>> model = caffenet(num_classes=500)
        >>> model.count_params()
        58916724
    """

    def gauss(std):
        return keras.initializers.RandomNormal(stddev=std)

    const = keras.initializers.Constant
    reg = _l2(weight_decay)

    def conv(x, filters, size, name, bias, strides=1, groups=1):
        return keras.layers.Conv2D(
            filters,
            size,
            strides=strides,
            padding="valid" if size == 11 else "same",
            groups=groups,
            activation="relu",
            kernel_initializer=gauss(0.01),
            bias_initializer=const(bias),
            kernel_regularizer=reg,
            name=name,
        )(x)

    def pool(x, name):
        return keras.layers.MaxPooling2D(3, strides=2, name=name)(x)

    inputs = keras.Input(input_shape, name="images")
    x = conv(inputs, 96, 11, "conv1", bias=0.0, strides=4)
    x = LocalResponseNormalization(name="norm1")(pool(x, "pool1"))
    x = conv(x, 256, 5, "conv2", bias=1.0, groups=2)
    x = LocalResponseNormalization(name="norm2")(pool(x, "pool2"))
    x = conv(x, 384, 3, "conv3", bias=0.0)
    x = conv(x, 384, 3, "conv4", bias=1.0, groups=2)
    x = pool(conv(x, 256, 3, "conv5", bias=1.0, groups=2), "pool5")
    x = keras.layers.Flatten(name="flatten")(x)
    for name in ("fc6", "fc7"):
        x = keras.layers.Dense(
            4096,
            activation="relu",
            kernel_initializer=gauss(0.005),
            bias_initializer=const(1.0),
            kernel_regularizer=reg,
            name=name,
            dtype=fully_connected_dtype(),
        )(x)
        x = keras.layers.Dropout(dropout, name=f"drop{name[2:]}", dtype=fully_connected_dtype())(x)
    outputs = keras.layers.Dense(
        num_classes,
        activation="softmax",
        dtype="float32",
        kernel_initializer=gauss(0.01),
        kernel_regularizer=reg,
        name="fc8",
    )(x)
    return keras.Model(inputs, outputs, name="caffenet")


def caffenet_small(
    num_classes: int = 10,
    input_shape: Sequence[int] = (28, 28, 1),
    widths: Sequence[int] = SMALL_WIDTHS,
    weight_decay: float = 5e-4,
    dropout: float = 0.5,
) -> keras.Model:
    """CaffeNet's eight weight layers in the same roles, sized for 28x28 or 32x32 images.

    5x5 conv1/conv2 and 3x3 conv3-5 with 'same' padding, 3/2 max-pooling after conv1, conv2
    and conv5, fc6/fc7 with dropout, softmax fc8. He-normal init and zero biases (the
    paper's Gaussian init with bias 1 is tuned for 227 px inputs and trains slowly here); no
    LRN and no groups (both cost CPU time and matter little at this size).

    Args:
        widths: seven ints: conv1..conv5 filters, fc6 and fc7 units.

    Example:
        >>> model = caffenet_small(num_classes=5, widths=(8, 8, 8, 8, 8, 16, 16))
        >>> [layer.name for layer in model.layers if layer.weights][-1]
        'fc8'
    """
    if len(widths) != 7 or any(int(w) < 1 for w in widths):
        raise ValueError(f"caffenet_small needs 7 positive widths, got {widths}")
    reg = _l2(weight_decay)
    inputs = keras.Input(input_shape, name="images")
    x = inputs
    for index, (filters, size) in enumerate(zip(widths[:5], (5, 5, 3, 3, 3)), start=1):
        x = keras.layers.Conv2D(
            int(filters),
            size,
            padding="same",
            activation="relu",
            kernel_initializer="he_normal",
            kernel_regularizer=reg,
            name=f"conv{index}",
        )(x)
        if index in (1, 2, 5):
            x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name=f"pool{index}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for name, units in (("fc6", widths[5]), ("fc7", widths[6])):
        x = keras.layers.Dense(
            int(units),
            activation="relu",
            kernel_initializer="he_normal",
            kernel_regularizer=reg,
            name=name,
            dtype=fully_connected_dtype(),
        )(x)
        x = keras.layers.Dropout(dropout, name=f"drop{name[2:]}", dtype=fully_connected_dtype())(x)
    outputs = keras.layers.Dense(
        num_classes, activation="softmax", dtype="float32", kernel_regularizer=reg, name="fc8"
    )(x)
    return keras.Model(inputs, outputs, name="caffenet_small")


def caffenet_input(
    arch: str, image_size: int, source_image_shape: tuple[int, ...] | None
) -> InputSpec:
    """The paper's input: the shorter side resized to 256/227 of the input size (227 unless
    --image_size), then cropped to it; RGB 0..255 less the ImageNet mean."""
    size = image_size or 227
    return {
        "image_size": (size, size),
        "channels": 3,
        "scale": 1.0,
        "mean": IMAGENET_MEAN_RGB,
        "resize_shorter": round(size * 256 / 227),
    }


def caffenet_small_input(
    arch: str, image_size: int, source_image_shape: tuple[int, ...] | None
) -> InputSpec:
    """The dataset's own pixels in [0, 1], at --image_size (else the dataset's size)."""
    return input_size(image_size, source_image_shape)


def _build_caffenet(arch, *, num_classes, input_shape, widths, weight_decay, dropout, weights):
    return caffenet(num_classes, tuple(input_shape), weight_decay, dropout)


def _build_caffenet_small(
    arch, *, num_classes, input_shape, widths, weight_decay, dropout, weights
):
    return caffenet_small(
        num_classes, tuple(input_shape), tuple(widths or SMALL_WIDTHS), weight_decay, dropout
    )


registry.ARCHITECTURES.register("caffenet")(
    Family(build=_build_caffenet, input_spec=caffenet_input, cut_points=chain_cuts)
)
registry.ARCHITECTURES.register("caffenet_small")(
    Family(build=_build_caffenet_small, input_spec=caffenet_small_input, cut_points=chain_cuts)
)
