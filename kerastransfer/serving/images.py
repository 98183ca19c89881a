"""The `predict_image_bytes` input, inside the exported graph: check each file, then decode it.

TF-Serving hands the graph whatever a client sends, so the checks are TensorFlow ops that run
before anything is decoded:

- a request carries at most `max_batch` files;
- each file is PNG or JPEG by its first bytes (empty files, GIF, BMP, WebP, TIFF and anything
  else are refused by name);
- it is whole: a PNG has its IEND chunk, a JPEG an end-of-image marker after its first scan
  (a JPEG cut short inside its main image, after an EXIF thumbnail that ends properly, gets
  past this and fails in the decoder instead, still as InvalidArgument);
- its header's size (PNG: the IHDR chunk; JPEG: the SOF marker, by tf.image.extract_jpeg_shape)
  is at most `max_pixels` pixels; for a model that resizes the shorter side first (caffenet:
  to 256, then a 227 crop), the resized float32 image may have a quarter of that, so a very
  wide image cannot make that resize huge.

A refused file is an InvalidArgument error, `assertion failed: [image_bytes[I] ...]`, naming
the file's index in the request, what is wrong and what is accepted; it costs no more memory
than its own bytes. An accepted file is decoded at the model's channel count (a CMYK JPEG for a
grey model through RGB), resized while still uint8 and then normalized, which is exactly
`Preprocessing.eval_tf` without a float32 copy at the file's full size.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import tensorflow as tf

if TYPE_CHECKING:
    from kerastransfer.data import Preprocessing

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
ACCEPTED = "send PNG or JPEG files"
# Files decoded at once within one request (tf.map_fn's parallel_iterations): a request's
# decoded pixels peak at this many files of at most `max_pixels` each.
DECODE_PARALLELISM = 4
# Bytes of a file's start that the format and PNG size checks read.
_HEAD = 24
# The other formats people send by mistake, by their first bytes, for the error message.
_OTHER_FORMATS = (
    (b"GIF8", "a GIF file"),
    (b"BM", "a BMP file"),
    (b"II*\0", "a TIFF file"),
    (b"MM\0*", "a TIFF file"),
)


def model_input(
    image_bytes: tf.Tensor, preprocessing: Preprocessing, *, max_pixels: int, max_batch: int
) -> tf.Tensor:
    """float32 [batch, H, W, C] model input from a string [batch] of encoded files.

    Raises InvalidArgument (when the graph runs) for a request of more than `max_batch`
    files or for a file the checks above refuse.
    """
    image_bytes = tf.ensure_shape(image_bytes, [None])
    count = tf.size(image_bytes)
    within_batch = check_batch(count, max_batch)
    height, width = preprocessing.image_size
    channels = preprocessing.channels

    def one(args: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
        index, encoded = args
        return _decode_checked(index, encoded, preprocessing, max_pixels)

    with tf.control_dependencies([within_batch]):
        indices = tf.range(count)
    return tf.map_fn(
        one,
        (indices, image_bytes),
        fn_output_signature=tf.TensorSpec([height, width, channels], tf.float32),
        parallel_iterations=DECODE_PARALLELISM,
    )


def check_batch(count: tf.Tensor, max_batch: int) -> tf.Operation:
    """An assertion that a request's batch of `count` is at most `max_batch`."""
    return tf.debugging.Assert(
        count <= max_batch,
        [
            _join(
                "the request carries ",
                count,
                f" images, over the limit of {max_batch} per request set at export "
                f"(--export_max_batch); send at most {max_batch} per request",
            )
        ],
    )


def _decode_checked(index, encoded, preprocessing, max_pixels):
    """One file's model input, after the checks; each refusal names `image_bytes[index]`."""
    name = _join("image_bytes[", index, "]")
    # The first bytes, zero-padded: tf.strings.substr fails past the end of a short file.
    start = tf.strings.substr(encoded, 0, _HEAD)  # shorter when the file is
    head = tf.strings.substr(tf.strings.join([start, b"\0" * _HEAD]), 0, _HEAD)
    is_png = _starts_with(head, PNG_SIGNATURE)
    is_jpeg = _starts_with(head, JPEG_SIGNATURE)
    format_ok = tf.debugging.Assert(
        is_png | is_jpeg, [_join(name, " ", _what_it_is(encoded, head), "; ", ACCEPTED)]
    )
    with tf.control_dependencies([format_ok]):
        problem, height, width, cmyk = tf.cond(
            is_png, lambda: _png_header(encoded, head), lambda: _jpeg_header(encoded)
        )
    problem = tf.where(
        problem == "", _size_problem(height, width, preprocessing, max_pixels), problem
    )
    size_ok = tf.debugging.Assert(problem == "", [_join(name, " ", problem)])
    with tf.control_dependencies([size_ok]):
        image = _decode(encoded, cmyk, preprocessing.channels)
    return _resize_and_normalize(image, preprocessing)


def _join(*parts):
    """One string tensor of str, string tensor and integer tensor parts (in decimal)."""
    return tf.strings.join(
        [
            tf.strings.as_string(part)
            if isinstance(part, tf.Tensor) and part.dtype != tf.string
            else part
            for part in parts
        ]
    )


