"""tools/serving_client.py against stand-ins for TF-Serving that run the real exported model.

A local HTTP server (REST) and a local gRPC server answer like TF-Serving does, computing
their outputs by calling the exported SavedModel's signature. When `tensorflow_model_server`
is on PATH, one more test serves the export with the real binary.
"""

import base64
import concurrent.futures
import http.server
import importlib.util
import json
import os
import pathlib
import re
import subprocess
import sys
import threading
import time
import urllib.request

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers.cli import REPO, find_binary
from kerastransfer.data.preprocessing import Preprocessing
from kerastransfer.serving import export

CLIENT = pathlib.Path(REPO) / "tools" / "serving_client.py"
MODEL_SERVER = find_binary("tensorflow_model_server")
CLASS_NAMES = ["circle", "square", "triangle"]
MODEL_NAME = "shapes"

_spec = importlib.util.spec_from_file_location("serving_client", CLIENT)
serving_client = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(serving_client)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny 28x28 grey model exported as MODEL_NAME, loaded back, and test image files."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    version_dir = export.export_model(
        keras.Model(inputs, outputs),
        base_dir=str(tmp_path_factory.mktemp("exports")),
        model_name=MODEL_NAME,
        class_names=CLASS_NAMES,
        preprocessing=Preprocessing(image_size=(28, 28), channels=1),
        metadata={},
    )
    images_dir = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        image = rng.integers(0, 256, (28 + 4 * i, 28, 1), dtype=np.uint8)
        png, jpeg = images_dir / f"img{i}.png", images_dir / f"img{i}.jpg"
        png.write_bytes(tf.io.encode_png(image).numpy())
        jpeg.write_bytes(tf.io.encode_jpeg(image, quality=95).numpy())
        paths += [png, jpeg]
    return dict(
        version_dir=version_dir,
        loaded=tf.saved_model.load(version_dir),
        images_dir=images_dir,
        paths=sorted(str(p) for p in paths),
    )


def expected_output(exported, paths, k):
    """The CLI's output for `paths`, computed straight from the SavedModel."""
    outputs = exported["loaded"].signatures["predict_image_bytes"](
        image_bytes=tf.constant([pathlib.Path(p).read_bytes() for p in paths])
    )
    blocks = []
    for path, probabilities in zip(paths, outputs["probabilities"].numpy()):
        lines = [path]
        for rank, index in enumerate(np.argsort(-probabilities, kind="stable")[:k], 1):
            lines.append(f"  {rank}. {CLASS_NAMES[index]} ({index}): {probabilities[index]:.4f}")
        blocks.append("\n".join(lines))
    return "\n".join(blocks) + "\n"


