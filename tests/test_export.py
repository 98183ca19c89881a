"""Export to a TF-Serving layout: real Keras models, real SavedModels, real files.

A tiny random-weight CNN is exported twice; the SavedModel is read back in a fresh Python
process and with saved_model_cli, and its signatures are compared with the in-memory model.
"""

import datetime
import json
import logging
import os
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format

from helpers.cli import python_tool
from helpers.exports import smooth_images, tiny_model
from kerastransfer import config
from kerastransfer.data.preprocessing import Preprocessing
from kerastransfer.errors import UsageError
from kerastransfer.models.preprocessing import IMAGENET_MEAN_RGB
from kerastransfer.serving import export, images

CLASS_NAMES = ["circle", "square", "triangle"]
METADATA = {"run_id": "run-7", "split": "A->B", "treatment": "AnB", "n": 3, "metrics": {"acc": 0.5}}
SUBPROCESS_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
# TensorFlow's saved_model_cli of the Python running the tests (not whatever PATH has)
SAVED_MODEL_CLI = python_tool("saved_model_cli", "tensorflow.python.tools.saved_model_cli")


def confident_images(model, preprocessing, rng, per_class=2):
    """The images of a random pool the model is surest about, `per_class` for each class.

    Clear winners keep the class comparison meaningful after JPEG's small pixel changes.
    """
    pool = smooth_images(rng, 60, *model.input_shape[1:])
    probabilities, classes, _ = keras_outputs(model, preprocessing, pool)
    chosen = [
        np.flatnonzero(classes == k)[np.argsort(-probabilities[classes == k, k])[:per_class]]
        for k in range(len(CLASS_NAMES))
    ]
    assert all(len(indices) == per_class for indices in chosen), "a class never wins: reseed"
    return pool[np.concatenate(chosen)]


