"""Hostile input at the serving edge: the exported SavedModel, loaded in a fresh process (as
TF-Serving loads it), is sent every kind of file a camera, an image tool or an attacker sends.

Each must either predict what the model gives on the file's pixels, or be refused with an
InvalidArgument error whose message says what is wrong and what is accepted; the process's
peak RSS may grow by less than 100 MB over the whole set (decompression bombs of 12000 x
12000 pixels among them).
"""

import io
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from helpers.exports import crafted_png, smooth_images, tiny_model
from kerastransfer import config
from kerastransfer.data.preprocessing import Preprocessing
from kerastransfer.serving import export

CLASS_NAMES = ["circle", "square", "triangle"]
MAX_BATCH = 8
MAX_PIXELS = config.default("export_max_image_pixels")
RSS_GROWTH_LIMIT_MB = 100
ACCEPTED = "; send PNG or JPEG files"
OVER = (
    f", over the limit of {MAX_PIXELS} pixels set at export (--export_max_image_pixels); "
    "send a smaller image"
)

# Runs in a fresh process: loads both exports, warms each signature up once, then sends every
# request and records its outcome, and the resident memory before and its peak after (MB;
# the peak is reset first through /proc/self/clear_refs, so loading does not count).
SERVE = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    work = sys.argv[1]
    cases = json.load(open(f"{work}/cases.json"))
    models = {name: tf.saved_model.load(path) for name, path in cases["models"].items()}
    def memory_mb(field):
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith(field + ":"))
        return int(line.split()[1]) / 1024
    def send(request):
        signature = models[request["model"]].signatures[request["signature"]]
        if request["signature"] == "serving_default":
            return signature(images=tf.zeros([request["count"], *request["shape"]]))
        files = [open(f"{work}/{name}", "rb").read() for name in request["files"]]
        return signature(image_bytes=tf.constant(files, tf.string))
    for request in cases["warmup"]:
        send(request)
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    before = memory_mb("VmRSS")
    outcomes = {}
    for name, request in cases["requests"].items():
        try:
            outputs = send(request)
            outcomes[name] = {"probabilities": outputs["probabilities"].numpy().tolist()}
        except tf.errors.InvalidArgumentError as error:
            outcomes[name] = {"error": error.message}
    json.dump({"outcomes": outcomes, "memory_mb": [before, memory_mb("VmHWM")]},
              open(f"{work}/outcomes.json", "w"))
    """)


def encode(array, fmt, **options):
    """`array` (uint8 or uint16 [h, w, c], or a PIL image) as PNG or JPEG bytes."""
    if not isinstance(array, Image.Image):
        array = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    image = array
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def grey(rgb):
    """ITU-R 601 luma, as libpng and the preprocessing turn colour into grey."""
    return np.round(tf.image.rgb_to_grayscale(rgb.astype(np.float32)).numpy()).astype(np.uint8)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Both models exported, every request sent from a fresh process; returns the outcomes,
    the RSS before and its peak after (MB), and what each image that must predict gives."""
    work = tmp_path_factory.mktemp("hostile")
    keras.utils.set_random_seed(3)
    models = {
        "grey": (tiny_model((28, 28, 1)), Preprocessing(image_size=(28, 28), channels=1)),
        # The caffenet way: shorter side to 28, then a 24 x 24 center crop.
        "rgb": (
            tiny_model((24, 24, 3)),
            Preprocessing(image_size=(24, 24), channels=3, resize_shorter=28),
        ),
    }
    versions = {
        name: export.export_model(
            model,
            base_dir=str(work / "export"),
            model_name=name,
            class_names=CLASS_NAMES,
            preprocessing=preprocessing,
            metadata={},
            max_batch=MAX_BATCH,
        )
        for name, (model, preprocessing) in models.items()
    }
    files, requests, expected = {}, {}, {}

    def add(name, model, data, pixels=None, count=1):
        """One request of `count` copies of file `data`; `pixels` (uint8 in the model's
        channels) when it must predict what the model gives on them."""
        files[name] = data
        requests[name] = {"model": model, "signature": "predict_image_bytes"}
        requests[name]["files"] = [name] * count
        if pixels is not None:
            keras_model, preprocessing = models[model]
            probabilities = keras_model(preprocessing.eval_tf(pixels[None].astype(np.float32)))
            expected[name] = np.repeat(probabilities.numpy(), count, axis=0)

    rng = np.random.default_rng(0)
    rgb = smooth_images(rng, 1, 40, 60, 3)[0]
    # Images people's cameras and tools make: each must predict.
    alpha = rng.integers(0, 256, (40, 60, 1), dtype=np.uint8)
    add("rgba_png", "grey", encode(np.concatenate([rgb, alpha], -1), "PNG"), grey(rgb))
    add("rgba_png_rgb", "rgb", encode(np.concatenate([rgb, alpha], -1), "PNG"), rgb)
    deep = rgb.astype(np.uint16) * 257  # 16 bits a sample, the same picture
    add(
        "png_16bit_grey",
        "grey",
        tf.io.encode_png(grey(rgb).astype(np.uint16) * 257).numpy(),
        grey(rgb),
    )
    add("png_16bit_rgb", "rgb", tf.io.encode_png(deep).numpy(), rgb)
    add("jpeg_grey", "rgb", encode(grey(rgb), "JPEG", quality=95), np.repeat(grey(rgb), 3, -1))
    cmyk = encode(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=95)
    add("jpeg_cmyk", "rgb", cmyk, rgb)
    add("jpeg_cmyk_for_grey", "grey", cmyk, grey(rgb))
    add(
        "png_1x1", "grey", encode(np.full((1, 1, 1), 200, np.uint8), "PNG"), np.full((1, 1, 1), 200)
    )
    add(
        "jpeg_1x1",
        "rgb",
        encode(np.full((1, 1, 3), 90, np.uint8), "JPEG", quality=95),
        np.full((1, 1, 3), 90),
    )
    # Two equal rows: JPEG averages colour over 2 x 2 pixels, which would blur two that differ.
    wide = np.repeat(smooth_images(rng, 1, 1, 3000, 3)[0], 2, axis=0)
    add("png_wide_3000x2", "grey", encode(grey(wide), "PNG"), grey(wide))
    add("png_wide_3000x2_rgb", "rgb", encode(wide, "PNG"), wide)
    add(
        "jpeg_tall_2x2000",
        "rgb",
        encode(wide[:, :2000].transpose(1, 0, 2), "JPEG", quality=95),
        wide[:, :2000].transpose(1, 0, 2),
    )
    add("full_batch", "grey", encode(grey(rgb), "PNG"), grey(rgb), count=MAX_BATCH)
    # Files that must be refused, by what their header or first bytes say.
    png = encode(grey(rgb), "PNG")
    jpeg = encode(rgb, "JPEG", quality=95)
    bomb_grey, bomb_rgb = crafted_png(12000, 12000), crafted_png(12000, 12000, channels=3)
    refused = {
        "empty": ("grey", b"", "image_bytes[0] is empty" + ACCEPTED),
        "garbage": (
            "grey",
            b"<html>not found</html>",
            "image_bytes[0] is neither PNG nor JPEG (22 bytes of an unknown format)" + ACCEPTED,
        ),
        "gif": ("grey", encode(rgb, "GIF"), "image_bytes[0] is a GIF file" + ACCEPTED),
        "bmp": ("rgb", encode(rgb, "BMP"), "image_bytes[0] is a BMP file" + ACCEPTED),
        "png_truncated": (
            "grey",
            png[: len(png) // 2],
            "image_bytes[0] is a truncated PNG file (no IEND chunk)",
        ),
        "png_signature_only": (
            "grey",
            png[:8],
            "image_bytes[0] is a damaged PNG file (no IHDR chunk after its signature)",
        ),
        "jpeg_truncated": (
            "rgb",
            jpeg[: len(jpeg) // 2],
            "image_bytes[0] is a truncated JPEG file (no end-of-image marker after its image data)",
        ),
        "png_no_pixels": (
            "grey",
            crafted_png(0, 5, pixels=False),
            "image_bytes[0] has no pixels (0 x 5 pixels (width x height))",
        ),
        "png_bomb_grey_12000": (
            "grey",
            bomb_grey,
            "image_bytes[0] is 12000 x 12000 pixels (width x height)" + OVER,
        ),
        "png_bomb_rgb_12000": (
            "rgb",
            bomb_rgb,
            "image_bytes[0] is 12000 x 12000 pixels (width x height)" + OVER,
        ),
        "jpeg_bomb_12000": (
            "grey",
            encode(Image.new("L", (12000, 12000)), "JPEG"),
            "image_bytes[0] is 12000 x 12000 pixels (width x height)" + OVER,
        ),
        "png_header_claims_2**32": (
            "grey",
            crafted_png(2**32 - 1, 2**32 - 1, pixels=False),
            f"image_bytes[0] is {2**32 - 1} x {2**32 - 1} pixels (width x height)" + OVER,
        ),
        "too_wide_for_shorter_side_resize": (
            "rgb",
            encode(np.zeros((1, 10000, 3), np.uint8), "PNG"),
            "image_bytes[0] is 10000 x 1 pixels (width x height): resizing its shorter side to "
            f"28 makes 7840000 pixels, over the {MAX_PIXELS // 4} allowed (a quarter of "
            f"--export_max_image_pixels={MAX_PIXELS} set at export, as float32); crop it closer "
            "to square",
        ),
    }
    for name, (model, data, _) in refused.items():
        add(name, model, data)
    messages = {name: message for name, (_, _, message) in refused.items()}
    add("bombs_in_a_batch", "rgb", bomb_rgb, count=3)
    messages["bombs_in_a_batch"] = "image_bytes[0] is 12000 x 12000 pixels (width x height)" + OVER
    files["good"] = png
    requests["bomb_after_a_good_file"] = {
        "model": "grey",
        "signature": "predict_image_bytes",
        "files": ["good", "png_bomb_grey_12000"],
    }
    messages["bomb_after_a_good_file"] = (
        "image_bytes[1] is 12000 x 12000 pixels (width x height)" + OVER
    )
    over_batch = (
        f"the request carries {MAX_BATCH + 1} images, over the limit of {MAX_BATCH} per request "
        f"set at export (--export_max_batch); send at most {MAX_BATCH} per request"
    )
    add("over_batch", "grey", png, count=MAX_BATCH + 1)
    messages["over_batch"] = over_batch
    requests["over_batch_float"] = {
        "model": "rgb",
        "signature": "serving_default",
        "count": MAX_BATCH + 1,
        "shape": [24, 24, 3],
    }
    messages["over_batch_float"] = over_batch

    for name, data in files.items():
        (work / name).write_bytes(data)
    warmup = [
        {"model": name, "signature": "predict_image_bytes", "files": ["good"]} for name in models
    ]
    (work / "cases.json").write_text(
        json.dumps({"models": versions, "requests": requests, "warmup": warmup})
    )
    subprocess.run(
        [sys.executable, "-c", SERVE, str(work)],
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=300,
    )
    result = json.loads((work / "outcomes.json").read_text())
    return {**result, "expected": expected, "messages": messages}


def test_images_people_send_predict_what_the_model_gives_on_their_pixels(served):
    for name, probabilities in served["expected"].items():
        outcome = served["outcomes"][name]
        assert "error" not in outcome, (name, outcome.get("error"))
        # PNG is lossless and JPEG at quality 95 on smooth pictures nearly so; grey conversions
        # and 16-bit to 8-bit rounding differ by at most 1 in 255.
        np.testing.assert_allclose(
            outcome["probabilities"], probabilities, rtol=0, atol=0.03, err_msg=name
        )


def test_hostile_files_are_refused_naming_the_file_the_fault_and_what_is_accepted(served):
    for name, message in served["messages"].items():
        outcome = served["outcomes"][name]
        assert "error" in outcome, f"{name} was not refused"
        assert f"assertion failed: [{message}]" in outcome["error"], (name, outcome["error"])


def test_peak_memory_stays_bounded_over_the_hostile_set(served):
    before, peak = served["memory_mb"]
    assert peak - before < RSS_GROWTH_LIMIT_MB, f"peak RSS grew {peak - before:.0f} MB"
