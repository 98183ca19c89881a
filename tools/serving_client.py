"""Sends PNG/JPEG images to a running TF-Serving and prints the top-k classes of each.

Talks to the `predict_image_bytes` signature that `kerastransfer.export` writes, over REST
(port 8501, standard library only) or gRPC (port 8500, needs tensorflow-serving-api):

    python tools/serving_client.py photos/ cat.jpg --model_name kerastransfer --top_k 3
    python tools/serving_client.py photos/ --protocol grpc --server myhost:8500

The server returns the probabilities and the name of the most probable class; pass
`--metadata` (an exported version directory or its metadata.json) to name every class shown.
Every call has a deadline (`--timeout`); a server that is unavailable (not started yet,
restarting, or its batch queue full) is tried again `--retries` times with growing waits.
A file that cannot be read, or that the server refuses, gets one line on stderr and the others
are still predicted; a server that cannot be reached or lacks the model ends the run with one
line. Either way the exit status is then 2. A folder of many images shows a progress bar on a
terminal (`--progress` forces it, `--no-progress` hides it).
"""

import argparse
import base64
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request

SIGNATURE_NAME = "predict_image_bytes"
DEFAULT_PORTS = {"rest": 8501, "grpc": 8500}
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")
_START_HINT = "start it with the docker command in the README or pass --server"
# Seconds before the first retry of an unavailable server; each retry waits twice as long.
FIRST_BACKOFF = 0.5


class ClientError(Exception):
    """A problem the user can fix; `main` prints it as one line and exits 2."""


class Unavailable(ClientError):
    """The server cannot take the call now (not listening, loading, queue full): retried."""

    def __init__(self, server, reason):
        super().__init__(f"cannot reach TF-Serving at {server}: {reason}; {_START_HINT}")
        self.server, self.reason = server, reason


class Rejected(ClientError):
    """The server refused the images of the call (InvalidArgument): a file's fault."""

    def __init__(self, server, status, message):
        super().__init__(f"TF-Serving at {server} rejected the request ({status}): {message}")
        self.message = message


def find_images(paths):
    """(PNG/JPEG file paths, one problem line per path that gives none): folders expand to
    their PNG/JPEG files, sorted, not recursive."""
    images, problems = [], []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(
                os.path.join(path, name)
                for name in os.listdir(path)
                if name.lower().endswith(IMAGE_EXTENSIONS)
                and os.path.isfile(os.path.join(path, name))
            )
            if not found:
                problems.append(f"no .png/.jpg/.jpeg files in folder {path!r}")
            images.extend(found)
        elif os.path.isfile(path):
            images.append(path)
        else:
            problems.append(f"image path {path!r} does not exist: pass PNG/JPEG files or folders")
    return images, problems


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
        if error.code == 503:  # TF-Serving's UNAVAILABLE
            raise Unavailable(base_url, message) from None
        if error.code == 400:  # INVALID_ARGUMENT
            raise Rejected(base_url, "HTTP 400", message) from None
        raise ClientError(
            f"TF-Serving at {base_url} rejected the request (HTTP {error.code}): {message}"
        ) from None
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, ConnectionRefusedError):
            reason = "connection refused"
        if isinstance(reason, TimeoutError):
            raise _timed_out(base_url, timeout) from None
        raise Unavailable(base_url, reason) from None
    except TimeoutError:
        raise _timed_out(base_url, timeout) from None
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


def _timed_out(server, timeout):
    return ClientError(
        f"TF-Serving at {server} did not answer within {timeout:g} s; pass a larger "
        "--timeout or fewer images per --batch_size"
    )


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
        return Unavailable(server, reason)
    if code == grpc.StatusCode.NOT_FOUND:
        return _model_not_loaded(model_name, server, details)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return _timed_out(server, timeout)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return Rejected(server, code.name, details)
    return ClientError(f"TF-Serving at {server} rejected the request ({code.name}): {details}")


def with_retries(call, retries):
    """`call()`, tried again up to `retries` times while the server is Unavailable, waiting
    FIRST_BACKOFF seconds, then twice as long each time."""
    waited = 0.0
    for attempt in range(retries + 1):
        try:
            return call()
        except Unavailable as error:
            if attempt == retries:
                tries = f"{attempt + 1} tries over {waited:g} s" if attempt else "1 try"
                raise Unavailable(error.server, f"{error.reason} ({tries})") from None
            wait = FIRST_BACKOFF * 2**attempt
            time.sleep(wait)
            waited += wait