def keras_outputs(model, preprocessing, images):
    """What the signatures must return, from the in-memory model."""
    probabilities = model(preprocessing.eval_tf(images), training=False).numpy()
    classes = probabilities.argmax(axis=-1)
    return probabilities, classes, np.array(CLASS_NAMES)[classes]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The grey 28x28 model exported twice as "digits" (versions 1 and 2)."""
    keras.utils.set_random_seed(2)
    model = tiny_model((28, 28, 1))
    preprocessing = Preprocessing(image_size=(28, 28), channels=1)
    images = confident_images(model, preprocessing, np.random.default_rng(0))
    base_dir = str(tmp_path_factory.mktemp("exports"))
    kwargs = dict(
        base_dir=base_dir,
        model_name="digits",
        class_names=CLASS_NAMES,
        preprocessing=preprocessing,
        metadata=METADATA,
        warmup_images=images[:3],
    )
    versions = [export.export_model(model, **kwargs) for _ in range(2)]
    return dict(
        model=model,
        preprocessing=preprocessing,
        images=images,
        base_dir=base_dir,
        versions=versions,
        loaded=tf.saved_model.load(versions[0]),
    )


@pytest.fixture(scope="module")
def rgb_exported(exported):
    """An RGB ImageNet-style model (mean, resize shorter side + center crop) beside "digits"."""
    keras.utils.set_random_seed(1)
    model = tiny_model((24, 24, 3))
    preprocessing = Preprocessing(
        image_size=(24, 24), channels=3, mean=IMAGENET_MEAN_RGB, resize_shorter=28
    )
    version_dir = export.export_model(
        model,
        base_dir=exported["base_dir"],
        model_name="rgb",
        class_names=CLASS_NAMES,
        preprocessing=preprocessing,
        metadata={},
    )
    return dict(model=model, preprocessing=preprocessing, version_dir=version_dir)


def test_fresh_process_signatures_match_keras_model(exported, tmp_path):
    images = exported["images"]
    np.save(tmp_path / "images.npy", images.astype(np.float32))
    for i, image in enumerate(images):
        (tmp_path / f"img{i}.png").write_bytes(tf.io.encode_png(image).numpy())
        (tmp_path / f"img{i}.jpeg").write_bytes(tf.io.encode_jpeg(image, quality=95).numpy())
    script = textwrap.dedent("""
        import glob, json, sys
        import numpy as np, tensorflow as tf
        version_dir, work = sys.argv[1:]
        loaded = tf.saved_model.load(version_dir)
        described = {
            name: {
                "inputs": {k: [v.dtype.name, v.shape.as_list()]
                           for k, v in fn.structured_input_signature[1].items()},
                "outputs": {k: [v.dtype.name, v.shape.as_list()]
                            for k, v in fn.structured_outputs.items()},
            }
            for name, fn in loaded.signatures.items()
        }
        images = tf.constant(np.load(f"{work}/images.npy"))
        results = {"float": loaded.signatures["serving_default"](images=images)}
        for fmt in ("png", "jpeg"):
            files = sorted(glob.glob(f"{work}/img*.{fmt}"))
            encoded = tf.constant([open(f, "rb").read() for f in files])
            results[fmt] = loaded.signatures["predict_image_bytes"](image_bytes=encoded)
        np.savez(f"{work}/outputs.npz", **{
            f"{path}.{key}":
                value.numpy().astype(str) if value.dtype == tf.string else value.numpy()
            for path, outputs in results.items() for key, value in outputs.items()})
        json.dump(described, open(f"{work}/signatures.json", "w"))
        """)
    subprocess.run(
        [sys.executable, "-c", script, exported["versions"][0], str(tmp_path)],
        check=True,
        env=SUBPROCESS_ENV,
        timeout=120,
    )

    outputs_spec = {
        "probabilities": ["float32", [None, 3]],
        "classes": ["int64", [None]],
        "class_names": ["string", [None]],
    }
    assert json.loads((tmp_path / "signatures.json").read_text()) == {
        "serving_default": {
            "inputs": {"images": ["float32", [None, 28, 28, 1]]},
            "outputs": outputs_spec,
        },
        "predict_image_bytes": {
            "inputs": {"image_bytes": ["string", [None]]},
            "outputs": outputs_spec,
        },
    }
    served = np.load(tmp_path / "outputs.npz")
    model, preprocessing = exported["model"], exported["preprocessing"]
    probabilities, classes, names = keras_outputs(model, preprocessing, images)
    for path in ("float", "png"):
        np.testing.assert_allclose(
            served[f"{path}.probabilities"], probabilities, rtol=0, atol=1e-5
        )
        np.testing.assert_array_equal(served[f"{path}.classes"], classes)
        np.testing.assert_array_equal(served[f"{path}.class_names"], names)
    # JPEG is lossy: same classes and nearly the same probabilities as the raw pixels, and
    # exactly what the model gives on the decoded JPEG pixels.
    np.testing.assert_array_equal(served["jpeg.classes"], classes)
    np.testing.assert_allclose(served["jpeg.probabilities"], probabilities, rtol=0, atol=0.05)
    decoded = np.stack(
        [tf.io.decode_jpeg((tmp_path / f"img{i}.jpeg").read_bytes()) for i in range(len(images))]
    )
    jpeg_probabilities, _, jpeg_names = keras_outputs(model, preprocessing, decoded)
    np.testing.assert_allclose(served["jpeg.probabilities"], jpeg_probabilities, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(served["jpeg.class_names"], jpeg_names)


def test_saved_model_cli_show_lists_both_signatures(exported):
    shown = subprocess.run(
        [*SAVED_MODEL_CLI, "show", "--dir", exported["versions"][0], "--all"],
        check=True,
        capture_output=True,
        text=True,
        env=SUBPROCESS_ENV,
        timeout=120,
    ).stdout
    for expected in [
        "signature_def['serving_default']",
        "signature_def['predict_image_bytes']",
        "inputs['images'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, 28, 28, 1)",
        "inputs['image_bytes'] tensor_info:\n        dtype: DT_STRING\n        shape: (-1)",
        "outputs['probabilities'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, 3)",
        "outputs['classes'] tensor_info:\n        dtype: DT_INT64",
        "outputs['class_names'] tensor_info:\n        dtype: DT_STRING",
    ]:
        assert expected in shown


def test_saved_model_cli_run_on_npy_batch(exported, tmp_path):
    images = exported["images"]
    np.save(tmp_path / "batch.npy", images.astype(np.float32))
    subprocess.run(
        [
            *SAVED_MODEL_CLI,
            "run",
            "--dir",
            exported["versions"][0],
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--inputs",
            f"images={tmp_path / 'batch.npy'}",
            "--outdir",
            str(tmp_path / "out"),
        ],
        check=True,
        capture_output=True,
        env=SUBPROCESS_ENV,
        timeout=120,
    )
    probabilities, classes, _ = keras_outputs(exported["model"], exported["preprocessing"], images)
    np.testing.assert_allclose(
        np.load(tmp_path / "out/probabilities.npy"), probabilities, atol=1e-5
    )
    np.testing.assert_array_equal(np.load(tmp_path / "out/classes.npy"), classes)


def test_versions_are_kept_and_listed_in_models_config(exported, rgb_exported):
    from tensorflow_serving.config import model_server_config_pb2  # noqa: PLC0415  (optional extra)

    base_dir = exported["base_dir"]
    model_dir = os.path.join(base_dir, "digits")
    assert exported["versions"] == [os.path.join(model_dir, "1"), os.path.join(model_dir, "2")]
    assert sorted(os.listdir(model_dir)) == ["1", "2"]  # no staging directory left behind
    assert export.next_version(base_dir, "digits") == 3
    expected, _, _ = keras_outputs(exported["model"], exported["preprocessing"], exported["images"])
    for version_dir in exported["versions"]:
        for name in ["saved_model.pb", "metadata.json", export.WARMUP_FILE]:
            assert os.path.isfile(os.path.join(version_dir, name))
        served = tf.saved_model.load(version_dir).signatures["serving_default"](
            images=tf.constant(exported["images"], tf.float32)
        )
        np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5)

    with open(os.path.join(base_dir, "models.config")) as f:
        config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
    assert [(c.name, c.base_path, c.model_platform) for c in config.model_config_list.config] == [
        ("digits", model_dir, "tensorflow"),
        ("rgb", os.path.join(base_dir, "rgb"), "tensorflow"),
    ]
    assert os.path.isabs(model_dir)


def test_next_version_ignores_non_integer_entries(tmp_path):
    assert export.next_version(str(tmp_path), "absent") == 1
    for name in ["3", "7", "notes", ".export-tmp-abc"]:
        (tmp_path / "m" / name).mkdir(parents=True)
    assert export.next_version(str(tmp_path), "m") == 8


def batching_parameters_class():
    """TF-Serving's BatchingParameters message (session_bundle_config.proto), with the fields
    the export writes; tensorflow-serving-api does not ship that proto."""
    from google.protobuf import (  # noqa: PLC0415  (only this test builds protos)
        descriptor_pb2,
        descriptor_pool,
        message_factory,
        wrappers_pb2,
    )

    proto = descriptor_pb2.FileDescriptorProto(
        name="session_bundle_config.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    message = proto.message_type.add(name="BatchingParameters")
    names = ["max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads"]
    for number, name in enumerate(names, 1):
        message.field.add(
            name=name,
            number=number,
            type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
            type_name=".google.protobuf.Int64Value",
        )
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(proto)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters")
    )


def test_batching_parameters_fit_every_model_and_parse_as_tf_serving_reads_them(exported, tmp_path):
    """One file for all models: the smallest batch cap (a merged batch no graph refuses) and
    the shortest suggested wait."""
    common = dict(
        base_dir=str(tmp_path),
        class_names=CLASS_NAMES,
        preprocessing=exported["preprocessing"],
        metadata={},
    )
    suggested = []
    for name, max_batch in [("wide", 64), ("narrow", 1)]:
        version_dir = export.export_model(
            exported["model"], model_name=name, max_batch=max_batch, **common
        )
        with open(os.path.join(version_dir, "metadata.json")) as f:
            suggested.append(json.load(f)["export"]["batching"]["batch_timeout_micros"])
        # TF-Serving would not load a version whose warmup requests its graph refuses.
        for log in read_warmup(version_dir):
            for tensor in log.predict_log.request.inputs.values():
                assert tensor.tensor_shape.dim[0].size == min(max_batch, 2)
    with open(tmp_path / export.BATCHING_FILE) as f:
        text = f.read()
    parameters = text_format.Parse(text, batching_parameters_class()())
    assert parameters.max_batch_size.value == 1
    assert parameters.batch_timeout_micros.value == min(suggested)
    assert parameters.max_enqueued_batches.value == 16
    assert not parameters.HasField("num_batch_threads")  # TF-Serving: one per core
    assert "narrow/1, wide/1" in text


@pytest.mark.parametrize(
    "flag, value, message",
    [
        (
            "export_max_batch",
            0,
            "--export_max_batch=0 must be positive, e.g. --export_max_batch=64",
        ),
        (
            "export_max_image_pixels",
            2**40,
            f"--export_max_image_pixels={2**40} is over 2147483647; use a smaller limit, e.g. "
            "the default 25000000",
        ),
    ],
)
def test_export_limits_are_checked_with_the_flags(flag, value, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        config.Experiment(workdir="unused").replace(**{flag: value})


def test_export_removes_staging_left_by_a_killed_export_but_not_a_live_ones(exported, tmp_path):
    """A killed export leaves a staging directory nobody holds (the kernel drops a dead
    process's flock); one an export is still writing is locked and stays."""
    model_dir = tmp_path / "digits"
    stale = model_dir / ".export-tmp-killed"
    (stale / "saved_model" / "variables").mkdir(parents=True)
    (stale / "saved_model" / "saved_model.pb").write_bytes(b"half written")
    live = model_dir / ".export-tmp-live"
    live.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()",
            str(live),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "locked\n"
        version_dir = export.export_model(
            exported["model"],
            base_dir=str(tmp_path),
            model_name="digits",
            class_names=CLASS_NAMES,
            preprocessing=exported["preprocessing"],
            metadata={},
        )
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert version_dir == str(model_dir / "1")
    assert sorted(os.listdir(model_dir)) == [".export-tmp-live", "1"]


def test_failed_export_leaves_no_version(exported, tmp_path):
    with pytest.raises(TypeError, match="not JSON serializable"):
        export.export_model(
            exported["model"],
            base_dir=str(tmp_path),
            model_name="digits",
            class_names=CLASS_NAMES,
            preprocessing=exported["preprocessing"],
            metadata={"unserializable": object()},
        )
    assert os.listdir(tmp_path / "digits") == []


def test_bad_tensors_are_rejected_with_clear_errors(exported):
    serve = exported["loaded"].signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[1,27,28,1\] is not compatible"):
        serve(images=tf.zeros([1, 27, 28, 1]))
    # A missing batch axis would otherwise abort the process inside the convolution kernel.
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[28,28,1\] is not compatible"):
        serve(images=tf.zeros([28, 28, 1]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a float tensor"):
        serve(images=tf.zeros([1, 28, 28, 1], tf.int32))
    # Every hostile file and its message: tests/test_hostile_input.py.
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"image_bytes\[1\] is neither PNG"):
        exported["loaded"].signatures["predict_image_bytes"](
            image_bytes=tf.constant([tf.io.encode_png(exported["images"][0]).numpy(), b"garbage"])
        )
    assert serve(images=tf.zeros([2, 28, 28, 1]))["probabilities"].shape == (2, 3)


def test_bytes_signature_resizes_and_crops_each_image(rgb_exported):
    """Files of different sizes and channels share one batch and match the eval pipeline."""
    rng = np.random.default_rng(1)
    images = [
        smooth_images(rng, 1, h, w, c)[0] for h, w, c in [(40, 32, 3), (28, 52, 3), (36, 36, 1)]
    ]
    loaded = tf.saved_model.load(rgb_exported["version_dir"])
    served = loaded.signatures["predict_image_bytes"](
        image_bytes=tf.constant([tf.io.encode_png(image).numpy() for image in images])
    )
    expected = np.concatenate(
        [
            keras_outputs(rgb_exported["model"], rgb_exported["preprocessing"], image[None])[0]
            for image in images
        ]
    )
    np.testing.assert_allclose(served["probabilities"], expected, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(served["classes"], expected.argmax(axis=-1))


def read_warmup(version_dir):
    from tensorflow_serving.apis import prediction_log_pb2  # noqa: PLC0415  (optional extra)

    path = os.path.join(version_dir, export.WARMUP_FILE)
    return [
        prediction_log_pb2.PredictionLog.FromString(record.numpy())
        for record in tf.data.TFRecordDataset(path)
    ]


def test_warmup_requests_replay_through_both_signatures(exported):
    warmup_images = exported["images"][:3]
    logs = read_warmup(exported["versions"][0])
    requests = {
        log.predict_log.request.model_spec.signature_name: log.predict_log.request for log in logs
    }
    assert len(logs) == 2 and set(requests) == {"serving_default", "predict_image_bytes"}
    assert {r.model_spec.name for r in requests.values()} == {"digits"}

    images = requests["serving_default"].inputs
    assert list(images) == ["images"] and images["images"].dtype == tf.float32.as_datatype_enum
    assert [d.size for d in images["images"].tensor_shape.dim] == [3, 28, 28, 1]
    np.testing.assert_array_equal(tf.make_ndarray(images["images"]), warmup_images)
    encoded = requests["predict_image_bytes"].inputs
    assert (
        list(encoded) == ["image_bytes"]
        and encoded["image_bytes"].dtype == tf.string.as_datatype_enum
    )
    assert [d.size for d in encoded["image_bytes"].tensor_shape.dim] == [3]
    decoded = [tf.io.decode_png(data).numpy() for data in tf.make_ndarray(encoded["image_bytes"])]
    np.testing.assert_array_equal(decoded, warmup_images)

    # What TF-Serving does on load: run each request through its signature.
    for signature_name, request in requests.items():
        inputs = {name: tf.constant(tf.make_ndarray(t)) for name, t in request.inputs.items()}
        outputs = exported["loaded"].signatures[signature_name](**inputs)
        assert outputs["probabilities"].shape == (3, 3)


def test_default_warmup_uses_black_images(rgb_exported):
    request = read_warmup(rgb_exported["version_dir"])[0].predict_log.request
    np.testing.assert_array_equal(
        tf.make_ndarray(request.inputs["images"]), np.zeros((2, 24, 24, 3))
    )


def test_export_without_serving_api_skips_warmup(exported, tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "tensorflow_serving.apis", None)
    with caplog.at_level(logging.WARNING, logger="kerastransfer.serving.export"):
        version_dir = export.export_model(
            exported["model"],
            base_dir=str(tmp_path),
            model_name="digits",
            class_names=CLASS_NAMES,
            preprocessing=exported["preprocessing"],
            metadata={},
        )
    assert "tensorflow-serving-api is not installed" in caplog.text
    assert not os.path.exists(os.path.join(version_dir, "assets.extra"))
    assert os.path.isfile(os.path.join(version_dir, "saved_model.pb"))
    with open(os.path.join(version_dir, "metadata.json")) as f:
        assert json.load(f)["export"]["warmup_requests"] is False


def test_metadata_json(exported):
    with open(os.path.join(exported["versions"][1], "metadata.json")) as f:
        metadata = json.load(f)
    written = metadata.pop("export")
    assert metadata == METADATA
    exported_at = datetime.datetime.fromisoformat(written["exported_at"])
    assert abs(datetime.datetime.now(datetime.timezone.utc) - exported_at) < datetime.timedelta(
        hours=1
    )
    assert written["model_name"] == "digits"
    assert written["class_names"] == CLASS_NAMES
    assert written["warmup_requests"] is True
    assert written["limits"] == {
        "max_image_pixels": config.default("export_max_image_pixels"),
        "max_batch": config.default("export_max_batch"),
        "decode_parallelism": images.DECODE_PARALLELISM,
    }
    batching = written["batching"]
    assert batching["max_batch_size"] == config.default("export_max_batch")
    assert batching["single_request_micros"] > 0
    assert 100 <= batching["batch_timeout_micros"] <= 10_000
    assert Preprocessing.from_json(written["preprocessing"]) == exported["preprocessing"]
    signatures = written["signatures"]
    assert set(signatures) == {"serving_default", "predict_image_bytes"}
    assert signatures["serving_default"]["inputs"]["images"]["shape"] == [None, 28, 28, 1]
    assert signatures["predict_image_bytes"]["inputs"]["image_bytes"]["dtype"] == "string"
    for signature in signatures.values():
        assert set(signature["outputs"]) == {"probabilities", "classes", "class_names"}
        assert signature["outputs"]["classes"]["dtype"] == "int64"
        assert all(tensor["description"] for tensor in signature["outputs"].values())


@pytest.mark.parametrize(
    "change, error, message",
    [
        (dict(class_names=["a", "b"]), UsageError, "2 class names for a model with 3 outputs"),
        (
            dict(preprocessing=Preprocessing(image_size=(32, 32), channels=1)),
            UsageError,
            r"preprocessing gives \(32, 32\)x1 images but the model takes 28x28x1",
        ),
        (
            dict(model_name="digits/v2"),
            UsageError,
            "'digits/v2' is not a valid TF-Serving model name",
        ),
        (
            dict(warmup_images=np.zeros((2, 28, 28, 1), np.float32)),
            ValueError,
            "warmup_images must be uint8",
        ),
        (dict(metadata={"export": 1}), ValueError, "must not have an 'export' key"),
    ],
)
def test_mismatched_arguments_are_refused_before_writing(
    exported, tmp_path, change, error, message
):
    kwargs = {
        "base_dir": str(tmp_path / "base"),
        "model_name": "digits",
        "class_names": CLASS_NAMES,
        "preprocessing": exported["preprocessing"],
        "metadata": {},
        **change,
    }
    with pytest.raises(error, match=message):
        export.export_model(exported["model"], **kwargs)
    assert not os.path.exists(tmp_path / "base")