def _starts_with(head, prefix, offset=0):
    """True when the bytes at `offset` of `head` (a file's first _HEAD bytes) are `prefix`."""
    return tf.strings.substr(head, offset, len(prefix)) == prefix


def _what_it_is(encoded, head):
    """'is empty', 'is a GIF file', ... for a file that is neither PNG nor JPEG."""
    what = _join(
        "is neither PNG nor JPEG (", tf.strings.length(encoded), " bytes of an unknown format)"
    )
    for prefix, name in _OTHER_FORMATS:
        what = tf.where(_starts_with(head, prefix), f"is {name}", what)
    what = tf.where(
        _starts_with(head, b"RIFF") & _starts_with(head, b"WEBP", offset=8),
        "is a WebP file",
        what,
    )
    return tf.where(tf.strings.length(encoded) == 0, "is empty", what)


def _contains_after(encoded, first, then):
    """True when bytes `then` occur after the first occurrence of bytes `first`."""
    rest = tf.strings.split(encoded, sep=first, maxsplit=1)
    return (tf.size(rest) == 2) & (tf.size(tf.strings.split(rest[-1], sep=then, maxsplit=1)) == 2)


def _png_header(encoded, head):
    """(problem or '', height, width, False) from a PNG's IHDR chunk; checks it is whole."""
    # The signature's 8 bytes, the IHDR chunk's length and type, then width and height as
    # big-endian uint32.
    values = tf.cast(tf.io.decode_raw(head, tf.uint8), tf.int64)
    big_endian = tf.constant([1 << 24, 1 << 16, 1 << 8, 1], tf.int64)
    width = tf.reduce_sum(values[16:20] * big_endian)
    height = tf.reduce_sum(values[20:24] * big_endian)
    problem = tf.where(
        _contains_after(encoded, b"IHDR", b"IEND"), "", "is a truncated PNG file (no IEND chunk)"
    )
    problem = tf.where(
        _starts_with(head, b"IHDR", offset=12),
        problem,
        "is a damaged PNG file (no IHDR chunk after its signature)",
    )
    return problem, height, width, tf.constant(False)


def _jpeg_header(encoded):
    """(problem or '', height, width, is CMYK) from a JPEG's SOF marker; checks it is whole."""
    whole = _contains_after(encoded, b"\xff\xda", b"\xff\xd9")  # start of scan, end of image

    def shape():
        return tf.cast(tf.image.extract_jpeg_shape(encoded), tf.int64)

    height_width_components = tf.cond(whole, shape, lambda: tf.zeros([3], tf.int64))
    problem = tf.where(
        whole,
        "",
        "is a truncated JPEG file (no end-of-image marker after its image data)",
    )
    height, width, components = tf.unstack(height_width_components)
    return problem, height, width, components == 4


def _size_problem(height, width, preprocessing, max_pixels):
    """'' when an image of `height` x `width` fits the pixel limits, else what is wrong."""
    size = _join(width, " x ", height, " pixels (width x height)")
    # Either side alone over the limit first: the product of two 32-bit PNG sides can
    # overflow int64.
    too_many = (height > max_pixels) | (width > max_pixels) | (height * width > max_pixels)
    problem = tf.where(
        too_many,
        _join(
            "is ",
            size,
            f", over the limit of {max_pixels} pixels set at export "
            "(--export_max_image_pixels); send a smaller image",
        ),
        "",
    )
    if preprocessing.resize_shorter:
        shorter, longer = tf.minimum(height, width), tf.maximum(height, width)
        side = preprocessing.resize_shorter
        resized = tf.cast(
            tf.round(side * side * tf.cast(longer, tf.float64) / tf.cast(shorter, tf.float64)),
            tf.int64,
        )
        problem = tf.where(
            (problem == "") & (resized > max_pixels // 4),
            _join(
                "is ",
                size,
                f": resizing its shorter side to {side} makes ",
                resized,
                f" pixels, over the {max_pixels // 4} allowed (a quarter of "
                f"--export_max_image_pixels={max_pixels} set at export, as float32); crop it "
                "closer to square",
            ),
            problem,
        )
    return tf.where((height < 1) | (width < 1), _join("has no pixels (", size, ")"), problem)


def _decode(encoded, cmyk, channels):
    """uint8 [h, w, channels]; libjpeg cannot turn CMYK into grey, so that goes through RGB."""
    if channels != 1:
        return tf.io.decode_image(encoded, channels=channels, expand_animations=False)
    return tf.cond(
        cmyk,
        lambda: tf.image.rgb_to_grayscale(tf.io.decode_jpeg(encoded, channels=3)),
        lambda: tf.io.decode_image(encoded, channels=1, expand_animations=False),
    )


def _resize_and_normalize(image, preprocessing):
    """`preprocessing.eval_tf(image)`, resizing the uint8 image before anything is float32.

    tf.image.resize computes in float32 whatever the input type, so resizing uint8 pixels
    gives the same values as eval_tf's resize of their float32 copy.
    """
    if preprocessing.resize_shorter:
        image = preprocessing.resize_shorter_side(image)  # the one definition of that size
        image = tf.image.resize_with_crop_or_pad(image, *preprocessing.image_size)
    else:
        image = tf.image.resize(image, preprocessing.image_size)
    return dataclasses.replace(preprocessing, resize_shorter=None).eval_tf(image)
