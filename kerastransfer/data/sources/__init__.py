"""Where images come from: one module per `--dataset` source, each registering its loader.

Every source has a "train" and a "test" split of (uint8 image [H, W, C], int64 label) pairs.
"test" is where accuracy is reported: TFDS's "test" split, except for imagenet2012 whose
"test" reads the 50,000 official validation images, where the paper measured.

    --dataset=fashion_mnist   local Fashion-MNIST IDX files (Debian's dataset-fashion-mnist)
    --dataset=imagenet2012    TFDS imagenet2012, built from the two ILSVRC2012 tars in --manual_dir
    --dataset=image_folder    --image_dir=DIR with DIR/train/CLASS/* and DIR/test/CLASS/*, or
                              just DIR/CLASS/* (then every 5th image of a class, by file name,
                              is held out as test)
    --dataset=tfds:NAME       any registered TFDS image-classification dataset (downloads)

A new source is a module here whose loader, `load(name, *, data_dir, manual_dir, image_dir)
-> DatasetSource`, registers under its entry of `registry.DATASETS` (where config.py reads
the names and help of --dataset without loading TensorFlow), imported below.

May import: what data/ may import, and registry.

Example:
    source = load_source("fashion_mnist", data_dir="/tmp/tfds")
    images, labels = source.arrays("train")       # uint8 [60000, 28, 28, 1], int64 [60000]
"""

from kerastransfer import registry

# Each module registers its loader on import.
from kerastransfer.data.sources import (  # noqa: F401
    fashion_mnist,
    image_folder,
    imagenet2012,
    tfds_catalog,
)
from kerastransfer.data.sources.source import DatasetSource, Loader


def load_source(
    name: str,
    *,
    data_dir: str | None = None,
    manual_dir: str | None = None,
    image_dir: str | None = None,
) -> DatasetSource:
    """Returns the `DatasetSource` for a --dataset value, preparing TFDS data when needed.

    Args:
        name: a --dataset value: "fashion_mnist", "imagenet2012", "image_folder" or
            "tfds:NAME" (registry.DATASETS).
        data_dir: TFDS data dir (None: TFDS's default, ~/tensorflow_datasets).
        manual_dir: folder with the raw files: Fashion-MNIST IDX files (default
            /usr/share/datasets/fashion-mnist) or the ILSVRC2012 tars.
        image_dir: the folder for "image_folder".
    Raises:
        UsageError: unknown name, or missing or broken files; the message says what to do.
    """
    load: Loader = registry.DATASETS.implementation(name)
    return load(name, data_dir=data_dir, manual_dir=manual_dir, image_dir=image_dir)


__all__ = ["DatasetSource", "load_source"]
