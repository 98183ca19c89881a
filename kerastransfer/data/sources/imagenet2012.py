"""--dataset=imagenet2012 (or tfds:imagenet2012): TFDS imagenet2012, built from the two
ILSVRC2012 tars the user downloaded by hand into --manual_dir; it never downloads. Its "test"
split reads the 50,000 official validation images, where the paper measured."""

import os

import tensorflow_datasets as tfds

from kerastransfer import registry
from kerastransfer.data.sources.source import DatasetSource, from_builder
from kerastransfer.errors import UsageError

IMAGENET_TARS = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")


@registry.DATASETS.register("imagenet2012")
def load(
    name: str, *, data_dir: str | None, manual_dir: str | None, image_dir: str | None
) -> DatasetSource:
    builder = tfds.builder("imagenet2012", data_dir=data_dir)
    if builder.is_prepared():
        missing = [s for s in ("train", "validation") if s not in builder.info.splits]
        if missing:
            raise UsageError(
                f"imagenet2012 in {builder.data_dir} lacks split(s) {', '.join(missing)}; "
                f"delete that folder and rebuild from a --manual_dir holding "
                f"{' and '.join(IMAGENET_TARS)}"
            )
    else:
        manual_dir = os.fspath(manual_dir or builder.data_dir_root / "downloads" / "manual")
        missing = [t for t in IMAGENET_TARS if not os.path.isfile(os.path.join(manual_dir, t))]
        if missing:
            raise UsageError(
                f"--dataset=imagenet2012 needs {' and '.join(IMAGENET_TARS)} in the manual dir "
                f"{manual_dir}; missing {', '.join(missing)}: download them from "
                "https://image-net.org and pass --manual_dir=DIR"
            )
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
        )
    return from_builder(name, builder, test_split_name="validation")
