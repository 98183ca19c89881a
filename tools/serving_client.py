"""Sends PNG/JPEG images to a running TF-Serving and prints the top-k classes of each.

Talks to the `predict_image_bytes` signature that `kerastransfer.export` writes, over REST
(port 8501, standard library only) or gRPC (port 8500, needs tensorflow-serving-api):

    python tools/serving_client.py photos/ cat.jpg --model_name kerastransfer --top_k 3
    python tools/serving_client.py photos/ --protocol grpc --server myhost:8500

The server returns the probabilities and the name of the most probable class; pass
`--metadata` (an exported version directory or its metadata.json) to name every class shown.
Problems (server unreachable, model not loaded, unreadable image) print one line on stderr
and exit with status 2.
"""

import argparse
import base64
import json
import os
import sys
import urllib.error
import urllib.request

SIGNATURE_NAME = "predict_image_bytes"
DEFAULT_PORTS = {"rest": 8501, "grpc": 8500}
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")
_START_HINT = "start it with the docker command in the README or pass --server"


class ClientError(Exception):
    """A problem the user can fix; `main` prints it as one line and exits 2."""


def find_images(paths):
    """Expands files and folders (their PNG/JPEG files, sorted, not recursive) into file paths."""
    images = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(
                os.path.join(path, name)
                for name in os.listdir(path)
                if name.lower().endswith(IMAGE_EXTENSIONS)
                and os.path.isfile(os.path.join(path, name))
            )
            if not found:
                raise ClientError(f"no .png/.jpg/.jpeg files in folder {path!r}")
            images.extend(found)
        elif os.path.isfile(path):
            images.append(path)
        else:
            raise ClientError(f"image path {path!r} does not exist: pass PNG/JPEG files or folders")
    return images


def read_image(path):
    """The bytes of a PNG or JPEG file; anything else is refused before it reaches the server."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        raise ClientError(f"cannot read image {path!r}: {error.strerror}") from None
    if not data.startswith(_IMAGE_MAGIC):
        raise ClientError(f"{path!r} is not a PNG or JPEG file: pass only PNG/JPEG images")
    return data


def build_rest_request(encoded_images):
    """The JSON body of a REST predict call for encoded images (row format, base64 strings)."""
    return {
        "signature_name": SIGNATURE_NAME,
        "instances": [
            {"image_bytes": {"b64": base64.b64encode(data).decode("ascii")}}
            for data in encoded_images
        ],
    }


def parse_rest_response(response):
    """Per-image dicts {"probabilities": [...], "classes": int, "class_names": str}.

    Args:
        response: the decoded JSON body TF-Serving answered a row-format predict call with.
    """
    if "error" in response:
        raise ClientError(f"TF-Serving rejected the request: {response['error']}")
    try:
        return [
            {
                "probabilities": [float(p) for p in row["probabilities"]],
                "classes": int(row["classes"]),
                "class_names": str(row["class_names"]),
            }
            for row in response["predictions"]
        ]
    except (KeyError, TypeError, ValueError) as error:
        raise ClientError(
            f"unexpected TF-Serving response ({type(error).__name__}: {error}): is the model "
            f"an export of kerastransfer with the {SIGNATURE_NAME!r} signature?"
        ) from error


def top_k(probabilities, k):
    """The k (class index, probability) pairs with the highest probability, highest first."""
    ranked = sorted(enumerate(probabilities), key=lambda pair: (-pair[1], pair[0]))
    return ranked[:k]


def predict_rest(server, model_name, encoded_images, timeout):
    """Predicts through TF-Serving's REST API; returns `parse_rest_response`'s list."""
    base_url = server if "://" in server else f"http://{server}"
    url = f"{base_url}/v1/models/{model_name}:predict"
    request = urllib.request.Request(
        url,
        data=json.dumps(build_rest_request(encoded_images)).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            body = reply.read()
    except urllib.error.HTTPError as error:
        message = _rest_error_message(error)
        if error.code == 404:
            raise _model_not_loaded(model_name, base_url, message) from None
        raise ClientError(
            f"TF-Serving at {base_url} rejected the request (HTTP {error.code}): {message}"
        ) from None
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, ConnectionRefusedError):
            reason = "connection refused"
        raise ClientError(
            f"cannot reach TF-Serving at {base_url}: {reason}; {_START_HINT}"
        ) from None
    except TimeoutError:
        raise ClientError(
            f"TF-Serving at {base_url} did not answer within {timeout:g} s; pass a larger "
            "--timeout or fewer images per --batch_size"
        ) from None
    try:
        response = json.loads(body)
    except ValueError:
        raise ClientError(
            f"TF-Serving at {base_url} answered with non-JSON: {body[:200]!r}"
        ) from None
    return parse_rest_response(response)


def predict_grpc(server, model_name, encoded_images, timeout):
    """Predicts through TF-Serving's gRPC API; returns the same list as `predict_rest`."""
    try:
        import grpc  # noqa: PLC0415  (gRPC needs the serving extra; REST needs nothing)
        import tensorflow as tf  # noqa: PLC0415
        from tensorflow_serving.apis import (  # noqa: PLC0415
            predict_pb2,
            prediction_service_pb2_grpc,
        )
    except ImportError as error:
        raise ClientError(
            f"--protocol grpc needs tensorflow-serving-api ({error}): pip install "
            "'kerastransfer[serving]' or use --protocol rest"
        ) from None
    target = server.split("://")[-1]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = SIGNATURE_NAME
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto(encoded_images, dtype=tf.string))
    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            reply = stub.Predict(request, timeout=timeout)
        except grpc.RpcError as error:
            raise _grpc_error(error, f"grpc://{target}", model_name, timeout) from None
    outputs = {name: tf.make_ndarray(tensor) for name, tensor in reply.outputs.items()}
    return [
        {
            "probabilities": [float(p) for p in probabilities],
            "classes": int(index),
            "class_names": name.decode("utf-8"),
        }
        for probabilities, index, name in zip(
            outputs["probabilities"], outputs["classes"], outputs["class_names"]
        )
    ]


