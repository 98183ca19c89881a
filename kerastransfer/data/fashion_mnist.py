"""A TFDS builder for Fashion-MNIST from local IDX files, so the default run needs no download.

Debian's `dataset-fashion-mnist` package installs the four original files in
/usr/share/datasets/fashion-mnist. The builder parses them once into TFDS's record files under
`data_dir` (TFDS's default unless given); later loads read those and never touch the IDX files.

Images are stored as a raw uint8 `Tensor` feature, not `tfds.features.Image`: Image would
PNG-encode every 28x28 picture on write and decode it on every read, for no gain at this size.

Example:
    builder = prepare(data_dir="/tmp/tfds")   # parses the IDX files on the first call only
    train = builder.as_dataset(split="train", as_supervised=True)
"""

import os

import numpy as np
import tensorflow_datasets as tfds

from kerastransfer.data import idx
from kerastransfer.errors import UsageError

DEFAULT_MANUAL_DIR = "/usr/share/datasets/fashion-mnist"

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# split -> (images file, labels file), the names Zalando publishes and Debian installs.
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

_GET_FILES = (
    "install them with `apt-get install -y dataset-fashion-mnist`, pass --manual_dir=DIR with "
    "the four Fashion-MNIST IDX .gz files, or use --dataset=tfds:fashion_mnist (downloads)"
)


class LocalFashionMnist(tfds.core.GeneratorBasedBuilder):
    """Fashion-MNIST (Xiao et al. 2017) built from the IDX files in a manual dir."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Images as raw uint8 tensors, examples in the files' order."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        f"The manual dir must hold {', '.join(f for pair in FILES.values() for f in pair)}: "
        f"{_GET_FILES}."
    )

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__.split("\n\n")[0],
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Tensor(shape=(28, 28, 1), dtype=np.uint8),
                    "label": tfds.features.ClassLabel(names=CLASS_NAMES),
                }
            ),
            supervised_keys=("image", "label"),
            # Keep the files' order: "the first k examples of each class" must mean the same
            # examples on every machine.
            disable_shuffling=True,
            homepage="https://github.com/zalandoresearch/fashion-mnist",
        )

    def _split_generators(self, dl_manager):
        manual_dir = dl_manager.manual_dir
        check_manual_dir(manual_dir)
        return {
            split: self._generate_examples(*_read_split(manual_dir, images, labels))
            for split, (images, labels) in FILES.items()
        }

    def _generate_examples(self, images, labels):
        for index, (image, label) in enumerate(zip(images, labels)):
            yield index, {"image": image[..., None], "label": int(label)}


def check_manual_dir(manual_dir: str) -> None:
    """Raises UsageError naming the first Fashion-MNIST file missing from `manual_dir`."""
    for pair in FILES.values():
        for name in pair:
            path = os.path.join(manual_dir, name)
            if not os.path.isfile(path):
                raise UsageError(f"missing Fashion-MNIST file {path}: {_GET_FILES}")


def _read_split(manual_dir, images_name, labels_name):
    """Reads one split's images [N, 28, 28] and labels [N], checking they belong together."""
    hint = "reinstall dataset-fashion-mnist or pass --manual_dir with good copies"
    images_path = os.path.join(manual_dir, images_name)
    labels_path = os.path.join(manual_dir, labels_name)
    images = idx.read_idx(images_path, hint=hint)
    labels = idx.read_idx(labels_path, hint=hint)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise UsageError(f"{images_path} holds shape {images.shape}, expected [N, 28, 28]; {hint}")
    if labels.shape != images.shape[:1]:
        raise UsageError(
            f"{labels_path} holds {labels.size} labels for {len(images)} images in "
            f"{images_path}; {hint}"
        )
    if labels.size and labels.max() >= len(CLASS_NAMES):
        raise UsageError(f"{labels_path} holds label {labels.max()}, expected 0..9; {hint}")
    return images, labels


def prepare(
    *, data_dir: str | None = None, manual_dir: str | None = None
) -> tfds.core.DatasetBuilder:
    """Returns the prepared builder, parsing the IDX files only when `data_dir` lacks the data.

    Args:
        data_dir: TFDS data dir for the prepared records (None: TFDS's default).
        manual_dir: folder with the four IDX .gz files (None: DEFAULT_MANUAL_DIR).
    Raises:
        UsageError: a file is missing, truncated or corrupt.
    """
    builder = LocalFashionMnist(data_dir=data_dir)
    if not builder.is_prepared():
        manual_dir = os.fspath(manual_dir or DEFAULT_MANUAL_DIR)
        check_manual_dir(manual_dir)
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
        )
    return builder
