"""--dataset=tfds:NAME: any image-classification dataset of the TFDS catalog (NAME may carry a
config and version); TFDS downloads and prepares it. "test" reads its test split, or its
validation split when it has no test split."""

import tensorflow_datasets as tfds

from kerastransfer import registry
from kerastransfer.data.sources.source import DatasetSource, from_builder
from kerastransfer.errors import UsageError

PREFIX = "tfds:"


@registry.DATASETS.register("tfds:NAME")
def load(
    name: str, *, data_dir: str | None, manual_dir: str | None, image_dir: str | None
) -> DatasetSource:
    tfds_name = name[len(PREFIX) :]
    try:
        builder = tfds.builder(tfds_name, data_dir=data_dir)
    except tfds.core.DatasetNotFoundError:
        raise UsageError(
            f"--dataset={name}: TFDS has no dataset {tfds_name!r}; see "
            "https://www.tensorflow.org/datasets/catalog for names"
        ) from None
    builder.download_and_prepare()
    splits = set(builder.info.splits)  # empty under tfds.testing.mock_data: all names work
    test_split_name = "validation" if splits and "test" not in splits else "test"
    if splits and not {"train", test_split_name} <= splits:
        raise UsageError(
            f"--dataset={name} has splits {', '.join(sorted(splits))}; kerastransfer needs "
            "train and test (or validation)"
        )
    return from_builder(name, builder, test_split_name=test_split_name)
