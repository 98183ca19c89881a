"""Exports a trained classifier as a versioned SavedModel that TF-Serving can load as is.

Layout under the export base (TF-Serving's own convention):

    <base_dir>/models.config                  model_config_list naming every model below
    <base_dir>/<model_name>/<version>/        one SavedModel per integer version, never overwritten
        saved_model.pb, variables/            written by Keras 3's `keras.export.ExportArchive`
        metadata.json                         run metadata plus the signature descriptions
        assets.extra/tf_serving_warmup_requests   PredictionLog records TF-Serving replays on load

All preprocessing lives inside the graph, so a client sends raw pixels or encoded image files
and gets the same probabilities the training pipeline's evaluation path computes. Each version
is built in a hidden temporary directory beside its final place and renamed into place, so a
crash never leaves a half-written version for TF-Serving to pick up (it skips non-integer
directory names).
"""

import datetime
import errno
import logging
import os
import re
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from kerastransfer.errors import UsageError
from kerastransfer.workdir import files

log = logging.getLogger(__name__)

SERVING_DEFAULT = "serving_default"
PREDICT_IMAGE_BYTES = "predict_image_bytes"
METADATA_FILE = "metadata.json"
MODELS_CONFIG_FILE = "models.config"
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
_TMP_PREFIX = ".export-tmp-"
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_DEFAULT_WARMUP_BATCH = 2

# What each signature input and output means; shapes and dtypes come from the traced graph.
TENSOR_DESCRIPTIONS = {
    "images": "float32 raw pixel values 0..255, [batch, height, width, channels] at the model's "
    "input size; normalization happens inside the graph",
    "image_bytes": 'string [batch] of encoded PNG or JPEG files (REST: {"b64": ...}); decoded, '
    "channel-matched and resized to the model's input inside the graph",
    "probabilities": "float32 [batch, classes] softmax probabilities",
    "classes": "int64 [batch] index of the most probable class",
    "class_names": "string [batch] name of the most probable class",
}


def next_version(base_dir, model_name):
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
    model,
    *,
    base_dir,
    model_name,
    class_names,
    preprocessing,
    metadata,
    warmup_images=None,
):
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
    warmup_images = _warmup_batch(warmup_images, (height, width, channels))

    base_dir = os.path.abspath(base_dir)
    model_dir = os.path.join(base_dir, model_name)
    os.makedirs(model_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=model_dir)
    try:
        saved_model_dir = os.path.join(staging, "saved_model")
        signatures = _write_saved_model(model, class_names, preprocessing, saved_model_dir)
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
                    "tensorflow_version": tf.__version__,
                    "keras_version": keras.__version__,
                },
            },
        )
        files.fsync_tree(saved_model_dir)  # TF wrote it without fsync; make it durable first
        version_dir = _publish(saved_model_dir, base_dir, model_name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    write_models_config(base_dir)
    log.info("exported %s", version_dir)
    return version_dir


def write_models_config(base_dir):
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


def _write_saved_model(model, class_names, preprocessing, path):
    """Writes both serving signatures with Keras' ExportArchive; returns their descriptions."""
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

    def serve_images(images):
        # The signature's static shape is not enforced when TF-Serving feeds the placeholder,
        # and a wrong-rank tensor would abort the server inside the convolution kernel; this
        # turns it into an InvalidArgument error for that request.
        images = tf.ensure_shape(images, [None, height, width, channels])
        return predict(preprocessing.eval_tf(images))

    def decode_one(encoded):
        image = tf.io.decode_image(encoded, channels=channels, expand_animations=False)
        return tf.ensure_shape(preprocessing.eval_tf(image), [height, width, channels])

    def serve_image_bytes(image_bytes):
        # One image at a time: files in a batch may have different sizes.
        model_input = tf.map_fn(
            decode_one,
            image_bytes,
            fn_output_signature=tf.TensorSpec([height, width, channels], tf.float32),
        )
        return predict(model_input)

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
    return {name: _describe(fn.get_concrete_function()) for name, fn in endpoints.items()}


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
