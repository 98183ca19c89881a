"""--dataset=fashion_mnist: the local Fashion-MNIST IDX files (Debian's dataset-fashion-mnist,
or --manual_dir), prepared once as a TFDS dataset by data/fashion_mnist.py."""

from kerastransfer import registry
from kerastransfer.data import fashion_mnist
from kerastransfer.data.sources.source import DatasetSource, from_builder


@registry.DATASETS.register("fashion_mnist")
def load(
    name: str, *, data_dir: str | None, manual_dir: str | None, image_dir: str | None
) -> DatasetSource:
    builder = fashion_mnist.prepare(data_dir=data_dir, manual_dir=manual_dir)
    return from_builder(name, builder, test_split_name="test")