def predict_files(predict, files, retries):
    """[(path, prediction or a Rejected error)] for a batch of (path, bytes).

    A batch the server refuses is sent again one file at a time, so each refusal is
    pinned on its file.
    """
    try:
        predictions = with_retries(lambda: predict([data for _, data in files]), retries)
    except Rejected as error:
        if len(files) == 1:
            return [(files[0][0], error)]
        return [outcome for one in files for outcome in predict_files(predict, [one], retries)]
    return list(zip([path for path, _ in files], predictions, strict=True))


def refusal_line(path, error):
    """One line for a file the server refused: its path and the graph's own message."""
    found = re.search(r"^assertion failed: \[image_bytes\[\d+\] (.*)\]$", error.message, re.M)
    if found:  # the exported graph's check: it says what is wrong and what is accepted
        return f"{path} {found[1]}"
    return f"{path}: {' '.join(str(error).split())}"


class Progress:
    """`[#####-----] 120/500 images` on stderr, redrawn in place; a no-op when disabled."""

    WIDTH = 30

    def __init__(self, total, enabled):
        self.total, self.done, self.enabled = total, 0, enabled

    def advance(self, count):
        self.done += count
        self._draw()

    def print(self, line, file):
        """Prints `line` to `file` on a line of its own, the bar redrawn below it."""
        if self.enabled and self.done:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
        print(line, file=file, flush=self.enabled)
        self._draw()

    def close(self):
        if self.enabled and self.done:
            print(file=sys.stderr)

    def _draw(self):
        if self.enabled and self.done:
            filled = self.WIDTH * self.done // self.total
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            print(f"\r[{bar}] {self.done}/{self.total} images", end="", file=sys.stderr, flush=True)


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
    parser.add_argument(
        "--batch_size",
        type=int,
        default=16,
        help="images per request (at most the export's --export_max_batch, default 64)",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per call")
    parser.add_argument(
        "--retries",
        type=int,
        default=3,
        help=f"retries of a call while the server is unavailable, after {FIRST_BACKOFF:g} s, "
        "then twice as long each time (%(default)s)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        help="progress bar on stderr (default: on a terminal, for more than one request)",
    )
    parser.add_argument(
        "--metadata", help="exported version directory or its metadata.json, to name all classes"
    )
    args = parser.parse_args(argv)
    if args.top_k < 1 or args.batch_size < 1 or args.timeout <= 0 or args.retries < 0:
        parser.error("--top_k and --batch_size must be >= 1, --timeout > 0 and --retries >= 0")
    if args.server is None:
        args.server = f"localhost:{DEFAULT_PORTS[args.protocol]}"
    return args


def main(argv=None):
    """Runs the CLI; returns the exit status: 0, or 2 after one line per problem."""
    args = _parse_args(argv)
    protocol = predict_rest if args.protocol == "rest" else predict_grpc

    def predict(encoded):
        return protocol(args.server, args.model_name, encoded, args.timeout)

    try:
        class_names = load_class_names(args.metadata) if args.metadata else None
    except ClientError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    paths, problems = find_images(args.paths)
    files = []
    for path in paths:  # every file checked before anything is sent
        try:
            files.append((path, read_image(path)))
        except ClientError as error:
            problems.append(str(error))
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    show = args.progress
    if show is None:
        show = sys.stderr.isatty() and len(files) > args.batch_size
    progress = Progress(len(files), show)
    try:
        for start in range(0, len(files), args.batch_size):
            batch = files[start : start + args.batch_size]
            for path, outcome in predict_files(predict, batch, args.retries):
                if isinstance(outcome, Rejected):
                    progress.print(f"error: {refusal_line(path, outcome)}", sys.stderr)
                    problems.append(path)
                else:
                    lines = format_prediction(path, outcome, args.top_k, class_names)
                    progress.print(lines, sys.stdout)
            progress.advance(len(batch))
    except ClientError as error:
        progress.print(f"error: {error}", sys.stderr)
        return 2
    finally:
        progress.close()
    return 2 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