class FakeRestHandler(http.server.BaseHTTPRequestHandler):
    """Answers POST /v1/models/NAME[/versions/N]:predict like TF-Serving's REST API.

    A subclass sets `loaded` (the SavedModel), and may set `unavailable` (how many calls
    to answer 503 first, as a full batch queue does) and `delay` (seconds before answering).
    """

    loaded = None
    unavailable = 0
    delay = 0.0
    calls = 0

    def do_POST(self):
        type(self).calls += 1
        time.sleep(self.delay)
        if type(self).calls <= self.unavailable:
            return self.reply(503, {"error": "The batch scheduling queue is full"})
        match = re.fullmatch(r"/v1/models/([^/:]+)(?:/versions/\d+)?:predict", self.path)
        if not match:
            return self.reply(404, {"error": f"Malformed request: POST {self.path}"})
        if match[1] != MODEL_NAME:
            return self.reply(404, {"error": f"Servable not found for request: Latest({match[1]})"})
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        signature_name = body.get("signature_name", "serving_default")
        if signature_name not in self.loaded.signatures:
            return self.reply(
                400, {"error": f'Serving signature name: "{signature_name}" not found'}
            )
        encoded = [base64.b64decode(row["image_bytes"]["b64"]) for row in body["instances"]]
        try:
            outputs = self.loaded.signatures[signature_name](image_bytes=tf.constant(encoded))
        except tf.errors.InvalidArgumentError as error:
            return self.reply(400, {"error": error.message})
        predictions = [
            {"probabilities": p.tolist(), "classes": int(c), "class_names": n.decode()}
            for p, c, n in zip(
                outputs["probabilities"].numpy(),
                outputs["classes"].numpy(),
                outputs["class_names"].numpy(),
            )
        ]
        self.reply(200, {"predictions": predictions})

    def reply(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        """Keeps the request log out of the test output."""


def serve_rest(loaded, **behaviour):
    """A fake TF-Serving REST endpoint in a thread: (HOST:PORT, its handler class, stop)."""
    handler = type("Handler", (FakeRestHandler,), {"loaded": loaded, **behaviour})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop():
        server.shutdown()
        server.server_close()
        thread.join()

    return f"127.0.0.1:{server.server_address[1]}", handler, stop


@pytest.fixture(scope="module")
def rest_server(exported):
    """HOST:PORT of a fake TF-Serving REST endpoint running in a thread."""
    address, _, stop = serve_rest(exported["loaded"])
    yield address
    stop()


def serve_grpc(loaded, unavailable=0):
    """A fake TF-Serving PredictionService: (HOST:PORT, its servicer class, stop); it answers
    UNAVAILABLE to the first `unavailable` calls."""
    # the serving extra's packages: only the tests that need them import them
    import grpc  # noqa: PLC0415
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc  # noqa: PLC0415

    class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
        calls = 0

        def Predict(self, request, context):
            type(self).calls += 1
            if type(self).calls <= unavailable:
                context.abort(grpc.StatusCode.UNAVAILABLE, "The batch scheduling queue is full")
            if request.model_spec.name != MODEL_NAME:
                context.abort(
                    grpc.StatusCode.NOT_FOUND,
                    f"Servable not found for request: Latest({request.model_spec.name})",
                )
            inputs = {name: tf.make_ndarray(t) for name, t in request.inputs.items()}
            try:
                outputs = loaded.signatures[request.model_spec.signature_name](**inputs)
            except tf.errors.InvalidArgumentError as error:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, error.message)
            response = predict_pb2.PredictResponse(model_spec=request.model_spec)
            for name, tensor in outputs.items():
                response.outputs[name].CopyFrom(tf.make_tensor_proto(tensor.numpy()))
            return response

    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return f"127.0.0.1:{port}", Servicer, lambda: server.stop(grace=None)


@pytest.fixture(scope="module")
def grpc_server(exported):
    """HOST:PORT of a fake TF-Serving PredictionService."""
    address, _, stop = serve_grpc(exported["loaded"])
    yield address
    stop()


def run_cli(*args):
    """Runs the client as a user would; returns the finished process."""
    return subprocess.run(
        [sys.executable, str(CLIENT), *args], capture_output=True, text=True, timeout=60
    )


def test_build_rest_request_sends_base64_images():
    request = serving_client.build_rest_request([b"\x89PNG-one", b"\xff\xd8\xff-two"])
    assert request["signature_name"] == "predict_image_bytes"
    assert [base64.b64decode(row["image_bytes"]["b64"]) for row in request["instances"]] == [
        b"\x89PNG-one",
        b"\xff\xd8\xff-two",
    ]
    json.dumps(request)  # the body must be JSON as is


def test_parse_rest_response():
    response = {"predictions": [{"probabilities": [0.2, 0.8], "classes": 1, "class_names": "b"}]}
    assert serving_client.parse_rest_response(response) == [
        {"probabilities": [0.2, 0.8], "classes": 1, "class_names": "b"}
    ]
    with pytest.raises(serving_client.ClientError, match="rejected the request: bad input"):
        serving_client.parse_rest_response({"error": "bad input"})
    with pytest.raises(serving_client.ClientError, match="predict_image_bytes"):
        serving_client.parse_rest_response({"predictions": [[0.2, 0.8]]})


def test_top_k_orders_by_probability_and_caps_k():
    assert serving_client.top_k([0.1, 0.6, 0.3], 2) == [(1, 0.6), (2, 0.3)]
    assert serving_client.top_k([0.5, 0.5], 5) == [(0, 0.5), (1, 0.5)]


def test_format_prediction_names_classes_it_knows():
    prediction = {"probabilities": [0.1, 0.6, 0.3], "classes": 1, "class_names": "square"}
    assert serving_client.format_prediction("a.png", prediction, 2) == (
        "a.png\n  1. square (1): 0.6000\n  2. class 2 (2): 0.3000"
    )
    assert serving_client.format_prediction("a.png", prediction, 2, CLASS_NAMES).endswith(
        "2. triangle (2): 0.3000"
    )