def load_class_names(path):
    """All class names from an export's metadata.json (or the version directory holding it)."""
    if os.path.isdir(path):
        path = os.path.join(path, "metadata.json")
    try:
        with open(path, encoding="utf-8") as f:
            return list(json.load(f)["export"]["class_names"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ClientError(
            f"cannot read class names from --metadata {path!r} ({type(error).__name__}: "
            f"{error}): pass an exported version directory or its metadata.json"
        ) from None


def format_prediction(path, prediction, k, class_names=None):
    """Lines showing the top-k classes of one image, named where the name is known."""
    names = dict(enumerate(class_names or ()))
    names.setdefault(prediction["classes"], prediction["class_names"])
    lines = [path]
    for rank, (index, probability) in enumerate(top_k(prediction["probabilities"], k), 1):
        lines.append(f"  {rank}. {names.get(index, f'class {index}')} ({index}): {probability:.4f}")
    return "\n".join(lines)


def _rest_error_message(error):
    """The "error" field of a TF-Serving REST error body, or the raw body."""
    body = error.read().decode("utf-8", "replace")
    try:
        return json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return body.strip() or error.reason


def _model_not_loaded(model_name, server, message):
    return ClientError(
        f"model {model_name!r} is not loaded on TF-Serving at {server} ({message}); check the "
        "names in models.config or pass the right --model_name"
    )


def _grpc_error(error, server, model_name, timeout):
    """A ClientError for a failed gRPC call, by status code."""
    import grpc  # noqa: PLC0415  (only a gRPC call gets here)

    code, details = error.code(), error.details()
    if code == grpc.StatusCode.UNAVAILABLE:
        reason = "connection refused" if "connection refused" in details.lower() else details
        return ClientError(f"cannot reach TF-Serving at {server}: {reason}; {_START_HINT}")
    if code == grpc.StatusCode.NOT_FOUND:
        return _model_not_loaded(model_name, server, details)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return ClientError(
            f"TF-Serving at {server} did not answer within {timeout:g} s; pass a larger "
            "--timeout or fewer images per --batch_size"
        )
    return ClientError(f"TF-Serving at {server} rejected the request ({code.name}): {details}")


def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="PNG/JPEG files or folders of them")
    parser.add_argument(
        "--model_name", default="kerastransfer", help="model name in models.config (%(default)s)"
    )
    parser.add_argument(
        "--protocol",
        choices=sorted(DEFAULT_PORTS),
        default="rest",
        help="REST (8501) or gRPC (8500)",
    )
    parser.add_argument(
        "--server", help="HOST:PORT of TF-Serving (default localhost:8501 REST, :8500 gRPC)"
    )
    parser.add_argument("--top_k", type=int, default=5, help="classes shown per image")
    parser.add_argument("--batch_size", type=int, default=16, help="images per request")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument(
        "--metadata", help="exported version directory or its metadata.json, to name all classes"
    )
    args = parser.parse_args(argv)
    if args.top_k < 1 or args.batch_size < 1 or args.timeout <= 0:
        parser.error("--top_k and --batch_size must be >= 1 and --timeout > 0")
    if args.server is None:
        args.server = f"localhost:{DEFAULT_PORTS[args.protocol]}"
    return args


def main(argv=None):
    """Runs the CLI; returns the exit status (0, or 2 after printing a one-line error)."""
    args = _parse_args(argv)
    predict = predict_rest if args.protocol == "rest" else predict_grpc
    try:
        class_names = load_class_names(args.metadata) if args.metadata else None
        paths = find_images(args.paths)
        encoded = [read_image(path) for path in paths]  # every file checked before sending
        for start in range(0, len(paths), args.batch_size):
            batch = slice(start, start + args.batch_size)
            predictions = predict(args.server, args.model_name, encoded[batch], args.timeout)
            for path, prediction in zip(paths[batch], predictions, strict=True):
                print(format_prediction(path, prediction, args.top_k, class_names))
    except ClientError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
