"""Exports a trained classifier as a versioned SavedModel that TF-Serving can load as is.

Layout under the export base (TF-Serving's own convention):

    <base_dir>/models.config                  model_config_list naming every model below
    <base_dir>/batching_parameters.txt        TF-Serving batching values for these models
    <base_dir>/<model_name>/<version>/        one SavedModel per integer version, never overwritten
        saved_model.pb, variables/            written by Keras 3's `keras.export.ExportArchive`
        metadata.json                         run metadata, signatures, limits, batching
        assets.extra/tf_serving_warmup_requests   PredictionLog records TF-Serving replays on load

All preprocessing lives inside the graph, so a client sends raw pixels or encoded image files
and gets the same probabilities the training pipeline's evaluation path computes; the graph
also refuses a request over `max_batch` images and a file over `max_image_pixels`
(serving/images.py), so a hostile request costs the server no more than its own bytes. Each
version is built in a hidden, locked staging directory beside its final place and renamed into
place, so a crash never leaves a half-written version for TF-Serving to pick up (it skips
non-integer directory names); the next export removes staging directories that no live export
holds.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

from kerastransfer import config
from kerastransfer.errors import UsageError
from kerastransfer.serving import images
from kerastransfer.workdir import files

if TYPE_CHECKING:
    from kerastransfer.data import Preprocessing

log = logging.getLogger(__name__)

SERVING_DEFAULT = "serving_default"
PREDICT_IMAGE_BYTES = "predict_image_bytes"
METADATA_FILE = "metadata.json"
MODELS_CONFIG_FILE = "models.config"
BATCHING_FILE = "batching_parameters.txt"
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
_TMP_PREFIX = ".export-tmp-"
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_DEFAULT_WARMUP_BATCH = 2
_DEFAULTS = config.ExportConfig()  # the limits' defaults (--export_max_image_pixels, ...)
# Full batches TF-Serving may queue before it refuses requests (UNAVAILABLE): about one per
# batch thread of a typical server, as TF-Serving's batching guide advises for online serving.
_MAX_ENQUEUED_BATCHES = 16
# The range of batch_timeout_micros the measured single-request time is held to.
_BATCH_TIMEOUT_MICROS = (100, 10_000)

# What each signature input and output means; shapes and dtypes come from the traced graph.
TENSOR_DESCRIPTIONS = {
    "images": "float32 raw pixel values 0..255, [batch, height, width, channels] at the model's "
    "input size; normalization happens inside the graph",
    "image_bytes": 'string [batch] of encoded PNG or JPEG files (REST: {"b64": ...}), each of '
    "at most export.limits.max_image_pixels pixels; decoded, channel-matched and resized to "
    "the model's input inside the graph",
    "probabilities": "float32 [batch, classes] softmax probabilities",
    "classes": "int64 [batch] index of the most probable class",
    "class_names": "string [batch] name of the most probable class",
}


def next_version(base_dir: str, model_name: str) -> int:
    """The integer version the next export of `model_name` under `base_dir` gets (1, 2, ...).

    One more than the highest existing integer-named directory, so versions only grow even
    after an older one was deleted.
    """
    model_dir = os.path.join(base_dir, model_name)
    if not os.path.isdir(model_dir):
        return 1
    versions = [int(name) for name in os.listdir(model_dir) if name.isdigit()]
    return max(versions, default=0) + 1


def export_model(
    model: keras.Model,
    *,
    base_dir: str,
    model_name: str,
    class_names: Sequence[str],
    preprocessing: Preprocessing,
    metadata: dict[str, Any],
    warmup_images: np.ndarray | None = None,
    max_image_pixels: int = _DEFAULTS.export_max_image_pixels,
    max_batch: int = _DEFAULTS.export_max_batch,
) -> str:
    """Writes `model` as the next version of `model_name` under `base_dir`.

    Args:
        model: Keras 3 functional model from preprocessed float32 [batch, H, W, C] to softmax
            probabilities [batch, K].
        base_dir: export base; TF-Serving mounts this directory.
        model_name: the name clients ask TF-Serving for (letters, digits, `_`, `.`, `-`).
        class_names: K strings, index i naming class i.
        preprocessing: the `Preprocessing` the model was trained with; baked into the graph.
        metadata: JSON-able dict of run facts, written to `metadata.json` with an added
            "export" entry (signatures, export time, class names, preprocessing).
        warmup_images: uint8 [N, H, W, C] images at the model's input size for the TF-Serving
            warmup file; None uses a few black images.
        max_image_pixels: the most pixels (width x height) a file sent to
            `predict_image_bytes` may have; larger ones are refused from their header.
        max_batch: the most images one call of either signature may carry.

    Returns:
        The absolute path of the new version directory.

    Raises:
        UsageError: the model, class names, preprocessing or model name do not fit together.
        ValueError: `warmup_images` is not uint8 at the model's input size, or `metadata`
            already has the "export" key this function writes.
    """
    height, width, channels = _check_model(model, class_names, preprocessing, model_name)
    if "export" in metadata:
        raise ValueError("metadata must not have an 'export' key: export_model writes it")
    if not (1 <= max_batch and 1 <= max_image_pixels <= config.MAX_IMAGE_PIXELS_LIMIT):
        raise UsageError(
            f"max_batch={max_batch} and max_image_pixels={max_image_pixels} must be at least 1 "
            f"(max_image_pixels at most {config.MAX_IMAGE_PIXELS_LIMIT})"
        )
    # TF-Serving refuses to load a version whose warmup requests fail: keep them in the cap.
    warmup_images = _warmup_batch(warmup_images, (height, width, channels))[:max_batch]
    limits = {
        "max_image_pixels": int(max_image_pixels),
        "max_batch": int(max_batch),
        "decode_parallelism": images.DECODE_PARALLELISM,
    }

    base_dir = os.path.abspath(base_dir)
    model_dir = os.path.join(base_dir, model_name)
    os.makedirs(model_dir, exist_ok=True)
    with _staging_dir(model_dir) as staging:
        saved_model_dir = os.path.join(staging, "saved_model")
        signatures, serve_images = _write_saved_model(
            model, class_names, preprocessing, saved_model_dir, limits
        )
        warmed = _write_warmup(saved_model_dir, model_name, warmup_images)
        files.write_json(
            os.path.join(saved_model_dir, METADATA_FILE),
            {
                **metadata,
                "export": {
                    "model_name": model_name,
                    "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                    "signatures": signatures,
                    "class_names": list(class_names),
                    "preprocessing": preprocessing.to_json(),
                    "warmup_requests": warmed,
                    "limits": limits,
                    "batching": _batching_values(serve_images, warmup_images[:1], limits),
                    "tensorflow_version": tf.__version__,
                    "keras_version": keras.__version__,
                },
            },
        )
        files.fsync_tree(saved_model_dir)  # TF wrote it without fsync; make it durable first
        version_dir = _publish(saved_model_dir, base_dir, model_name)
    write_models_config(base_dir)
    log.info("exported %s", version_dir)
    return version_dir


def write_models_config(base_dir: str) -> str:
    """Rewrites `<base_dir>/models.config` listing every model with at least one version.

    TF-Serving reads it with `--model_config_file`; base paths are absolute, so the container
    must mount the export base at the same path (see the README's docker command).
    """
    base_dir = os.path.abspath(base_dir)
    entries = []
    for name in sorted(os.listdir(base_dir)):
        model_dir = os.path.join(base_dir, name)
        if os.path.isdir(model_dir) and next_version(base_dir, name) > 1:
            entries.append(
                "  config {\n"
                f"    name: {_proto_string(name)}\n"
                f"    base_path: {_proto_string(model_dir)}\n"
                '    model_platform: "tensorflow"\n'
                "  }\n"
            )
    path = os.path.join(base_dir, MODELS_CONFIG_FILE)
    files.write_text(path, "model_config_list {\n" + "".join(entries) + "}\n")
    write_batching_parameters(base_dir)
    return path


def write_batching_parameters(base_dir: str) -> str | None:
    """Rewrites `<base_dir>/batching_parameters.txt` for the newest version of every model.

    TF-Serving reads it with `--enable_batching --batching_parameters_file`, one file for all
    the models it serves, so it takes the smallest of their values: a merged batch never
    exceeds a model's own `max_batch` (its graph would refuse it), and no model waits longer
    for a batch to fill than its own suggestion. Returns its path, or None when no version
    records the values (exports older than these limits).
    """
    newest = []
    for name in sorted(os.listdir(base_dir)):
        version = next_version(base_dir, name) - 1  # 0: not a model directory
        metadata_path = os.path.join(base_dir, name, str(version), METADATA_FILE)
        if version and os.path.isfile(metadata_path):
            with open(metadata_path) as f:
                written = json.load(f)["export"]
            if "batching" in written:
                newest.append((f"{name}/{version}", written["batching"]))
    if not newest:
        return None
    lowest, highest = _BATCH_TIMEOUT_MICROS
    max_batch = min(values["max_batch_size"] for _, values in newest)
    timeout = min(values["batch_timeout_micros"] for _, values in newest)
    lines = [
        "# TF-Serving batching for " + ", ".join(model for model, _ in newest) + " (written by",
        "# kerastransfer's export; the README shows the command line that uses it).",
        "# max_batch_size: the graph's own cap (--export_max_batch), so TF-Serving never merges",
        "# requests into a batch the graph refuses, and refuses larger requests itself.",
        f"max_batch_size {{ value: {max_batch} }}",
        "# batch_timeout_micros: one single-image request's time on the exporting machine, held",
        f"# to {lowest} to {highest}: a lone request waits about as long as it computes.",
        f"batch_timeout_micros {{ value: {timeout} }}",
        "# max_enqueued_batches: requests beyond this many full batches are refused at once",
        "# (UNAVAILABLE, which tools/serving_client.py retries) instead of queueing without bound.",
        f"max_enqueued_batches {{ value: {_MAX_ENQUEUED_BATCHES} }}",
        "# num_batch_threads is left out: TF-Serving then uses one per CPU core.",
    ]
    path = os.path.join(base_dir, BATCHING_FILE)
    files.write_text(path, "\n".join(lines) + "\n")
    return path


def _check_model(model, class_names, preprocessing, model_name):
    """Returns the model's (height, width, channels) after checking the arguments agree."""
    if not _MODEL_NAME.match(model_name):
        raise UsageError(
            f"model_name {model_name!r} is not a valid TF-Serving model name: use letters, "
            "digits, '_', '.' and '-' only"
        )
    input_shape = tuple(model.input_shape)
    if len(input_shape) != 4 or None in input_shape[1:]:
        raise UsageError(
            f"model input shape {input_shape} is not [batch, height, width, channels] with "
            "known sizes: give the model's keras.Input a full image shape"
        )
    height, width, channels = input_shape[1:]
    num_classes = model.output_shape[-1]
    if len(class_names) != num_classes:
        raise UsageError(
            f"{len(class_names)} class names for a model with {num_classes} outputs: pass one "
            "name per output unit"
        )
    if (tuple(preprocessing.image_size), preprocessing.channels) != ((height, width), channels):
        raise UsageError(
            f"preprocessing gives {tuple(preprocessing.image_size)}x{preprocessing.channels} "
            f"images but the model takes {height}x{width}x{channels}: export with the "
            "preprocessing the model was trained with"
        )
    return height, width, channels


def _warmup_batch(images, image_shape):
    """The uint8 [N, H, W, C] warmup batch: `images` checked, or black images if None."""
    if images is None:
        return np.zeros((_DEFAULT_WARMUP_BATCH, *image_shape), np.uint8)
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != image_shape:
        raise ValueError(
            f"warmup_images must be uint8 [N, {', '.join(map(str, image_shape))}], got "
            f"{images.dtype} {list(images.shape)}"
        )
    return images


def _write_saved_model(model, class_names, preprocessing, path, limits):
    """Writes both serving signatures with Keras' ExportArchive; returns their descriptions
    and the traced `serving_default` function."""
    height, width, channels = model.input_shape[1:]

    def predict(model_input):
        """The three outputs both signatures share, from preprocessed model input."""
        probabilities = tf.cast(model(model_input, training=False), tf.float32)
        classes = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        return {
            "probabilities": probabilities,
            "classes": classes,
            "class_names": tf.gather(tf.constant(list(class_names)), classes),
        }

    def serve_images(pixels):
        # The signature's static shape is not enforced when TF-Serving feeds the placeholder,
        # and a wrong-rank tensor would abort the server inside the convolution kernel; this
        # turns it into an InvalidArgument error for that request.
        model_input = tf.ensure_shape(pixels, [None, height, width, channels])
        with tf.control_dependencies(
            [images.check_batch(tf.shape(model_input)[0], limits["max_batch"])]
        ):
            model_input = preprocessing.eval_tf(model_input)
        return predict(model_input)

    def serve_image_bytes(image_bytes):
        return predict(
            images.model_input(
                image_bytes,
                preprocessing,
                max_pixels=limits["max_image_pixels"],
                max_batch=limits["max_batch"],
            )
        )

    archive = keras.export.ExportArchive()
    archive.track(model)
    endpoints = {
        SERVING_DEFAULT: archive.add_endpoint(
            SERVING_DEFAULT,
            serve_images,
            input_signature=[
                tf.TensorSpec([None, height, width, channels], tf.float32, name="images")
            ],
        ),
        PREDICT_IMAGE_BYTES: archive.add_endpoint(
            PREDICT_IMAGE_BYTES,
            serve_image_bytes,
            input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")],
        ),
    }
    archive.write_out(path, verbose=False)
    descriptions = {name: _describe(fn.get_concrete_function()) for name, fn in endpoints.items()}
    return descriptions, endpoints[SERVING_DEFAULT]


def _batching_values(serve_images, image, limits):
    """The batching values this model suggests: its own batch cap, and a batch timeout of
    about the time one single-image request takes here (the median of a few, in µs)."""
    batch = tf.constant(image, tf.float32)
    serve_images(batch)  # the first call pays for setting up the graph
    seconds = []
    for _ in range(5):
        start = time.perf_counter()
        serve_images(batch)
        seconds.append(time.perf_counter() - start)
    lowest, highest = _BATCH_TIMEOUT_MICROS
    measured = round(statistics.median(seconds) * 1e6)
    return {
        "max_batch_size": limits["max_batch"],
        "batch_timeout_micros": min(max(measured, lowest), highest),
        "single_request_micros": measured,
    }


def _describe(concrete_function):
    """JSON description of a signature's inputs and outputs, read from the traced function."""

    def describe(name, spec):
        return {
            "dtype": spec.dtype.name,
            "shape": spec.shape.as_list(),
            "description": TENSOR_DESCRIPTIONS[name],
        }

    args, _ = concrete_function.structured_input_signature
    return {
        "inputs": {spec.name: describe(spec.name, spec) for spec in args},
        "outputs": {
            name: describe(name, tensor)
            for name, tensor in sorted(concrete_function.structured_outputs.items())
        },
    }


def _write_warmup(saved_model_dir, model_name, images):
    """Writes one warmup request per signature; returns False when the serving API is missing.

    TF-Serving replays these when it loads the version, so the first real request does not
    pay for graph initialization.
    """
    try:
        from tensorflow_serving.apis import (  # noqa: PLC0415  (the optional serving extra)
            predict_pb2,
            prediction_log_pb2,
        )
    except ImportError:
        log.warning(
            "tensorflow-serving-api is not installed (pip install 'kerastransfer[serving]'): "
            "exporting without %s",
            WARMUP_FILE,
        )
        return False

    encoded = [tf.io.encode_png(image).numpy() for image in images]
    inputs = {
        SERVING_DEFAULT: ("images", tf.make_tensor_proto(images.astype(np.float32))),
        PREDICT_IMAGE_BYTES: ("image_bytes", tf.make_tensor_proto(encoded, dtype=tf.string)),
    }
    path = os.path.join(saved_model_dir, WARMUP_FILE)
    os.makedirs(os.path.dirname(path))
    with files.atomic_path(path) as tmp, tf.io.TFRecordWriter(tmp) as writer:
        for signature_name, (input_name, tensor) in inputs.items():
            request = predict_pb2.PredictRequest()
            request.model_spec.name = model_name
            request.model_spec.signature_name = signature_name
            request.inputs[input_name].CopyFrom(tensor)
            record = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(record.SerializeToString())
    return True


@contextlib.contextmanager
def _staging_dir(model_dir):
    """A new hidden staging directory in `model_dir`, locked (flock) until the block ends.

    Staging directories that no process holds are what killed exports left behind; they are
    removed first. The model directory's own lock makes removing them and creating a new one
    one step, so an export never removes another's directory before it is locked.
    """
    model_fd = os.open(model_dir, os.O_RDONLY)
    try:
        fcntl.flock(model_fd, fcntl.LOCK_EX)
        for name in os.listdir(model_dir):
            if name.startswith(_TMP_PREFIX):
                _remove_if_stale(os.path.join(model_dir, name))
        staging = tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=model_dir)
        staging_fd = os.open(staging, os.O_RDONLY)
        fcntl.flock(staging_fd, fcntl.LOCK_EX)
    finally:
        os.close(model_fd)  # drops its lock
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        os.close(staging_fd)


def _remove_if_stale(path):
    """Removes staging directory `path` unless a live export holds its lock."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # gone already, or not a directory we can open
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return
    finally:
        os.close(fd)
    shutil.rmtree(path, ignore_errors=True)
    log.info("removed %s, left by an export that was killed", path)


def _publish(staged_dir, base_dir, model_name):
    """Renames the finished SavedModel to the next free version directory; returns its path.

    rename() refuses a non-empty target, so a version written by an export running at the
    same time is never overwritten: on a clash the next number is tried.
    """
    while True:
        version = next_version(base_dir, model_name)
        version_dir = os.path.join(base_dir, model_name, str(version))
        try:
            os.rename(staged_dir, version_dir)
            return version_dir
        except OSError as error:
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise


def _proto_string(value):
    """`value` as a quoted protobuf text-format string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