def test_rest_folder_and_file(exported, rest_server):
    extra = exported["paths"][0]
    result = run_cli(
        str(exported["images_dir"]),
        extra,
        "--server",
        rest_server,
        "--model_name",
        MODEL_NAME,
        "--top_k",
        "2",
        "--batch_size",
        "4",
        "--metadata",
        exported["version_dir"],
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected_output(exported, exported["paths"] + [extra], k=2)


def test_unreachable_server_is_one_line_exit_2_after_its_retries(exported, free_port):
    port = free_port
    result = run_cli(exported["paths"][0], "--server", f"127.0.0.1:{port}", "--retries", "2")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"error: cannot reach TF-Serving at http://127.0.0.1:{port}: connection refused (3 "
        "tries over 1.5 s); start it with the docker command in the README or pass --server\n"
    )


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_unavailable_server_is_retried_with_growing_waits(exported, capsys, monkeypatch, protocol):
    """TF-Serving answers UNAVAILABLE while it loads a model or its batch queue is full."""
    monkeypatch.setattr(serving_client, "FIRST_BACKOFF", 0.05)
    serve = serve_rest if protocol == "rest" else serve_grpc
    address, counter, stop = serve(exported["loaded"], unavailable=2)
    try:
        argv = [*exported["paths"][:2], "--protocol", protocol, "--server", address]
        argv += ["--metadata", exported["version_dir"]]
        started = time.monotonic()
        status = serving_client.main([*argv, "--model_name", MODEL_NAME, "--top_k", "3"])
        assert (status, counter.calls) == (0, 3), capsys.readouterr().err
        assert time.monotonic() - started >= 0.05 + 0.1  # waited before each retry
        assert capsys.readouterr().out == expected_output(exported, exported["paths"][:2], k=3)
        counter.calls = 0  # now unavailable for longer than the client retries
        assert serving_client.main([*argv, "--retries", "1", "--model_name", MODEL_NAME]) == 2
        assert "(2 tries over 0.05 s)" in capsys.readouterr().err
    finally:
        stop()


def test_every_call_has_a_deadline(exported, capsys):
    address, _, stop = serve_rest(exported["loaded"], delay=3)
    try:
        started = time.monotonic()
        argv = [exported["paths"][0], "--server", address, "--timeout", "0.5"]
        assert serving_client.main(argv) == 2
        assert time.monotonic() - started < 2.5
    finally:
        stop()
    assert capsys.readouterr().err == (
        f"error: TF-Serving at http://{address} did not answer within 0.5 s; pass a larger "
        "--timeout or fewer images per --batch_size\n"
    )


def test_progress_bar_for_a_folder_of_many_images(exported, rest_server, capsys):
    argv = [str(exported["images_dir"]), "--server", rest_server, "--model_name", MODEL_NAME]
    argv += ["--metadata", exported["version_dir"]]
    assert serving_client.main([*argv, "--batch_size", "4", "--progress"]) == 0
    captured = capsys.readouterr()
    assert captured.out == expected_output(exported, exported["paths"], k=5)
    bars = [part for part in captured.err.split("\r") if part.startswith("[")]
    assert bars[-1] == "[" + "#" * 30 + "] 6/6 images\n"
    assert "] 4/6 images" in captured.err
    # Off by default when stderr is not a terminal.
    assert serving_client.main([*argv, "--batch_size", "4"]) == 0
    assert capsys.readouterr().err == ""


def test_model_not_loaded(exported, rest_server):
    result = run_cli(exported["paths"][0], "--server", rest_server, "--model_name", "nope")
    assert result.returncode == 2
    assert result.stderr == (
        f"error: model 'nope' is not loaded on TF-Serving at http://{rest_server} (Servable not "
        "found for request: Latest(nope)); check the names in models.config or pass the right "
        "--model_name\n"
    )


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_files_the_server_refuses_get_a_line_each_and_the_rest_predict(
    exported, tmp_path, capsys, rest_server, grpc_server, protocol
):
    """The graph refuses a whole batch for one bad file: the client sends that batch again
    file by file, and names each refused file with the graph's own reason."""
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    good = pathlib.Path(next(path for path in exported["paths"] if path.endswith(".png")))
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:60])
    server = rest_server if protocol == "rest" else grpc_server
    argv = [str(corrupt), str(good), str(truncated), "--protocol", protocol, "--server", server]
    argv += ["--metadata", exported["version_dir"]]
    assert serving_client.main([*argv, "--model_name", MODEL_NAME, "--top_k", "2"]) == 2
    captured = capsys.readouterr()
    assert captured.out == expected_output(exported, [str(good)], k=2)
    assert captured.err == (
        f"error: {corrupt} is a damaged PNG file (no IHDR chunk after its signature)\n"
        f"error: {truncated} is a truncated PNG file (no IEND chunk)\n"
    )


