"""What each architecture expects of its input: size, channels, scale and mean.

Plain values (no TensorFlow here): the data layer turns them into a data.Preprocessing, which
the training pipelines and the exported SavedModel both apply.
"""

from kerastransfer.models.applications import BACKBONES

# Per-channel RGB mean of the ILSVRC2012 training set, in 0..255 pixel units (Caffe's reference
# model subtracted a mean image; its channel means are these values).
IMAGENET_MEAN_RGB = (123.68, 116.779, 103.939)


def input_spec_for(arch, image_size, source_image_shape):
    """The data.Preprocessing arguments for `arch` on a dataset of `source_image_shape`.

    Args:
        arch: an architecture name of models.build.
        image_size: --image_size (0 = the dataset's own size; caffenet: 227).
        source_image_shape: (H, W, C) of the dataset's images, or None when they vary.
    Returns:
        {"image_size": (H, W), "channels": C, and for caffenet "scale", "mean" and
        "resize_shorter"}.
    """
    if arch == "caffenet":
        size = image_size or 227
        return {
            "image_size": (size, size),
            "channels": 3,
            "scale": 1.0,
            "mean": IMAGENET_MEAN_RGB,
            "resize_shorter": round(size * 256 / 227),
        }
    if source_image_shape is None:  # variable sizes: resize to the requested or a common size
        size = image_size or 224
        return {"image_size": (size, size), "channels": 3}
    size = (image_size,) * 2 if image_size else tuple(source_image_shape[:2])
    channels = 3 if arch in BACKBONES else source_image_shape[2]
    return {"image_size": size, "channels": channels}
