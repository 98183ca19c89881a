"""The data layer: dataset sources, A/B class splits and tf.data pipelines per half.

May import: config, registry, workdir, errors; never models/, training/ or study/.

Example:
    from kerastransfer import data
    source = data.load_source("fashion_mnist")
    split = data.make_split("random:0", source.class_names, source.name)
    half = data.make_half_data(source, split, "A")
"""

from kerastransfer.data.halves import EVAL_BATCH, make_halves
from kerastransfer.data.pipeline import (
    ArrayBatches,
    HalfData,
    gathered_batches,
    make_dataset,
    make_half_data,
    make_streaming_half,
)
from kerastransfer.data.preprocessing import Preprocessing
from kerastransfer.data.sources import DatasetSource, load_source
from kerastransfer.data.splits import ALL_SPLIT, ClassSplit, make_split

__all__ = [
    "ALL_SPLIT",
    "ArrayBatches",
    "EVAL_BATCH",
    "ClassSplit",
    "DatasetSource",
    "HalfData",
    "Preprocessing",
    "gathered_batches",
    "load_source",
    "make_dataset",
    "make_half_data",
    "make_split",
    "make_halves",
    "make_streaming_half",
]