def make_bad_path(directory, kind):
    """A path the client must refuse before contacting any server."""
    if kind == "missing":
        return directory / "missing.png"
    if kind == "not an image":
        (directory / "notes.png").write_text("hello")
        return directory / "notes.png"
    (directory / "empty").mkdir()
    return directory / "empty"


@pytest.mark.parametrize(
    "kind, message",
    [
        ("missing", "does not exist: pass PNG/JPEG files or folders"),
        ("not an image", "is not a PNG or JPEG file"),
        ("empty folder", "no .png/.jpg/.jpeg files in folder"),
    ],
)
def test_bad_image_paths_get_one_line_each_and_the_rest_predict(
    exported, tmp_path, capsys, rest_server, kind, message
):
    path = make_bad_path(tmp_path, kind)
    good = exported["paths"][0]
    argv = [good, str(path), "--server", rest_server, "--model_name", MODEL_NAME, "--top_k", "1"]
    argv += ["--metadata", exported["version_dir"]]
    assert serving_client.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == expected_output(exported, [good], k=1)
    assert message in captured.err and str(path) in captured.err
    assert captured.err.count("\n") == 1


def test_nothing_readable_sends_nothing(tmp_path, capsys, free_port):
    # Nothing listens on the port: a refused connection would mean a request was made.
    argv = [str(make_bad_path(tmp_path, "missing")), "--server", f"127.0.0.1:{free_port}"]
    assert serving_client.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert "does not exist" in captured.err


def test_grpc(exported, grpc_server, capsys):
    paths = exported["paths"][:3]
    status = serving_client.main(
        [
            *paths,
            "--protocol",
            "grpc",
            "--server",
            grpc_server,
            "--model_name",
            MODEL_NAME,
            "--top_k",
            "3",
            "--metadata",
            os.path.join(exported["version_dir"], "metadata.json"),
        ]
    )
    assert status == 0
    assert capsys.readouterr().out == expected_output(exported, paths, k=3)


def test_grpc_errors(exported, grpc_server, capsys, free_port):
    image = exported["paths"][0]
    assert serving_client.main([image, "--protocol", "grpc", "--server", grpc_server]) == 2
    assert "model 'kerastransfer' is not loaded on TF-Serving at grpc://" in capsys.readouterr().err
    port = free_port
    argv = [image, "--protocol", "grpc", "--server", f"127.0.0.1:{port}", "--retries", "0"]
    assert serving_client.main(argv) == 2
    assert capsys.readouterr().err == (
        f"error: cannot reach TF-Serving at grpc://127.0.0.1:{port}: connection refused (1 try); "
        "start it with the docker command in the README or pass --server\n"
    )


@pytest.mark.skipif(
    MODEL_SERVER is None,
    reason="tensorflow_model_server is not installed (install it or use the tensorflow/serving "
    "image)",
)
def test_real_tensorflow_model_server(exported, free_ports):
    base_dir = os.path.dirname(os.path.dirname(exported["version_dir"]))
    grpc_port, rest_port = free_ports(2)
    server = subprocess.Popen(
        [
            MODEL_SERVER,
            f"--port={grpc_port}",
            f"--rest_api_port={rest_port}",
            f"--model_config_file={os.path.join(base_dir, export.MODELS_CONFIG_FILE)}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        status_url = f"http://127.0.0.1:{rest_port}/v1/models/{MODEL_NAME}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(status_url, timeout=2) as reply:
                    states = [v["state"] for v in json.load(reply)["model_version_status"]]
                if "AVAILABLE" in states:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "model never loaded"
            time.sleep(0.5)
        paths = exported["paths"]
        common = ["--model_name", MODEL_NAME, "--top_k", "3", "--metadata", exported["version_dir"]]
        for protocol, port in [("rest", rest_port), ("grpc", grpc_port)]:
            result = run_cli(
                *paths, "--protocol", protocol, "--server", f"127.0.0.1:{port}", *common
            )
            assert result.returncode == 0, result.stderr
            assert result.stdout == expected_output(exported, paths, k=3)
    finally:
        server.terminate()
        server.wait(timeout=30)
