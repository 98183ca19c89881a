"""Small models to export and image files to send them: smooth pictures, and crafted PNGs of
any claimed size (decompression bombs, headers alone) built without holding the pixels."""

import struct
import zlib

import keras
import numpy as np
import tensorflow as tf

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def tiny_model(input_shape, num_classes=3):
    """Conv + dense + softmax with random weights, large enough logits to separate classes."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(
        num_classes,
        activation="softmax",
        kernel_initializer=keras.initializers.RandomNormal(stddev=1.0),
    )(x)
    return keras.Model(inputs, outputs)


def smooth_images(rng, count, height, width, channels):
    """uint8 images without high frequencies, so JPEG at quality 95 barely changes them."""
    coarse = rng.uniform(0, 255, (count, 4, 4, channels)).astype(np.float32)
    return np.round(tf.image.resize(coarse, (height, width)).numpy()).astype(np.uint8)


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def crafted_png(width, height, channels=1, pixels=True):
    """A PNG of black pixels claiming `width` x `height`, compressed one row at a time (a
    12000 x 12000 one is a few hundred kilobytes); `pixels=False` leaves its image data out,
    so the header alone claims the size (any width and height up to 2**32 - 1)."""
    color_type = {1: 0, 3: 2}[channels]
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    data = b""
    if pixels:
        compressor = zlib.compressobj(9)
        row = bytes(1 + width * channels)  # filter byte 0, then the row's samples
        data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")
